"""The reconciliation report: what the gateway handled, per day, as the telcos will bill it.

Telcos bill BHXH 1,000 VND per message to 8079 and 1,000 VND per started minute on 1900.9068.
This report counts, for each local day of a date range (Vietnam time, UTC+7, by default):

* ``sms``: messages received per peer (``inbound`` rows, each part of a long message counted
  as the SMS the telco bills; resends recognised as duplicates excluded and shown apart), and
  replies that ended ``acknowledged`` / ``failed`` / ``expired`` on that day (``outbox``, by
  ``finished_at``);
* ``reset``: reset decisions by channel, carrier and outcome (``reset_events``);
* ``call``: calls, answered calls and billed minutes per carrier (``calls``, by start time).

Every figure is one set-based ``GROUP BY`` query per table (indexes on the time columns), on
SQLite and PostgreSQL alike; totals per line and grand totals per measure follow the days.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any, Final, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from store.delivery import FINAL, REPLY
from store.models import CallRow, InboundRow, OutboxRow, ResetEventRow

VIETNAM: Final = timedelta(hours=7)
ALL: Final = "all"

Key = tuple[str, str, str, str, str]
"""category, peer, channel, carrier, measure"""

_INBOUND = cast(sa.Table, InboundRow.__table__)
_OUTBOX = cast(sa.Table, OutboxRow.__table__)
_RESETS = cast(sa.Table, ResetEventRow.__table__)
_CALLS = cast(sa.Table, CallRow.__table__)


@dataclass(frozen=True, slots=True)
class Prices:
    """What the telcos charge, in VND."""

    per_message: int = 1000
    per_call_minute: int = 1000


@dataclass(frozen=True, slots=True)
class Line:
    """One figure: ``quantity`` of ``measure`` on ``day`` (None in the totals)."""

    day: date | None
    category: str
    peer: str
    channel: str
    carrier: str
    measure: str
    quantity: int
    amount_vnd: int | None = None

    @property
    def key(self) -> Key:
        return (self.category, self.peer, self.channel, self.carrier, self.measure)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["day"] = "total" if self.day is None else self.day.isoformat()
        return data


@dataclass(frozen=True, slots=True)
class Report:
    """The lines of each day, then totals per line and grand totals per measure."""

    start: date
    end: date
    utc_offset: timedelta
    prices: Prices
    days: tuple[Line, ...]
    totals: tuple[Line, ...] = field(default=())

    @property
    def amount_vnd(self) -> dict[str, int]:
        amounts = {"sms": 0, "call": 0}
        for line in self.days:
            if line.amount_vnd:
                amounts[line.category] += line.amount_vnd
        return {**amounts, ALL: sum(amounts.values())}


def billing_report(
    engine: Engine,
    start: date,
    end: date,
    utc_offset: timedelta = VIETNAM,
    prices: Prices | None = None,
) -> Report:
    """The report for the local days ``start`` to ``end`` inclusive."""
    if end < start:
        raise ValueError("the end date is before the start date")
    prices = prices or Prices()
    zone = timezone(utc_offset)
    low = datetime.combine(start, time(0), zone).astimezone(UTC)
    high = datetime.combine(end + timedelta(days=1), time(0), zone).astimezone(UTC)
    minutes = int(utc_offset.total_seconds() // 60)
    with engine.connect() as connection:
        lines = [
            *_inbound(connection, low, high, minutes, prices),
            *_replies(connection, low, high, minutes),
            *_resets(connection, low, high, minutes),
            *_calls(connection, low, high, minutes, prices),
        ]
    lines.sort(key=lambda line: (line.day or date.max, *line.key))
    return Report(start, end, utc_offset, prices, tuple(lines), _totals(lines))


def _day(connection: Connection, column: sa.ColumnElement[Any], minutes: int) -> Any:
    """The local calendar day of a UTC timestamp column, in SQL."""
    if connection.dialect.name == "sqlite":
        return sa.func.date(column, f"{minutes:+d} minutes")
    shifted = column + sa.literal_column(f"INTERVAL '{minutes:d} minutes'", sa.Interval)
    return sa.cast(shifted, sa.Date)


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _inbound(
    connection: Connection, low: datetime, high: datetime, minutes: int, prices: Prices
) -> Iterable[Line]:
    day = _day(connection, _INBOUND.c.received_at, minutes).label("day")
    duplicate = (_INBOUND.c.state == "duplicate").label("duplicate")
    query = (
        sa.select(day, _INBOUND.c.peer, duplicate, sa.func.count())
        .where(_INBOUND.c.received_at >= low, _INBOUND.c.received_at < high)
        .group_by(day, _INBOUND.c.peer, duplicate)
    )
    for when, peer, is_duplicate, count in connection.execute(query):
        if is_duplicate:
            yield Line(_as_date(when), "sms", peer, "sms", "", "duplicates", count)
        else:
            amount = count * prices.per_message
            yield Line(_as_date(when), "sms", peer, "sms", "", "received", count, amount)


def _replies(connection: Connection, low: datetime, high: datetime, minutes: int) -> Iterable[Line]:
    day = _day(connection, _OUTBOX.c.finished_at, minutes).label("day")
    query = (
        sa.select(day, _OUTBOX.c.peer, _OUTBOX.c.state, sa.func.count())
        .where(
            _OUTBOX.c.kind == REPLY,  # receipts are not replies, and nobody pays for them
            _OUTBOX.c.state.in_(FINAL),
            _OUTBOX.c.finished_at >= low,
            _OUTBOX.c.finished_at < high,
        )
        .group_by(day, _OUTBOX.c.peer, _OUTBOX.c.state)
    )
    for when, peer, state, count in connection.execute(query):
        yield Line(_as_date(when), "sms", peer, "sms", "", f"replies_{state}", count)


def _resets(connection: Connection, low: datetime, high: datetime, minutes: int) -> Iterable[Line]:
    r = _RESETS.c
    day = _day(connection, r.at, minutes).label("day")
    query = (
        sa.select(day, r.channel, r.carrier, r.outcome, sa.func.count())
        .where(r.at >= low, r.at < high)
        .group_by(day, r.channel, r.carrier, r.outcome)
    )
    for when, channel, carrier, outcome, count in connection.execute(query):
        yield Line(_as_date(when), "reset", "", channel, carrier, outcome, count)


def _calls(
    connection: Connection, low: datetime, high: datetime, minutes: int, prices: Prices
) -> Iterable[Line]:
    c = _CALLS.c
    day = _day(connection, c.started_at, minutes).label("day")
    query = (
        sa.select(
            day,
            c.carrier,
            sa.func.count(),
            sa.func.count(c.answered_at),
            sa.func.coalesce(sa.func.sum(c.billed_minutes), 0),
        )
        .where(c.started_at >= low, c.started_at < high)
        .group_by(day, c.carrier)
    )
    for when, carrier, calls, answered, billed in connection.execute(query):
        local = _as_date(when)
        yield Line(local, "call", "", "ivr", carrier, "calls", calls)
        yield Line(local, "call", "", "ivr", carrier, "answered", answered)
        amount = int(billed) * prices.per_call_minute
        yield Line(local, "call", "", "ivr", carrier, "billed_minutes", int(billed), amount)


def _totals(lines: list[Line]) -> tuple[Line, ...]:
    """Per line over the days, then per measure over everything (``all``)."""
    sums: dict[Key, list[int]] = {}
    priced: set[Key] = set()
    for line in lines:
        grand: Key = (line.category, ALL, ALL, ALL, line.measure)
        for key in (line.key, grand):
            total = sums.setdefault(key, [0, 0])
            total[0] += line.quantity
            total[1] += line.amount_vnd or 0
            if line.amount_vnd is not None:
                priced.add(key)
    ordered = sorted(sums.items(), key=lambda item: (item[0][1] == ALL, item[0]))
    return tuple(
        Line(None, *key, quantity, amount if key in priced else None)
        for key, (quantity, amount) in ordered
    )
