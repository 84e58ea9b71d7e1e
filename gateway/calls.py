"""The IVR's call log, kept in the database (:class:`ivr.records.CallLog`).

The dialog reports a finished call on the reactor thread; the row is written on the worker
pool so the reactor never waits, and observers (metrics, logs) hear about it at once.

A row is a billing record (1,000 VND a started minute): a database hiccup at the end of a call
must not lose it. A failed write is tried again a few times with growing pauses (writing the
same call twice keeps one row: the unique id is the key), then given up with an error log.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy.engine import Engine
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from commands.phone import OTHER_CARRIER, carrier_of
from gateway.events import CallFinished, DatabaseFailed, GatewayObserver
from gateway.workers import WorkerPool
from ivr.records import CallRecord
from store.calls import CallFields, record_call

log = Logger()

RETRY_DELAYS: Final = (1.0, 4.0, 15.0)
"""Seconds before each new attempt at a failed write: four attempts over about 20 s."""


class DatabaseCallLog:
    """Writes each finished call to the ``calls`` table, retrying a failed write."""

    def __init__(
        self,
        engine: Engine,
        workers: WorkerPool,
        observer: GatewayObserver,
        clock: IReactorTime | None = None,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
    ) -> None:
        if clock is None:
            from twisted.internet import reactor as clock  # noqa: PLC0415 - the running reactor
        self._engine = engine
        self._workers = workers
        self._observer = observer
        self._clock: Any = clock
        self._delays = retry_delays

    def record(self, call: CallRecord) -> None:
        self._observer.observe(CallFinished(call))
        fields = CallFields(
            unique_id=call.unique_id,
            channel=call.channel,
            caller_received=call.caller_received,
            caller_presentation=call.caller_presentation,
            caller=call.caller,
            carrier=carrier_of(call.caller) if call.caller else OTHER_CARRIER,
            started_at=call.started_at,
            answered_at=call.answered_at,
            ended_at=call.ended_at,
            duration_seconds=call.duration_seconds,
            billed_minutes=call.billed_minutes,
            keys=call.keys,
            outcome=call.outcome.value,
            detail=call.detail,
            password_spoken_at=call.password_spoken_at,
        )
        self._write(fields, 0)

    def _write(self, fields: CallFields, attempt: int) -> None:
        written = self._workers.run(record_call, self._engine, fields)
        written.addErrback(self._failed, fields, attempt)

    def _failed(self, failure: Failure, fields: CallFields, attempt: int) -> None:
        error = type(failure.value).__name__
        self._observer.observe(DatabaseFailed("record call", error))
        if attempt < len(self._delays):
            delay = self._delays[attempt]
            log.warn(
                "recording call {unique_id} failed ({error}); trying again in {delay:g} s",
                unique_id=fields.unique_id,
                error=error,
                delay=delay,
            )
            self._clock.callLater(delay, self._write, fields, attempt + 1)
            return
        log.failure(
            "recording call {unique_id} failed {attempts} times: its row is lost",
            failure,
            unique_id=fields.unique_id,
            attempts=attempt + 1,
        )
