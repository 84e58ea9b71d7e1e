"""The commands citizens can send, tried in order on folded text.

Adding a command is one new module with a parser (folded text -> its command, a :class:`Help`,
or None for "not mine"), plus one line here to import it, list it and add its result type to
:data:`Command`, so that mypy makes every channel handle it. The list is explicit so that grep
and mypy can follow it; nothing is discovered at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeAlias

from commands import password_reset
from commands.grammar import Help
from commands.password_reset import ResetCommand

Command: TypeAlias = ResetCommand
"""Every command a citizen can send (a union once there are several)."""

CommandParser: TypeAlias = Callable[[str], Command | Help | None]

COMMAND_PARSERS: Final[tuple[CommandParser, ...]] = (password_reset.parse_password_reset,)


def dispatch(folded: str) -> Command | Help:
    """The first parser's answer that is not None; the general help reply if none claims it."""
    for parser in COMMAND_PARSERS:
        answer = parser(folded)
        if answer is not None:
            return answer
    return Help()
