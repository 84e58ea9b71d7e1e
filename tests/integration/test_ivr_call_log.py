"""The hotline's call log in a real database: a billing row survives a database hiccup.

The worker pool is replaced by one that runs the write at once on the test's thread (the
database is real); the pauses between attempts run on a ``Clock``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher

from gateway.calls import RETRY_DELAYS, DatabaseCallLog
from gateway.events import DatabaseFailed
from ivr.records import CallOutcome, CallRecord
from store.models import CallRow

START = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
RECORD = CallRecord(
    unique_id="1795340130.1",
    channel="Local/19009068@hotline-00000000;2",
    caller_received="0912345678",
    caller_presentation=0,
    caller="+84912345678",
    started_at=START,
    answered_at=START,
    ended_at=START + timedelta(seconds=75),
    keys="menu:8 code:********89",
    outcome=CallOutcome.RESET,
)


class InlineWorkers:
    def run(self, function: Callable[..., Any], *args: Any) -> Deferred[Any]:
        return maybeDeferred(function, *args)


class Events:
    def __init__(self) -> None:
        self.events: list[object] = []

    def observe(self, event: object) -> None:
        self.events.append(event)


@pytest.fixture
def logged() -> Iterator[list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)


def rename(engine: Engine, old: str, new: str) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text(f"ALTER TABLE {old} RENAME TO {new}"))


def rows(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(CallRow.__table__)))


def call_log(engine: Engine, clock: Clock, events: Events) -> DatabaseCallLog:
    return DatabaseCallLog(engine, InlineWorkers(), events, clock)  # type: ignore[arg-type]


def test_a_write_that_fails_is_tried_again_and_the_row_kept(engine: Engine) -> None:
    clock, events = Clock(), Events()
    rename(engine, "calls", "calls_away")  # the table is unreachable for a moment
    try:
        call_log(engine, clock, events).record(RECORD)
    finally:
        rename(engine, "calls_away", "calls")
    clock.advance(RETRY_DELAYS[0])
    [row] = rows(engine)
    assert row.unique_id == RECORD.unique_id and row.billed_minutes == 2
    assert sum(isinstance(e, DatabaseFailed) for e in events.events) == 1
    assert clock.getDelayedCalls() == []


def test_retries_are_bounded_then_the_loss_is_logged(
    engine: Engine, logged: list[dict[str, Any]]
) -> None:
    clock, events = Clock(), Events()
    rename(engine, "calls", "calls_away")
    try:
        call_log(engine, clock, events).record(RECORD)
        for delay in RETRY_DELAYS:
            clock.advance(delay)
        assert clock.getDelayedCalls() == []  # no more attempts
    finally:
        rename(engine, "calls_away", "calls")
    assert rows(engine) == []
    failures = [e for e in events.events if isinstance(e, DatabaseFailed)]
    assert len(failures) == len(RETRY_DELAYS) + 1
    lost = [e for e in logged if e.get("log_failure") is not None]
    assert len(lost) == 1 and lost[0]["unique_id"] == RECORD.unique_id
