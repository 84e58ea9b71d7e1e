"""Citizens' text to a command: all normalisation of what people type lives here.

Phones and people send the same command in many shapes: full-width letters and digits from
CJK-capable keyboards, Vietnamese diacritics added by autocorrect (``Mk̀``, ``ḄḤ``), text in
decomposed Unicode, non-breaking and zero-width characters pasted from chat apps, dashes turned
typographic. :func:`fold` reduces all of that once to upper-case text with plain spaces and
dashes; the command modules listed in :mod:`commands.registry` then read it. Folding uses
Unicode's own compatibility decomposition (NFKD, i.e. NFKC's mapping plus NFD) and drops marks,
so only letters that genuinely decompose to ``B``, ``H``, ``M``, ``K`` match the keywords:
Cyrillic or Greek look-alikes do not, and digits of other scripts are not digits.

Only the first :data:`MAX_INSPECTED_CHARS` characters are read, and nothing backtracks, so a
long concatenated SMS or hostile input costs little. :func:`parse` never raises.
"""

from __future__ import annotations

import unicodedata
from typing import Final

from commands.grammar import Help, skip_separators
from commands.password_reset import CODE_DIGITS, ResetCommand, read_code
from commands.registry import Command, dispatch

__all__ = ["MAX_INSPECTED_CHARS", "Help", "ResetCommand", "fold", "normalise_code", "parse"]

MAX_INSPECTED_CHARS: Final = 1_000
"""A command is a few dozen characters; anything after this many is not read at all."""

_INVISIBLE_CATEGORIES: Final = frozenset({"Mn", "Me", "Cf"})
"""Combining marks (diacritics, once decomposed) and format characters (zero-width, BOM)."""

_FOLDS: Final = str.maketrans(
    {
        "Đ": "D",  # Vietnamese d-with-stroke has no decomposition
        "đ": "d",
        "\u2010": "-",  # hyphen (also what NFKD makes of the non-breaking hyphen)
        "\u2012": "-",  # figure dash
        "\u2013": "-",  # en dash, what autocorrect makes of "--" or " - "
        "\u2014": "-",  # em dash
        "\u2015": "-",  # horizontal bar
        "\u2212": "-",  # minus sign
    }
)


_ASCII_SPACES: Final = str.maketrans({chr(c): " " for c in range(128) if chr(c).isspace()})


def fold(text: str) -> str:
    """``text`` as command parsers see it: upper case, marks and invisibles gone, plain spaces.

    Every Unicode space becomes ``" "`` and every dash ``"-"``; full-width and other
    compatibility forms become their ASCII letters and digits.
    """
    if text.isascii():
        # Nearly every message: NFKD leaves ASCII as it is, no ASCII character is a mark or
        # a format character, and no fold applies; only spaces and case remain to do.
        return text[:MAX_INSPECTED_CHARS].translate(_ASCII_SPACES).upper()
    return _fold_unicode(text)


def _fold_unicode(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text[:MAX_INSPECTED_CHARS])
    kept = (
        " " if char.isspace() else char
        for char in decomposed
        if unicodedata.category(char) not in _INVISIBLE_CATEGORIES
    )
    return "".join(kept).translate(_FOLDS).upper()


def parse(text: str) -> Command | Help:
    """What a citizen's message asks for: a command, or the help reply to send. Never raises."""
    return dispatch(fold(text))


def normalise_code(raw: str) -> str | None:
    """The 10-digit mã số BHXH in ``raw`` typed alone (keypad, CLI), else None.

    Accepts what ``BH MK`` accepts for its code part, and nothing more: 10 digits or a
    health-insurance card number, grouped or not, with separators only around it.
    """
    if len(raw) == CODE_DIGITS and raw.isascii() and raw.isdigit():
        return raw  # already what the reading below would give (the code of every parsed SMS)
    text = fold(raw)
    token = read_code(text, skip_separators(text, 0))
    if token is None or token.code is None or skip_separators(text, token.end) != len(text):
        return None
    return token.code
