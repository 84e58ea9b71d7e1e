"""Reading a message for us out of a submit_sm, deliver_sm or data_sm.

Peers address the short code in several ways and carry the text in two places; this module
turns one message PDU into an :class:`InboundMessage` (or the status it must be refused with),
so that the session only decides *when* to accept and the rules of *what* to accept live here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from smpp.codec import Pdu, Status
from smpp.text import Concat, TextError, UserData, decode_text, user_data

COUNTRY_CODES: Final = ("84",)  # a destination "848079" is short code 8079 with a prefix


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One submit_sm, deliver_sm or data_sm addressed to one of our short codes.

    A long message arrives as several of these, each with ``user_data.concat`` set; join them
    with :class:`smpp.reassembly.Reassembler`. ``text`` is this PDU's text alone.
    """

    command: str
    sequence: int
    source_addr: str
    source_addr_ton: int
    source_addr_npi: int
    destination_addr: str
    dest_addr_ton: int
    dest_addr_npi: int
    short_code: str
    esm_class: int
    data_coding: int
    registered_delivery: int
    user_data: UserData
    text: str
    user_message_reference: int | None
    more_messages_to_send: int | None
    received_at: float

    def __repr__(self) -> str:
        # The text is a citizen's message (a social-insurance code): keep it out of reprs.
        return f"InboundMessage({self.command}, seq={self.sequence}, chars={len(self.text)})"


@dataclass(frozen=True, slots=True)
class Rejected:
    """Why a message PDU is refused, and the status to refuse it with."""

    status: Status
    reason: str


def read_message(
    pdu: Pdu, *, short_codes: tuple[str, ...], packed: bool, now: float
) -> InboundMessage | Rejected:
    """The message in ``pdu`` (a submit_sm, deliver_sm or data_sm), or why it is refused.

    Both addresses must be printable ASCII: they are stored as they arrive and the reply is
    addressed with them, and a deliver_sm address is ASCII (v3.4 §5.2.8-9). Refusing such a
    message here, where the peer gets a status it understands, keeps it from becoming a reply
    that can never be encoded.
    """
    destination = pdu.string("destination_addr")
    if not _printable_ascii(destination):
        return Rejected(Status.ESME_RINVDSTADR, "destination_addr is not printable ASCII")
    short_code = match_short_code(destination, short_codes)
    if short_code is None:
        return Rejected(Status.ESME_RINVDSTADR, "not one of our short codes")
    source = pdu.string("source_addr").strip()
    if not source:
        return Rejected(Status.ESME_RINVSRCADR, "empty source_addr")
    if not _printable_ascii(source):
        return Rejected(Status.ESME_RINVSRCADR, "source_addr is not printable ASCII")
    short_message, payload = pdu.octets("short_message"), pdu.octets("message_payload")
    if short_message and payload:  # v3.4 §5.3.2.32: one or the other
        return Rejected(Status.ESME_ROPTPARNOTALLWD, "both short_message and message_payload")
    esm_class = pdu.integer("esm_class") or 0
    data_coding = pdu.integer("data_coding") or 0
    try:
        data = user_data(
            payload or short_message,
            data_coding=data_coding,
            esm_class=esm_class,
            packed=packed,
            sar=_sar(pdu),
        )
    except TextError as error:
        return Rejected(error.status, str(error))
    return InboundMessage(
        command=pdu.command,
        sequence=pdu.sequence,
        source_addr=source,
        source_addr_ton=pdu.integer("source_addr_ton") or 0,
        source_addr_npi=pdu.integer("source_addr_npi") or 0,
        destination_addr=destination,
        dest_addr_ton=pdu.integer("dest_addr_ton") or 0,
        dest_addr_npi=pdu.integer("dest_addr_npi") or 0,
        short_code=short_code,
        esm_class=esm_class,
        data_coding=data_coding,
        registered_delivery=pdu.integer("registered_delivery") or 0,
        user_data=data,
        text=decode_text([data]),
        user_message_reference=pdu.integer("user_message_reference"),
        more_messages_to_send=pdu.integer("more_messages_to_send"),
        received_at=now,
    )


def match_short_code(destination: str, short_codes: tuple[str, ...]) -> str | None:
    """The short code ``destination`` names, whatever its TON/NPI: ``8079``, ``+848079``,
    ``848079`` and ``00848079`` all name ``8079``."""
    digits = destination.strip().lstrip("+")
    if digits.startswith("00"):
        digits = digits[2:]
    for code in short_codes:
        if digits == code or any(digits == prefix + code for prefix in COUNTRY_CODES):
            return code
    return None


def _printable_ascii(address: str) -> bool:
    # str.isprintable alone would let "é" through, str.isascii alone control characters.
    return address.isascii() and address.isprintable()


def _sar(pdu: Pdu) -> Concat | None:
    reference = pdu.integer("sar_msg_ref_num")
    total = pdu.integer("sar_total_segments")
    sequence = pdu.integer("sar_segment_seqnum")
    if reference is None or total is None or sequence is None:
        return None
    return Concat(reference, total, sequence)
