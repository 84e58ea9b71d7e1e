"""Delivery receipts for the messages peers submit to us (SMPP v3.4 §5.2.17, appendix B).

A peer that submits a citizen's text with ``registered_delivery`` asking for a receipt on final
delivery expects one back, as from any SMSC. For us a message is delivered when it is stored:
that is when it has reached its destination, the gateway, and is acknowledged. The receipt goes
to the peer as a deliver_sm with ``esm_class`` 0x04, the appendix-B text and the
``receipted_message_id`` / ``message_state`` TLVs that v3.4 added so that peers need not parse
the text.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

from smpp.outbound import Outgoing
from smpp.text import encode_reply

RECEIPT_ESM_CLASS: Final = 0x04
"""esm_class of an SMSC delivery receipt (v3.4 §5.2.12)."""
DELIVERED: Final = 2
"""message_state DELIVERED (v3.4 §5.2.28)."""
RECEIPT_COMMANDS: Final = frozenset({"submit_sm", "data_sm"})
"""Requests whose ``registered_delivery`` asks us, as the SMSC, for a receipt. In a
deliver_sm it asks the receiving ESME for an acknowledgement, which is not a receipt."""
RECEIPT_TIMEZONE: Final = timezone(timedelta(hours=7), "ICT")
"""The dates in a receipt are the SMSC's local time: Vietnam's, which has no summer time."""


def wants_receipt(command: str, registered_delivery: int) -> bool:
    """Whether a stored message must be answered with a receipt: bits 1-0 are 01, a receipt
    on success or failure (10, on failure only, never applies: a stored message is not lost).
    """
    return command in RECEIPT_COMMANDS and registered_delivery & 0x03 == 0x01


def receipt_text(message_id: str, submitted: datetime, done: datetime) -> str:
    """The appendix-B text: ``id:… sub:001 dlvrd:001 submit date:… done date:… stat:DELIVRD
    err:000 text:`` (the message's first characters are left out: it holds a citizen's code).
    ``submitted`` and ``done`` are naive UTC, as the store keeps times, or aware."""
    return (
        f"id:{message_id} sub:001 dlvrd:001 submit date:{_date(submitted)} "
        f"done date:{_date(done)} stat:DELIVRD err:000 text:"
    )


def receipt_part(
    part_id: Hashable,
    message_id: str,
    text: str,
    *,
    source_addr: str,
    destination_addr: str,
    source_addr_ton: int = 0,
    source_addr_npi: int = 0,
    dest_addr_ton: int = 1,
    dest_addr_npi: int = 1,
    packed: bool = False,
) -> Outgoing:
    """The deliver_sm carrying a receipt: from the address the message was sent to, to its
    sender. ``text`` (:func:`receipt_text`) goes in the default alphabet, packed for a peer
    that packs (``gsm7_packed``), in one part: it is far shorter than 160 characters."""
    (part,) = encode_reply(text, 0, packed=packed)
    return Outgoing(
        id=part_id,
        source_addr=source_addr,
        destination_addr=destination_addr,
        short_message=part.short_message,
        data_coding=part.data_coding,
        esm_class=RECEIPT_ESM_CLASS,
        source_addr_ton=source_addr_ton,
        source_addr_npi=source_addr_npi,
        dest_addr_ton=dest_addr_ton,
        dest_addr_npi=dest_addr_npi,
        options=(
            ("receipted_message_id", message_id.encode("ascii")),
            ("message_state", DELIVERED),
        ),
    )


def _date(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(RECEIPT_TIMEZONE).strftime("%y%m%d%H%M")
