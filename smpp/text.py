"""Short-message text: the codings peers use, user data headers, and our replies' segments.

Inbound, a PDU's octets become :class:`UserData`: the coding, the payload with any user data
header (UDH) removed, and the concatenation facts (from the UDH or from the sar_* TLVs).
Decoding to ``str`` happens only on a *list* of parts (:func:`decode_text`), after their
payloads are joined, so that a UCS-2 surrogate pair or a GSM-7 escape split across two parts
still decodes. Decoding never fails: an impossible octet becomes U+FFFD, because a citizen's
slightly mangled message should still get an answer; only a missing coding or a broken UDH is
refused (:class:`TextError`, with the status the peer should get).

Outbound, :func:`encode_reply` chooses GSM-7 when every character has a GSM 03.38 code (one
segment up to 160 septets, an extension character counting two; else parts of 153 septets,
never splitting an escape) and UCS-2 otherwise (70 characters, else parts of 67, never
splitting a surrogate pair), with an 8-bit-reference concatenation UDH on each part.

GSM-7 arrives one septet per octet by default; ``packed=True`` (the per-peer ``gsm7_packed``)
reads and writes septets packed LSB first (3GPP TS 23.038 §6.1.2.1), aligned after a UDH by
fill bits. SMPP gives a packed payload's length in octets, not septets, so when the last seven
bits could be either a septet or padding, a trailing CR or ``@`` there is taken as padding
(23.038 tells senders to pad with CR).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from smpp.codec import Status

ESCAPE: Final = 0x1B
UDHI: Final = 0x40  # esm_class bit: the payload starts with a user data header
REPLACEMENT: Final = "\ufffd"

# 3GPP TS 23.038 §6.2.1, code points 0x00-0x7F; 0x1B is the escape to the extension table.
_BASIC: Final = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# §6.2.1.1, the extension table reached by 0x1B.
_EXTENSION: Final = {
    0x0A: "\x0c",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}
_ENCODE: Final[dict[str, bytes]] = {
    **{char: bytes([code]) for code, char in enumerate(_BASIC) if code != ESCAPE},
    **{char: bytes([ESCAPE, code]) for code, char in _EXTENSION.items()},
}
# The same table for str.translate: each character becomes the characters whose code points
# are its septets, which latin-1 then turns into those octets (all in C, not a Python loop).
_ENCODABLE: Final = frozenset(_ENCODE)
_TRANSLATE: Final = {ord(char): code.decode("latin-1") for char, code in _ENCODE.items()}

GSM_SINGLE: Final = 160
GSM_PART: Final = 153
UCS2_SINGLE: Final = 140  # octets
UCS2_PART: Final = 134


class Coding(enum.Enum):
    """How a payload's octets map to characters."""

    GSM7 = "gsm7"  # payload holds one septet per octet (unpacked on the way in)
    ASCII = "ascii"
    LATIN1 = "latin-1"
    UCS2 = "ucs-2"


class TextError(Exception):
    """The text cannot be read at all; ``status`` is the answer for the peer."""

    def __init__(self, status: Status, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True, slots=True)
class Concat:
    """Where a part sits in a concatenated message (from a UDH or the sar_* TLVs)."""

    reference: int
    total: int
    sequence: int


@dataclass(frozen=True, slots=True)
class UserData:
    """One PDU's payload, UDH removed, still undecoded so that parts can be joined first."""

    coding: Coding
    data: bytes
    concat: Concat | None = None


def coding_of(data_coding: int) -> Coding | None:
    """The coding for an SMPP ``data_coding`` value, or ``None`` if we cannot read it as text.

    0, 1, 3 and 8 are SMPP's own (v3.4 §5.2.19); 0x10-0x3F and 0xF0-0xFF are GSM 03.38
    coding groups that some peers pass through (for example 0x18, UCS-2 with a class, or
    0xF0-0xF3, the default alphabet with a class, read like 0 whether packed or not; in
    0xF0-0xFF bit 2 set means 8-bit data, not text).
    """
    if data_coding in (0x00, 0x01, 0x03, 0x08):
        return {0: Coding.GSM7, 1: Coding.ASCII, 3: Coding.LATIN1, 8: Coding.UCS2}[data_coding]
    if 0x10 <= data_coding <= 0x3F and not data_coding & 0x20:  # 0x20: compressed
        return {0: Coding.GSM7, 2: Coding.UCS2}.get((data_coding >> 2) & 0x03)
    if data_coding >= 0xF0 and not data_coding & 0x04:
        return Coding.GSM7
    return None


