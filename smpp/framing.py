"""Cut a TCP byte stream into whole SMPP PDUs.

TCP delivers bytes, not PDUs: one read may hold half a PDU or fifty of them. The framer buffers
and yields each complete PDU as ``bytes`` (header included), whatever the split. It trusts only
``command_length``, and only within bounds: under 16 octets cannot hold a header, and over the
configured maximum is either an attack or garbage, so the framer raises :class:`FramingError`
as soon as the first four octets are known and never waits for (or buffers) the rest. After a
framing error the stream has no trustworthy boundary left; the connection must be closed.
"""

from __future__ import annotations

import struct
from typing import Final

HEADER_LENGTH: Final = 16
_LENGTH = struct.Struct(">L")
_SEQUENCE = struct.Struct(">L")


class FramingError(Exception):
    """The stream announced a PDU length outside ``16 <= length <= maximum``.

    ``sequence`` is the sequence number of the offending header when its 16 octets had already
    arrived (so a ``generic_nack`` can name it), else ``None``. ``frames`` are the whole PDUs
    that came before the bad header in the same read: handle them, then close.
    """

    def __init__(
        self, length: int, maximum: int, sequence: int | None, frames: list[bytes] | None = None
    ) -> None:
        super().__init__(f"command_length {length} outside 16..{maximum}")
        self.length = length
        self.maximum = maximum
        self.sequence = sequence
        self.frames = frames or []


class Framer:
    """Accumulates received bytes and returns the complete PDUs among them."""

    __slots__ = ("_buffer", "_failed", "_maximum")

    def __init__(self, maximum: int = 65536) -> None:
        if maximum < HEADER_LENGTH:
            raise ValueError(f"maximum PDU length must be at least {HEADER_LENGTH}")
        self._maximum = maximum
        self._buffer = bytearray()
        self._failed = False

    @property
    def buffered(self) -> int:
        """Octets received that do not yet form a whole PDU."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data`` and return every PDU now complete, in order.

        Raises :class:`FramingError` on an out-of-bounds length, carrying the PDUs completed
        before the bad header; every later call raises again, with none.
        """
        if self._failed:
            raise FramingError(0, self._maximum, None)
        self._buffer += data
        frames: list[bytes] = []
        buffer = self._buffer
        start = 0
        end = len(buffer)
        while end - start >= 4:
            (length,) = _LENGTH.unpack_from(buffer, start)
            if length < HEADER_LENGTH or length > self._maximum:
                self._failed = True
                sequence = None
                if end - start >= HEADER_LENGTH:
                    (sequence,) = _SEQUENCE.unpack_from(buffer, start + 12)
                self._buffer = bytearray()
                raise FramingError(length, self._maximum, sequence, frames)
            if end - start < length:
                break
            frames.append(bytes(buffer[start : start + length]))
            start += length
        if start:
            del buffer[:start]
        return frames
