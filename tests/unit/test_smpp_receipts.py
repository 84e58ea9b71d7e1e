"""Delivery receipts: who gets one, and the appendix-B text in Vietnam's time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smpp.codec import decode, encode
from smpp.receipts import receipt_part, receipt_text, wants_receipt
from smpp.text import decode_text, user_data


@pytest.mark.parametrize(
    ("command", "registered_delivery", "wanted"),
    [
        ("submit_sm", 0x00, False),
        ("submit_sm", 0x01, True),  # on success or failure
        ("submit_sm", 0x11, True),  # and an intermediate notification, which we never have
        ("submit_sm", 0x02, False),  # on failure only: a stored message does not fail
        ("data_sm", 0x01, True),
        ("deliver_sm", 0x01, False),  # asks the receiving ESME for an acknowledgement instead
    ],
)
def test_who_gets_a_receipt(command: str, registered_delivery: int, wanted: bool) -> None:
    assert wants_receipt(command, registered_delivery) is wanted


def test_the_text_gives_the_dates_in_vietnam_time() -> None:
    submitted = datetime(2026, 11, 22, 16, 59, 30)  # naive UTC, as the store keeps times
    done = datetime(2026, 11, 22, 17, 0, 5, tzinfo=UTC)
    assert receipt_text("4711", submitted, done) == (
        "id:4711 sub:001 dlvrd:001 submit date:2611222359 done date:2611230000 "
        "stat:DELIVRD err:000 text:"
    )


def test_the_deliver_sm_carries_the_receipt_class_and_its_tlvs() -> None:
    part = receipt_part(
        (9, 1), "4711", "id:4711 stat:DELIVRD", source_addr="8079",
        destination_addr="84912345678", dest_addr_ton=1, dest_addr_npi=1,
    )  # fmt: skip
    pdu = decode(encode(part.to_pdu(3)))
    assert (pdu.command, pdu.integer("esm_class"), pdu.octets("short_message")) == (
        "deliver_sm", 0x04, b"id:4711 stat:DELIVRD"
    )  # fmt: skip
    assert pdu.string("receipted_message_id") == "4711" and pdu.integer("message_state") == 2


def test_a_peer_that_packs_septets_gets_its_receipt_packed() -> None:
    text = receipt_text("4711", datetime(2026, 11, 22, 1, 0), datetime(2026, 11, 22, 1, 0))
    part = receipt_part((9, 1), "4711", text, source_addr="8079", destination_addr="849",
                        packed=True)  # fmt: skip
    assert len(part.short_message) < len(text)  # seven bits a character
    data = user_data(part.short_message, data_coding=part.data_coding, esm_class=0, packed=True)
    assert decode_text([data]) == text
