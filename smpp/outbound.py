"""What we send: one deliver_sm per part of a reply.

The outbox dispatcher turns a stored reply into :class:`Outgoing` parts with
:func:`outgoing_parts` and hands each to a bind (``Session.submit``, or through the adapter
``SmppListener.send``); each part's id comes back with its response or failure.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Final

from smpp.codec import MAX_SHORT_MESSAGE, Pdu
from smpp.text import encode_reply

MAX_ADDRESS: Final = 20  # octets of a deliver_sm address without its NUL (v3.4 §4.6.1)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One deliver_sm we send (one part of a reply); ``id`` is the caller's handle for it.

    ``id`` must be unique among the requests outstanding on a bind; the response or failure
    comes back under it. Build the parts of a reply with :func:`outgoing_parts`.
    """

    id: Hashable
    source_addr: str
    destination_addr: str
    short_message: bytes
    data_coding: int = 0
    esm_class: int = 0
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    dest_addr_ton: int = 1
    dest_addr_npi: int = 1
    options: tuple[tuple[str, int | bytes], ...] = ()
    """TLVs by smpplib's name, e.g. a receipt's ``receipted_message_id``."""

    def to_pdu(self, sequence: int) -> Pdu:
        """The deliver_sm carrying this part. Raises ``ValueError`` (naming the field, never
        its contents) for one that cannot be encoded, so that the session can refuse it before
        it takes a sequence number and a window slot."""
        if len(self.short_message) > MAX_SHORT_MESSAGE:
            raise ValueError(f"short_message longer than {MAX_SHORT_MESSAGE} octets")
        params: dict[str, int | bytes] = {
            "source_addr_ton": self.source_addr_ton,
            "source_addr_npi": self.source_addr_npi,
            "source_addr": _address("source_addr", self.source_addr),
            "dest_addr_ton": self.dest_addr_ton,
            "dest_addr_npi": self.dest_addr_npi,
            "destination_addr": _address("destination_addr", self.destination_addr),
            "esm_class": self.esm_class,
            "registered_delivery": 0,  # we ask for no delivery receipt
            "data_coding": self.data_coding,
            "short_message": self.short_message,
        }
        params.update(self.options)
        return Pdu("deliver_sm", sequence, 0, params)

    def __repr__(self) -> str:
        # Replies carry new passwords: never print the body.
        return f"Outgoing(id={self.id!r}, octets={len(self.short_message)})"


def _address(name: str, value: str) -> bytes:
    if not (value.isascii() and value.isprintable()):
        raise ValueError(f"{name} is not printable ASCII")
    if len(value) > MAX_ADDRESS:
        raise ValueError(f"{name} longer than {MAX_ADDRESS} characters")
    return value.encode("ascii")


def outgoing_parts(
    reply_id: Hashable,
    text: str,
    *,
    source_addr: str,
    destination_addr: str,
    reference: int,
    packed: bool = False,
    source_addr_ton: int = 0,
    source_addr_npi: int = 0,
    dest_addr_ton: int = 1,
    dest_addr_npi: int = 1,
) -> list[Outgoing]:
    """A reply's deliver_sm parts, with ids ``(reply_id, 1)``, ``(reply_id, 2)``, ...

    ``reference`` (0-255) ties the parts of one concatenated reply together; ``packed`` is the
    peer's ``gsm7_packed``. Copy the TON/NPI from the message being answered.
    """
    return [
        Outgoing(
            id=(reply_id, number),
            source_addr=source_addr,
            destination_addr=destination_addr,
            short_message=part.short_message,
            data_coding=part.data_coding,
            esm_class=part.esm_class,
            source_addr_ton=source_addr_ton,
            source_addr_npi=source_addr_npi,
            dest_addr_ton=dest_addr_ton,
            dest_addr_npi=dest_addr_npi,
        )
        for number, part in enumerate(encode_reply(text, reference, packed=packed), start=1)
    ]
