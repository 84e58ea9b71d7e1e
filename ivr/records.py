"""What the hotline keeps about a call: the record, its outcome, and where it goes.

The dialog fills one :class:`CallRecord` per call and hands it to a :class:`CallLog`; the
gateway implements that port with a database table (billing is per started minute on
1900.9068, so start, answer and end are kept to the second). A record never holds a password;
the code typed on the keypad appears only masked (:func:`mask_code`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class CallOutcome(enum.StrEnum):
    """How a call ended (a bounded set: a metrics label and a column)."""

    RESET = "reset"
    MISMATCH = "mismatch"
    RATE_LIMITED = "rate_limited"
    INVALID = "invalid"
    TOO_MANY_TRIES = "too_many_tries"
    WITHHELD = "withheld"
    NO_NUMBER = "no_number"
    INVALID_NUMBER = "invalid_number"
    ROUTED = "routed"
    NO_CHOICE = "no_choice"
    HUNG_UP = "hung_up"
    LINK_LOST = "link_lost"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One hotline call, as kept for operators and billing. Never a password."""

    unique_id: str
    channel: str
    caller_received: str
    caller_presentation: int | None
    caller: str | None
    """The caller's number in E.164 when it is valid and not withheld, else None."""
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    keys: str
    """The keys path, e.g. ``menu:8 code:********89 code:#`` (codes masked)."""
    outcome: CallOutcome
    detail: str = ""
    password_spoken_at: datetime | None = None
    """When the new password started to be read out (for the time-to-password figure)."""

    @property
    def duration_seconds(self) -> float:
        return max((self.ended_at - self.started_at).total_seconds(), 0.0)

    @property
    def billed_minutes(self) -> int:
        """1,000 VND per started minute from the answer (none if never answered)."""
        if self.answered_at is None:
            return 0
        seconds = max((self.ended_at - self.answered_at).total_seconds(), 0.0)
        return int(-(-seconds // 60))


class CallLog(Protocol):
    """Where finished calls go (the gateway stores them; tests keep a list)."""

    def record(self, call: CallRecord) -> None: ...


def mask_code(code: str) -> str:
    """Keep only the last two keys of a typed code: ``0123456789`` -> ``********89``."""
    if len(code) <= 2:
        return "*" * len(code)
    return "*" * (len(code) - 2) + code[-2:]
