"""Asterisk Manager Interface (AMI) messages: bytes to messages and back, with no I/O.

Why our own codec: asterisk-ami's ``Event.read`` drops lines it cannot parse and lets a repeated
key overwrite the first one. Asterisk does repeat keys (``Variable:`` on actions, some events)
and spells them as it likes (``CommandId`` in ``AsyncAGIExec`` against ``CommandID`` in the
action), so a message here keeps every header, in order, with its case as received, and looks
keys up case-insensitively.

The stream (Asterisk 22, see ``tests/fixtures/ami``):

* one banner line, ``Asterisk Call Manager/11.0.0\\r\\n``, NOT followed by an empty line;
* then messages: ``Key: Value\\r\\n`` lines ended by an empty line;
* ``Response: Follows`` (the ``Command`` action of older versions) carries free text after
  its headers, up to a line ending in ``--END COMMAND--``.

Anything else is the peer's fault and raises :class:`AmiDecodeError`; the link closes the
connection rather than guessing. Lines and messages are bounded so that a broken peer cannot
make us buffer without limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

MAX_LINE: Final = 64 * 1024
MAX_HEADERS: Final = 512
MAX_BODY_LINES: Final = 10_000
END_COMMAND: Final = "--END COMMAND--"
ENCODING: Final = "utf-8"
_ERRORS: Final = "surrogateescape"  # bytes that are not UTF-8 survive a decode/encode round trip


class AmiDecodeError(Exception):
    """The peer sent something that is not AMI; the connection cannot be trusted any more."""


class AmiEncodeError(ValueError):
    """A header we were asked to send would break the framing (a newline, a colon in a key)."""


@dataclass(frozen=True, slots=True)
class Banner:
    """The first line of a session, e.g. ``Asterisk Call Manager/11.0.0``."""

    text: str


@dataclass(frozen=True, slots=True)
class Message:
    """One AMI message: a response, an event or an action, headers in the order received."""

    headers: tuple[tuple[str, str], ...]
    body: tuple[str, ...] = ()

    def get(self, key: str, default: str | None = None) -> str | None:
        """The first value of ``key`` (case-insensitive), else ``default``."""
        wanted = key.lower()
        for name, value in self.headers:
            if name.lower() == wanted:
                return value
        return default

    def get_all(self, key: str) -> list[str]:
        """Every value of ``key`` (case-insensitive), in order."""
        wanted = key.lower()
        return [value for name, value in self.headers if name.lower() == wanted]

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    @property
    def event(self) -> str | None:
        return self.get("Event")

    @property
    def response(self) -> str | None:
        return self.get("Response")

    @property
    def action(self) -> str | None:
        return self.get("Action")

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    def encode(self) -> bytes:
        return encode(self.headers, self.body)


Item = Banner | Message


class Decoder:
    """Incremental decoder: ``feed`` any chunk of the stream, get the complete items in it.

    ``expect_banner=False`` decodes the other direction (actions sent to Asterisk).
    """

    def __init__(self, *, expect_banner: bool = True) -> None:
        self._buffer = bytearray()
        self._need_banner = expect_banner
        self._headers: list[tuple[str, str]] = []
        self._body: list[str] = []
        self._in_body = False

    def feed(self, data: bytes) -> list[Item]:
        self._buffer += data
        items: list[Item] = []
        for line in self._lines():
            item = self._line(line)
            if item is not None:
                items.append(item)
        if len(self._buffer) > MAX_LINE:
            raise AmiDecodeError(f"line longer than {MAX_LINE} bytes")
        return items

    @property
    def pending(self) -> bool:
        """True while a message has started but not ended (useful at EOF)."""
        return bool(self._buffer or self._headers or self._body)

    def _lines(self) -> Iterator[str]:
        start = 0
        buffer = self._buffer
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            stop = end - 1 if end > start and buffer[end - 1] == 0x0D else end
            if stop - start > MAX_LINE:
                raise AmiDecodeError(f"line longer than {MAX_LINE} bytes")
            yield bytes(buffer[start:stop]).decode(ENCODING, _ERRORS)
            start = end + 1
        del buffer[:start]

    def _line(self, line: str) -> Item | None:
        if self._need_banner:
            self._need_banner = False
            if not line.startswith("Asterisk Call Manager/"):
                raise AmiDecodeError(f"not an AMI banner: {line[:80]!r}")
            return Banner(line)
        if self._in_body:
            return self._body_line(line)
        if line == "":
            if not self._headers:
                return None  # tolerate stray empty lines between messages
            return self._finish()
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            if self._is_follows():
                self._in_body = True
                return self._body_line(line)
            raise AmiDecodeError(f"not a 'Key: Value' line: {line[:80]!r}")
        if len(self._headers) >= MAX_HEADERS:
            raise AmiDecodeError(f"more than {MAX_HEADERS} headers in one message")
        self._headers.append((name, value[1:] if value.startswith(" ") else value))
        return None

    def _body_line(self, line: str) -> Item | None:
        if line.endswith(END_COMMAND):
            text = line[: -len(END_COMMAND)]
            if text:
                self._body.append(text)
            self._in_body = False
            return None
        if len(self._body) >= MAX_BODY_LINES:
            raise AmiDecodeError(f"more than {MAX_BODY_LINES} lines of command output")
        self._body.append(line)
        return None

    def _is_follows(self) -> bool:
        return any(k.lower() == "response" and v == "Follows" for k, v in self._headers)

    def _finish(self) -> Message:
        message = Message(tuple(self._headers), tuple(self._body))
        self._headers = []
        self._body = []
        return message


def decode_all(data: bytes, *, expect_banner: bool = True) -> list[Item]:
    """Every complete item in ``data`` (a whole recorded stream, for instance)."""
    return Decoder(expect_banner=expect_banner).feed(data)


def encode(headers: Iterable[tuple[str, str]], body: Sequence[str] = ()) -> bytes:
    """One message on the wire. Keys and values are checked so nothing can inject a header."""
    out: list[str] = []
    for name, value in headers:
        if not name or ":" in name or name != name.strip() or _has_newline(name):
            raise AmiEncodeError(f"bad AMI header name {name!r}")
        if _has_newline(value):
            raise AmiEncodeError(f"newline in the value of AMI header {name!r}")
        out.append(f"{name}: {value}\r\n")
    if body:
        out.extend(f"{line}\r\n" for line in body)
        out.append(f"{END_COMMAND}\r\n")
    out.append("\r\n")
    return "".join(out).encode(ENCODING, _ERRORS)


def action(name: str, action_id: str, *headers: tuple[str, str]) -> bytes:
    """An action with its ActionID right after the ``Action`` line (as Asterisk's own tools do)."""
    return encode((("Action", name), ("ActionID", action_id), *headers))


def _has_newline(text: str) -> bool:
    return "\r" in text or "\n" in text