def user_data(
    payload: bytes,
    *,
    data_coding: int,
    esm_class: int,
    packed: bool = False,
    sar: Concat | None = None,
) -> UserData:
    """Split one PDU's payload (short_message or message_payload) into :class:`UserData`."""
    coding = coding_of(data_coding)
    if coding is None:
        # v3.4 has no status for the coding alone (0x104 is SMPP 5.0's): refused for good.
        raise TextError(Status.ESME_RSUBMITFAIL, f"data_coding {data_coding:#04x} is not text")
    concat = _valid(sar)
    header_octets = 0
    if esm_class & UDHI:
        header_octets, udh_concat = _parse_udh(payload)
        concat = _valid(udh_concat) or concat
    body = payload[header_octets:]
    if coding is Coding.GSM7 and packed:
        body = unpack_septets(body, fill_bits=(7 - header_octets * 8 % 7) % 7)
    return UserData(coding, body, concat)


def decode_text(parts: Sequence[UserData]) -> str:
    """The text of one message from its parts in order, joining payloads before decoding."""
    text: list[str] = []
    start = 0
    for index in range(1, len(parts) + 1):
        if index == len(parts) or parts[index].coding is not parts[start].coding:
            joined = b"".join(part.data for part in parts[start:index])
            text.append(_decode(parts[start].coding, joined))
            start = index
    return "".join(text)


def _decode(coding: Coding, data: bytes) -> str:
    if coding is Coding.GSM7:
        return decode_gsm7(data)
    if coding is Coding.UCS2:
        return data.decode("utf-16-be", errors="replace")
    if coding is Coding.ASCII:
        return data.decode("ascii", errors="replace")
    return data.decode("latin-1")


# Septet -> character for text without escapes, for str.translate (octets above 0x7F are
# not septets: the replacement character).
_DECODE_BASIC: Final = {code: _BASIC[code] if code < 0x80 else REPLACEMENT for code in range(256)}


def decode_gsm7(septets: bytes) -> str:
    """Unpacked GSM 03.38 septets to text; an unknown escape shows the basic character."""
    if ESCAPE not in septets:  # nearly every message: one table lookup per septet, in C
        return septets.decode("latin-1").translate(_DECODE_BASIC)
    chars: list[str] = []
    escaped = False
    for septet in septets:
        if escaped:
            escaped = False
            chars.append(_EXTENSION.get(septet) or _escaped_fallback(septet))
        elif septet == ESCAPE:
            escaped = True
        else:
            chars.append(_BASIC[septet] if septet < 0x80 else REPLACEMENT)
    return "".join(chars)


def _escaped_fallback(septet: int) -> str:
    if septet == ESCAPE:
        return " "  # 0x1B 0x1B is reserved for a further table; 23.038 says show a space
    return _BASIC[septet] if septet < 0x80 else REPLACEMENT


def encode_gsm7(text: str) -> bytes | None:
    """Text to unpacked septets, or ``None`` if a character has no GSM 03.38 code."""
    if not _ENCODABLE.issuperset(text):
        return None
    return text.translate(_TRANSLATE).encode("latin-1")


def unpack_septets(data: bytes, fill_bits: int = 0) -> bytes:
    """Packed septets (LSB first, after ``fill_bits`` of padding) to one septet per octet."""
    available = len(data) * 8 - fill_bits
    if available < 7:
        return b""
    value = int.from_bytes(data, "little") >> fill_bits
    count = available // 7
    septets = bytes((value >> (7 * i)) & 0x7F for i in range(count))
    if available % 7 == 0 and septets[-1] in (0x0D, 0x00):
        septets = septets[:-1]  # the last seven bits were padding (see the module docstring)
    return septets


