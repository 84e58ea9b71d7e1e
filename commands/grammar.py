"""The small vocabulary in which every command's syntax is written.

:mod:`commands.parse` folds what a citizen typed exactly once (Unicode forms, diacritics, case,
exotic spaces and dashes); command modules then read that folded text with these helpers. So no
command re-implements tolerance for separators or grouped digits, and none normalises anything
itself. Everything here scans left to right and never backtracks: the cost is linear in the
(already bounded) text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

SEPARATORS: Final = frozenset(" :.,-<>")
"""What may stand between the parts of a command or between groups of digits, after folding.

Folding turns every space into ``" "`` and every dash into ``"-"``. ``<`` and ``>`` are here
because our own help reply shows ``BH MK <Ma so BHXH>``, and people copy it literally.
"""

MAX_TYPED_CHARS: Final = 32
"""How much of a code as typed we keep to quote back (audit, logs); a right-length one fits."""


@dataclass(frozen=True, slots=True)
class Help:
    """Not a command we understand; ``template`` is the help reply to send.

    ``code_received`` is the code-shaped part as typed (folded, bounded) when there was one.
    """

    template: str = "help"
    code_received: str | None = None


@dataclass(frozen=True, slots=True)
class Digits:
    """A number typed in groups (``0123 456 789``), read up to the length a command wants.

    ``typed`` keeps the digits with the first character of each separator run between groups,
    so it can be quoted back and read again, and stays short whatever was typed.
    """

    digits: str
    typed: str
    end: int


def is_letter(char: str) -> bool:
    """An ASCII capital, the only letters folded text can match against."""
    return "A" <= char <= "Z"


def is_digit(char: str) -> bool:
    """An ASCII digit; unlike :meth:`str.isdigit`, other scripts' digits are not."""
    return "0" <= char <= "9"


def skip_separators(text: str, pos: int) -> int:
    """The first position at or after ``pos`` that is not a separator."""
    while pos < len(text) and text[pos] in SEPARATORS:
        pos += 1
    return pos


def read_keywords(text: str, pos: int, keywords: Sequence[str]) -> int | None:
    """The position after ``keywords`` in order, each after optional separators, else None.

    A keyword is matched whole: ``B H`` is not ``BH``.
    """
    for keyword in keywords:
        pos = skip_separators(text, pos)
        if not text.startswith(keyword, pos):
            return None
        pos += len(keyword)
    return pos


def read_digit_groups(text: str, pos: int, wanted: int) -> Digits | None:
    """Digit groups from ``pos`` until at least ``wanted`` digits are read; None if no digit.

    Groups are joined across separator runs only while fewer than ``wanted`` digits have been
    read, so words or numbers after a complete code (``0123456789 0912345678``) are left alone;
    a group that overshoots, or too few digits, yields a wrong-length result for the caller.
    """
    if pos >= len(text) or not is_digit(text[pos]):
        return None
    digits: list[str] = []
    typed: list[str] = []
    count = 0
    while True:
        start = pos
        while pos < len(text) and is_digit(text[pos]):
            pos += 1
        digits.append(text[start:pos])
        typed.append(text[start:pos])
        count += pos - start
        after = skip_separators(text, pos)
        if count >= wanted or after >= len(text) or not is_digit(text[after]):
            break
        typed.append(text[pos])  # the first separator of the run stands for all of it
        pos = after
    return Digits("".join(digits), "".join(typed)[:MAX_TYPED_CHARS], pos)
