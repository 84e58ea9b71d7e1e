"""The running service deletes expired message texts itself, every ``prune_interval_hours``.

:func:`retention_service` is what the gateway mounts: a timer that runs
:func:`store.retention.prune_message_bodies` on the worker pool, once at start and then at the
configured interval, and logs what it deleted. A failed run is logged and retried at the next
interval; it never stops the timer or the service. ``vssid-gateway db prune`` does the same once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from twisted.application.internet import TimerService
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from gateway.components import Store
from gateway.config import Settings
from gateway.monitor import Workers
from store.retention import Pruned, prune_message_bodies

_log = Logger(namespace="vssid.retention")


class RetentionSource(Protocol):
    """What pruning needs of the gateway."""

    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> Store: ...

    @property
    def workers(self) -> Workers: ...


def cutoff(days: int, now: datetime) -> datetime:
    return now - timedelta(days=days)


class Pruning:
    """One run of the prune on a worker thread; reports, never raises into the timer."""

    def __init__(self, source: RetentionSource, clock: IReactorTime) -> None:
        self._source = source
        self._clock = clock

    def __call__(self) -> Deferred[None]:
        days = self._source.settings.retention.message_body_days
        before = cutoff(days, datetime.fromtimestamp(self._clock.seconds(), UTC))
        running = self._source.workers.run(prune_message_bodies, self._source.store.engine, before)
        return running.addCallbacks(self._done, self._failed, callbackArgs=(days,))

    def _done(self, pruned: Pruned, days: int) -> None:
        _log.info(
            "retention: deleted {inbound_payloads} message text(s) and {reply_bodies} reply "
            "text(s) older than {days} days",
            event="retention_pruned",
            inbound_payloads=pruned.inbound_payloads,
            reply_bodies=pruned.reply_bodies,
            days=days,
        )

    def _failed(self, failure: Failure) -> None:
        _log.failure("retention: pruning old message texts failed", failure)


def retention_service(source: RetentionSource, reactor: Any = None) -> Service:
    """The daily prune (a do-nothing service when ``message_body_days`` is 0)."""
    settings = source.settings.retention
    if settings.message_body_days <= 0:
        return Service()
    if reactor is None:
        from twisted.internet import reactor as global_reactor  # noqa: PLC0415

        reactor = global_reactor
    timer = TimerService(settings.prune_interval_hours * 3600.0, Pruning(source, reactor))
    timer.clock = reactor
    return timer
