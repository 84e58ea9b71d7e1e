"""Everything that watches the gateway, built once and handed to the parts that report.

The service builds one :class:`Monitor` and passes its observers where events happen:
:attr:`Monitor.smpp_observer` to ``SmppListener(observer=...)`` and :attr:`Monitor.observer`
(a :class:`gateway.events.GatewayObserver`) to the SMS pipeline, the outbox and the call log.
Behind each sit the metrics and the logs, so that counting and logging happen at the same
single place per adapter.

:class:`StatusSource` is what the web pages and the scrape-time collector read from the
running gateway (:class:`gateway.service.Gateway` provides it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from twisted.internet.defer import Deferred

from gateway.components import Store
from gateway.config import Settings
from gateway.events import Observers
from gateway.live import LiveStats
from gateway.logs import LOG_LEVEL, EventLog, Masking, SmppLog
from gateway.metrics import EventMetrics, LiveStatus, Metrics, SmppMetrics, StatusCollector
from ivr.client import AmiClientFactory
from smpp.events import Event
from smpp.interfaces import Observer
from smpp.protocol import SmppListener
from smpp.session import Session

T = TypeVar("T")


class Workers(Protocol):
    """Runs blocking work off the reactor (the gateway's worker pool)."""

    def run(self, function: Callable[..., T], *args: Any) -> Deferred[T]: ...


class StatusSource(Protocol):
    """What the web and the collector read from the running gateway."""

    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> Store: ...

    @property
    def workers(self) -> Workers: ...

    @property
    def monitor(self) -> Monitor: ...

    @property
    def sms(self) -> SmsChannelLike | None:
        """The SMS channel when ``[smpp] enabled``, else None."""

    @property
    def ivr(self) -> AmiClientFactory | None:
        """The AMI client factory when ``[ivr] enabled``, else None."""


class SmsChannelLike(Protocol):
    """The part of the gateway's SMS channel the pages read: its listener."""

    @property
    def listener(self) -> SmppListener: ...


def smpp_listener(source: StatusSource) -> SmppListener | None:
    return None if source.sms is None else source.sms.listener


SmppHandler = Callable[[Session, Any], None]


class SmppObservers:
    """Fans the SMPP listener's events out to several observers (metrics, logs).

    Six events a message pass through here, and the logs want none of the per-PDU ones: an
    observer with a ``handlers`` table (event type -> handler, as :class:`SmppMetrics` and
    :class:`SmppLog` have) is called straight at the handler for the event's type, and not
    at all for a type it has no handler for; any other observer gets every event.
    """

    def __init__(self, *observers: Observer) -> None:
        self._observers = list(observers)
        self._by_type: dict[type, tuple[SmppHandler, ...]] = {}

    def add(self, observer: Observer) -> None:
        self._observers.append(observer)
        self._by_type.clear()

    def observe(self, session: Session, event: Event) -> None:
        handlers = self._by_type.get(type(event))
        if handlers is None:
            handlers = self._by_type[type(event)] = self._handlers(type(event))
        for handler in handlers:
            handler(session, event)

    def _handlers(self, kind: type) -> tuple[SmppHandler, ...]:
        found: list[SmppHandler] = []
        for observer in self._observers:
            table: dict[type, SmppHandler] | None = getattr(observer, "handlers", None)
            if table is None:
                found.append(observer.observe)
            elif kind in table:
                found.append(table[kind])
        return tuple(found)


class Monitor:
    """Metrics, the dashboard's recent history and the log observers of one gateway."""

    def __init__(self, settings: Settings, *, process_metrics: bool = True) -> None:
        self.settings = settings
        self.metrics = Metrics((p.name for p in settings.smpp.peers), process=process_metrics)
        self.live = LiveStats(self.metrics)
        masking = Masking(settings.logging.unmask)
        self.smpp_observer = SmppObservers(SmppMetrics(self.metrics), SmppLog(level=LOG_LEVEL))
        self.observer = Observers(EventMetrics(self.metrics), EventLog(masking, level=LOG_LEVEL))
        self.database_ok: bool | None = None
        """The last periodic database check (None before the first)."""

    @property
    def started_at(self) -> float:
        return self.metrics.started_at

    def database_checked(self, ok: bool) -> None:
        self.database_ok = ok
        self.metrics.database_up.set(1 if ok else 0)

    def watch(self, source: StatusSource) -> None:
        """Read the pool, the AMI link and calls in progress from ``source`` at each scrape."""
        self.metrics.registry.register(StatusCollector(lambda: live_status(source)))


def live_status(source: StatusSource) -> LiveStatus:
    """Plain attribute reads only: this runs on the scraping thread."""
    pool = source.store.engine.pool
    checked_out = getattr(pool, "checkedout", None)  # QueuePool has it; other pools do not
    ami = source.ivr
    listener = smpp_listener(source)
    return LiveStatus(
        pool_in_use=int(checked_out()) if callable(checked_out) else None,
        pool_size=source.settings.database.pool_size,
        ami_up=None if ami is None else ami.connected is not None,
        calls_active=None if ami is None else len(ami.running),
        ami_reconnects=None if ami is None else ami.reconnects,
        connections_refused=None if listener is None else dict(listener.refusals),
    )


def select_one(engine: Engine) -> None:
    """The database check: a round trip on a pooled connection (run on a worker thread)."""
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))
