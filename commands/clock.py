"""The wall clock as a port, so the rules take time as an input and tests can fix it."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    """``commands.ports.Clock`` backed by the system's UTC time."""

    def now(self) -> datetime:
        return datetime.now(UTC)
