"""A value that must never be printed, logged or stored by accident.

Passwords travel from the generator to the SMS renderer and the IVR's digit prompts wrapped in
:class:`Secret`; every accidental ``str()``, ``repr()`` or f-string shows ``********``. Code that
really needs the value calls :meth:`Secret.reveal`, which is easy to grep for.
"""

from __future__ import annotations

import hmac
from typing import Final

MASK: Final = "********"


class Secret:
    """Holds a sensitive string; only :meth:`reveal` returns it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def matches(self, candidate: str) -> bool:
        """Compare in constant time (for bind passwords and AMI secrets)."""
        return hmac.compare_digest(self._value.encode("utf-8"), candidate.encode("utf-8"))

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __format__(self, format_spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and self.matches(other._value)

    def __hash__(self) -> int:
        return hash(Secret)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")
