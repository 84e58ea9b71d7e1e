"""AGI command lines and AGI replies, in one place.

AsyncAGI carries classic AGI inside AMI: we send a command line in ``Action: AGI``'s
``Command`` header and get the reply, URL-encoded, in ``AsyncAGIExec``'s ``Result``. Every
quirk of that text lives here:

* arguments: Asterisk splits on spaces and honours double quotes and backslashes, so an
  argument with a space, a quote or nothing at all is quoted (``SAY DIGITS 4829175 ""``);
  a newline can never be sent (it would end the command);
* replies: ``200 result=<value>[ endpos=<n>][ (timeout)][ (<data>)]``, where ``<value>`` is a
  number for most commands but the typed digits for ``GET DATA`` (``200 result=01234
  (timeout)``); ``result=-1`` means the channel hung up (or a file was missing);
  ``510`` unknown command, ``511`` dead channel, ``520`` usage (several lines, ``520-``);
* ``Result`` and ``Env`` are percent-encoded with ``%20`` for spaces, never ``+``, so they are
  decoded with :func:`urllib.parse.unquote`, not ``unquote_plus``.

Malformed replies raise :class:`AgiReplyError` (the peer's fault); bad arguments raise
:class:`AgiCommandError` (ours).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

OK: Final = 200
INVALID_COMMAND: Final = 510
DEAD_CHANNEL: Final = 511
USAGE: Final = 520
KEYPAD: Final = "0123456789*#"

_NEEDS_QUOTES = re.compile(r'[\s"\\]')
_FIRST_LINE = re.compile(r"^(\d{3})([ -])(.*)$")
_RESULT = re.compile(r"^result=(\S*)(.*)$")
_ENDPOS = re.compile(r"^endpos=(-?\d+)(.*)$")
_FILE = re.compile(r"^[A-Za-z0-9_./-]+$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\([A-Za-z0-9_,-]*\))?$")


class AgiError(Exception):
    """Base of the AGI errors."""


class AgiReplyError(AgiError):
    """Asterisk's reply is not AGI as we know it."""


class AgiCommandError(AgiError, ValueError):
    """A command we were asked to build cannot be sent safely."""


@dataclass(frozen=True, slots=True)
class AgiResult:
    """A decoded AGI reply."""

    code: int
    result: str = ""
    endpos: int | None = None
    timeout: bool = False
    data: str | None = None
    text: str = ""
    """The whole reply as received (decoded), for logs of failures; never holds a password."""

    @property
    def ok(self) -> bool:
        return self.code == OK

    @property
    def hung_up(self) -> bool:
        """The command ended because the caller hung up (or could not run on this channel)."""
        return self.code == DEAD_CHANNEL or (self.code == OK and self.result == "-1")

    @property
    def number(self) -> int:
        """``result`` as an integer (most commands); :class:`AgiReplyError` if it is not one."""
        try:
            return int(self.result)
        except ValueError:
            raise AgiReplyError(f"result is not a number: {self.result!r}") from None

    @property
    def digit(self) -> str | None:
        """For STREAM FILE, WAIT FOR DIGIT, SAY DIGITS: the key pressed, or None."""
        value = self.number
        if value <= 0:
            return None
        if value > 0x7F or chr(value) not in KEYPAD + "ABCD":
            raise AgiReplyError(f"result is not a DTMF key: {value}")
        return chr(value)


def parse_result(text: str) -> AgiResult:  # noqa: PLR0912 - one flat reading of the grammar
    """Decode one reply (already URL-decoded), e.g. ``200 result=56 endpos=16960\\n``."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise AgiReplyError("empty AGI reply")
    match = _FIRST_LINE.match(lines[0])
    if match is None:
        raise AgiReplyError(f"not an AGI reply: {lines[0][:80]!r}")
    code = int(match.group(1))
    if match.group(2) == "-":
        last = lines[-1]
        if len(lines) < 2 or not last.startswith(f"{code} "):
            raise AgiReplyError(f"unterminated multi-line AGI reply {code}")
        return AgiResult(code, text=text)
    if len(lines) != 1:
        raise AgiReplyError("several lines in a single-line AGI reply")
    if code != OK:
        return AgiResult(code, text=text)
    rest = match.group(3)
    found = _RESULT.match(rest)
    if found is None:
        raise AgiReplyError(f"200 without result=: {rest[:80]!r}")
    result, rest = found.group(1), found.group(2).strip()
    endpos: int | None = None
    timeout = False
    data: str | None = None
    while rest:
        if (pos := _ENDPOS.match(rest)) is not None:
            endpos, rest = int(pos.group(1)), pos.group(2).strip()
        elif rest.startswith("(timeout)"):
            timeout, rest = True, rest[len("(timeout)") :].strip()
        elif rest.startswith("(") and rest.endswith(")"):
            data, rest = rest[1:-1], ""
        else:
            raise AgiReplyError(f"unexpected text in AGI reply: {rest[:80]!r}")
    return AgiResult(OK, result, endpos, timeout, data, text)


def decode_result(encoded: str) -> AgiResult:
    """``AsyncAGIExec``'s ``Result`` header to an :class:`AgiResult`."""
    return parse_result(unquote(encoded, errors="strict"))