def pack_septets(septets: bytes, fill_bits: int = 0) -> bytes:
    """One septet per octet to packed septets; seven spare bits at the end are padded with CR."""
    value = 0
    for index, septet in enumerate(septets):
        value |= (septet & 0x7F) << (fill_bits + 7 * index)
    bits = fill_bits + 7 * len(septets)
    octets = (bits + 7) // 8
    if octets * 8 - bits == 7:
        value |= 0x0D << bits
    return value.to_bytes(octets, "little")


def _valid(concat: Concat | None) -> Concat | None:
    """3GPP TS 23.040 §9.2.3.24.1: a part numbered 0 or past the total is not concatenated."""
    if concat is None or concat.total < 1 or not 1 <= concat.sequence <= concat.total:
        return None
    return concat


def _parse_udh(payload: bytes) -> tuple[int, Concat | None]:
    """(octets the UDH takes, its concatenation IE if any); other IEs are skipped."""
    if not payload or payload[0] + 1 > len(payload):
        raise TextError(Status.ESME_RINVESMCLASS, "UDHI set but no user data header fits")
    end = payload[0] + 1
    pos = 1
    concat = None
    while pos + 2 <= end:
        iei, length = payload[pos], payload[pos + 1]
        value = payload[pos + 2 : pos + 2 + length]
        if pos + 2 + length > end:
            raise TextError(Status.ESME_RINVESMCLASS, "user data header element overruns it")
        if iei == 0x00 and length == 3:
            concat = Concat(value[0], value[1], value[2])
        elif iei == 0x08 and length == 4:
            concat = Concat(int.from_bytes(value[:2], "big"), value[2], value[3])
        pos += 2 + length
    return end, concat


@dataclass(frozen=True, slots=True)
class ReplyPart:
    """One deliver_sm's worth of a reply: what goes in data_coding, esm_class, short_message."""

    data_coding: int
    esm_class: int
    short_message: bytes


def encode_reply(text: str, reference: int, *, packed: bool = False) -> list[ReplyPart]:
    """Our reply as deliver_sm parts; ``reference`` (0-255) ties concatenated parts together.

    Raises ``ValueError`` if the text would need more than 255 parts.
    """
    septets = encode_gsm7(text)
    if septets is not None:
        if len(septets) <= GSM_SINGLE:
            return [ReplyPart(0x00, 0x00, pack_septets(septets) if packed else septets)]
        chunks = _split_gsm7(text)
        return _with_headers(chunks, reference, 0x00, packed)
    encoded = text.encode("utf-16-be")
    if len(encoded) <= UCS2_SINGLE:
        return [ReplyPart(0x08, 0x00, encoded)]
    return _with_headers(_split_ucs2(text), reference, 0x08, packed=False)


def _split_gsm7(text: str) -> list[bytes]:
    chunks: list[bytes] = []
    current = bytearray()
    for char in text:
        code = _ENCODE[char]
        if len(current) + len(code) > GSM_PART:
            chunks.append(bytes(current))
            current = bytearray()
        current += code
    chunks.append(bytes(current))
    return chunks


def _split_ucs2(text: str) -> list[bytes]:
    chunks: list[bytes] = []
    current = bytearray()
    for char in text:
        code = char.encode("utf-16-be")  # four octets for a character outside the BMP
        if len(current) + len(code) > UCS2_PART:
            chunks.append(bytes(current))
            current = bytearray()
        current += code
    chunks.append(bytes(current))
    return chunks


def _with_headers(
    chunks: list[bytes], reference: int, data_coding: int, packed: bool
) -> list[ReplyPart]:
    if len(chunks) > 255:
        raise ValueError("a reply may not need more than 255 parts")
    parts = []
    for number, chunk in enumerate(chunks, start=1):
        header = bytes([0x05, 0x00, 0x03, reference & 0xFF, len(chunks), number])
        body = pack_septets(chunk, fill_bits=1) if packed else chunk  # 6 octets + 1 bit = 7 septets
        parts.append(ReplyPart(data_coding, UDHI, header + body))
    return parts
