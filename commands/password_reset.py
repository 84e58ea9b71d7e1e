"""``BH MK <code>``: the password-reset command, as BHXH publishes it for short code 8079.

The code is the 10-digit mã số BHXH, or a health-insurance card number (2 letters, a benefit
level digit, a 2-digit province, then the 10-digit code) from which we take the last 10 digits.
This module only reads text that :mod:`commands.parse` has already folded; it lives on its own
so that what "BH MK" means can change without touching the other commands or the folding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from commands.grammar import (
    MAX_TYPED_CHARS,
    Help,
    is_letter,
    read_digit_groups,
    read_keywords,
    skip_separators,
)

KEYWORDS: Final = ("BH", "MK")
CODE_DIGITS: Final = 10
CARD_LETTERS: Final = 2
CARD_DIGITS: Final = 13
"""Benefit level (1), province (2), then the code (10)."""


@dataclass(frozen=True, slots=True)
class ResetCommand:
    """``BH MK <code>``: reset the password of the account with this 10-digit code.

    ``code_received`` is the code as typed (folded, separators kept), for the audit trail.
    """

    code: str
    code_received: str


@dataclass(frozen=True, slots=True)
class CodeToken:
    """A code-shaped token: the 10-digit code when the length is right, and what was typed."""

    code: str | None
    typed: str
    end: int


def read_code(text: str, pos: int) -> CodeToken | None:
    """The code or card number starting at ``pos`` in folded text; None if nothing code-shaped.

    Code-shaped means digits, optionally after exactly two letters (a card's prefix); digits
    may be grouped (``0123 456 789``, ``DN 4 79 0123456789``). The wrong number of digits gives
    a token without a code, so the citizen can be told the code has 10 digits.
    """
    prefix = ""
    wanted = CODE_DIGITS
    letters = text[pos : pos + CARD_LETTERS]
    if len(letters) == CARD_LETTERS and all(map(is_letter, letters)):
        after_letters = skip_separators(text, pos + CARD_LETTERS)
        prefix = text[pos : min(after_letters, pos + CARD_LETTERS + 1)]
        pos = after_letters
        wanted = CARD_DIGITS
    number = read_digit_groups(text, pos, wanted)
    if number is None:
        return None
    typed = (prefix + number.typed)[:MAX_TYPED_CHARS]
    code = number.digits[-CODE_DIGITS:] if len(number.digits) == wanted else None
    return CodeToken(code, typed, number.end)


def parse_password_reset(text: str) -> ResetCommand | Help | None:
    """``BH MK <code>`` at the start of folded ``text``; None when the text is not this command.

    Anything after the code is ignored (``BH MK 0123456789 cam on``).
    """
    after_keywords = read_keywords(text, 0, KEYWORDS)
    if after_keywords is None:
        return None
    token = read_code(text, skip_separators(text, after_keywords))
    if token is None:
        return Help()
    if token.code is None:
        return Help("help_code_length", token.typed)
    return ResetCommand(token.code, token.typed)