def parse_env(encoded: str) -> dict[str, str]:
    """``AsyncAGIStart``'s ``Env`` header (``agi_key: value`` lines, URL-encoded) to a dict."""
    env: dict[str, str] = {}
    try:
        text = unquote(encoded, errors="strict")
    except UnicodeDecodeError as error:
        raise AgiReplyError(f"Env is not UTF-8: {error}") from None
    for line in text.split("\n"):
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.startswith("agi_"):
            raise AgiReplyError(f"not an AGI variable line: {line[:80]!r}")
        env[name] = value[1:] if value.startswith(" ") else value
    return env


def quote(argument: str) -> str:
    """One argument as Asterisk's AGI parser reads it back."""
    if "\n" in argument or "\r" in argument or "\0" in argument:
        raise AgiCommandError("a newline cannot be part of an AGI argument")
    if argument and not _NEEDS_QUOTES.search(argument):
        return argument
    escaped = argument.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def command(name: str, *arguments: str) -> str:
    """``name`` (upper-case words) followed by the quoted arguments."""
    if not re.fullmatch(r"[A-Z]+( [A-Z]+)*", name):
        raise AgiCommandError(f"not an AGI command name: {name!r}")
    return " ".join([name, *(quote(argument) for argument in arguments)])


def _file(name: str) -> str:
    if not _FILE.match(name) or ".." in name:
        raise AgiCommandError(f"not a sound file name: {name!r}")
    return name


def _keys(escape: str) -> str:
    if any(key not in KEYPAD for key in escape):
        raise AgiCommandError(f"escape digits must be keypad keys: {escape!r}")
    return f'"{escape}"'  # always quoted, as Asterisk's own examples and our fixtures do


def answer() -> str:
    return "ANSWER"


def hangup() -> str:
    return "HANGUP"


def stream_file(file: str, escape: str = "") -> str:
    """Play ``file``; a key in ``escape`` stops it (barge-in) and is the result."""
    return f"STREAM FILE {_file(file)} {_keys(escape)}"


def get_data(file: str, timeout_ms: int, max_digits: int) -> str:
    """Play ``file`` and collect up to ``max_digits`` keys; ``#`` ends early."""
    if timeout_ms <= 0 or not 1 <= max_digits <= 64:
        raise AgiCommandError("GET DATA needs a positive timeout and 1 to 64 digits")
    return f"GET DATA {_file(file)} {timeout_ms} {max_digits}"


def wait_for_digit(timeout_ms: int) -> str:
    return f"WAIT FOR DIGIT {int(timeout_ms)}"


def say_digits(digits: str, escape: str = "") -> str:
    """Speak ``digits`` one by one with the channel language's ``digits/N`` files."""
    if not digits or not digits.isascii() or not digits.isdigit():
        raise AgiCommandError("SAY DIGITS takes digits only")
    return f"SAY DIGITS {digits} {_keys(escape)}"


def set_variable(name: str, value: str) -> str:
    """A channel variable, or a dialplan function Asterisk writes (``TIMEOUT(absolute)``)."""
    if not _VARIABLE.match(name):
        raise AgiCommandError(f"not a channel variable name: {name!r}")
    return f"SET VARIABLE {name} {quote(value) if value else chr(34) * 2}"


def exec_application(application: str, arguments: str) -> str:
    """``EXEC Goto hotline-agents,s,1``: run a dialplan application on the channel."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", application):
        raise AgiCommandError(f"not an application name: {application!r}")
    return f"EXEC {application} {quote(arguments)}"


def asyncagi_break() -> str:
    """Leave AsyncAGI; the dialplan continues after ``AGI(agi:async)`` (or where Goto sent it)."""
    return "ASYNCAGI BREAK"
