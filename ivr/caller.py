"""Who is calling, from the AGI environment: a number we may use, or why not.

Asterisk puts the number in ``agi_callerid`` even when the caller asked to withhold it; only
``agi_callingpres`` tells (ITU-T Q.931 presentation indicator in bits 5-6: 0 allowed,
1 restricted, 2 not available; screening in bits 0-1). So a withheld number is decided by the
presentation, never by the number's shape. ``unknown`` (no caller ID at all) and ``anonymous``
(``From: anonymous``) are no number. Anything else is normalised with
:func:`commands.phone.normalise_phone`; a number that is not valid is its own case.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from commands.phone import normalise_phone

PRESENTATION_MASK: Final = 0x60
RESTRICTED: Final = 0x20
UNAVAILABLE: Final = 0x40
NO_NUMBER_TEXTS: Final = frozenset({"", "unknown", "anonymous", "<unknown>", "restricted"})


class CallerStatus(enum.StrEnum):
    OK = "ok"
    WITHHELD = "withheld"
    NO_NUMBER = "no_number"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class CallerId:
    """The caller as received and as we will use it."""

    received: str
    presentation: int | None
    status: CallerStatus
    e164: str | None = None


def caller_from_env(env: Mapping[str, str]) -> CallerId:
    received = env.get("agi_callerid", "").strip()[:64]
    try:
        presentation: int | None = int(env.get("agi_callingpres", ""))
    except ValueError:
        presentation = None
    if presentation is not None and presentation & PRESENTATION_MASK in (RESTRICTED, UNAVAILABLE):
        status = (
            CallerStatus.NO_NUMBER
            if presentation & PRESENTATION_MASK == UNAVAILABLE
            and received.lower() in NO_NUMBER_TEXTS
            else CallerStatus.WITHHELD
        )
        return CallerId(received, presentation, status)
    if received.lower() in NO_NUMBER_TEXTS:
        return CallerId(received, presentation, CallerStatus.NO_NUMBER)
    phone = normalise_phone(received)
    if phone is None:
        return CallerId(received, presentation, CallerStatus.INVALID)
    return CallerId(received, presentation, CallerStatus.OK, phone.e164)
