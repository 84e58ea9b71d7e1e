"""A clock the test moves by hand (``commands.ports.Clock``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FixedClock:
    """Stands still until :meth:`advance` is called."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 22, 8, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> None:
        self._now += timedelta(**delta)
