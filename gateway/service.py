"""The running gateway as a Twisted service tree.

:func:`make_service` builds a :class:`Gateway` (a ``MultiService``) from the settings: the
worker thread pool that runs database and Argon2 work off the reactor, then, as configured,
the SMS channel (SMPP listener, inbound store, message processor, outbox dispatcher), the AMI
client for the hotline, and the operators' HTTP listener. Children start in that order and
stop in reverse, one at a time, each awaited before the next (not all at once, as Twisted's
``MultiService`` would): the SMS channel unbinds its peers and writes the results that come in
meanwhile while the worker pool still runs, and the pool and the database go last.

Start-up fails fast with one clear line when a dependency is not usable (schema not
migrated, database unreachable, prompts missing, a port taken), never limping on:
:meth:`Gateway.when_started` fires once every listener listens, or fails with the reason.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.internet.endpoints import clientFromString
from twisted.internet.interfaces import IListeningPort, IReactorFromThreads, IReactorTime
from twisted.logger import Logger

from commands.clock import SystemClock
from commands.reset import ResetRequest, ResetResult
from gateway.calls import DatabaseCallLog
from gateway.components import Store, open_store
from gateway.config import Settings
from gateway.events import Observers
from gateway.http import HttpServices, http_service
from gateway.logs import one_line, url_secrets
from gateway.monitor import Monitor
from gateway.outbox import OutboxDispatcher
from gateway.retention import retention_service
from gateway.sms import InboundStore, MessageProcessor
from gateway.workers import WorkerPool
from ivr.client import AmiClientFactory
from ivr.dialog import handle_call
from ivr.prompts import PromptError, require_prompts
from smpp.protocol import SmppListener
from store.migrate import current_revision, head_revision

log = Logger()


class StartupError(Exception):
    """The service cannot start; the message says why in one line."""


class SmsChannel(Service):
    """The SMPP listener with the stages behind it: store, handle, deliver."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        settings = gateway.settings.smpp
        engine = gateway.store.engine
        self.dispatcher: OutboxDispatcher
        self.inbound = InboundStore(
            engine,
            gateway.workers,
            settings,
            gateway.clock,
            gateway.reactor,
            gateway.observers,
            on_stored=self._stored,
        )
        self.processor = MessageProcessor(
            engine,
            gateway.workers,
            gateway.store.reset_service,
            settings,
            gateway.clock,
            gateway.reactor,
            gateway.observers,
            self.inbound,
            on_replies=self._replies_queued,
        )
        self.listener = SmppListener(
            settings, self.inbound, gateway.reactor, observer=gateway.smpp_observer
        )
        self.dispatcher = OutboxDispatcher(
            self.listener,
            engine,
            gateway.workers,
            settings,
            instance_name(gateway.settings),
            gateway.clock,
            gateway.reactor,
            gateway.observers,
        )
        self.listener.watch(self.dispatcher)
        self.port: IListeningPort | None = None
        self.started: Deferred[None] = Deferred()

    def _stored(self) -> None:
        self.processor.wake()

    def _replies_queued(self) -> None:
        self.dispatcher.wake()

    def startService(self) -> None:  # noqa: N802 - Twisted's name
        super().startService()
        Deferred.fromCoroutine(self._start()).chainDeferred(self.started)

    async def _start(self) -> None:
        await self.inbound.load_backlog()
        await self.dispatcher.start()
        self.processor.wake()  # what was stored but not handled before a restart
        try:
            self.port = await self.listener.listen(self.gateway.reactor)
        except Exception as error:
            raise StartupError(
                f"SMPP listener {self.gateway.settings.smpp.listen}: {error}"
            ) from None
        log.info("SMPP listening on {address}", address=self.port.getHost())

    def stopService(self) -> Deferred[None]:  # noqa: N802 - Twisted's name
        super().stopService()
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        self.dispatcher.stop()
        handling = self.processor.stop()
        await self.listener.unbind_all()
        if self.port is not None:
            stopped = self.port.stopListening()
            if stopped is not None:
                await stopped
        # Every send has ended with its bind: write the results (deliver_sm_resp that came
        # while unbinding) before the worker pool goes, or those replies would go out again.
        await self.dispatcher.settled()
        await handling


class Gateway(MultiService):
    """The whole service; keeps what the channels, the web and the CLI need."""

    def __init__(self, settings: Settings, store: Store, reactor: Any) -> None:
        super().__init__()
        self.settings = settings
        self.store = store
        self.reactor = reactor
        self.clock = SystemClock()
        self.monitor = Monitor(settings)
        self.observers = Observers(self.monitor.observer)
        self.smpp_observer = self.monitor.smpp_observer
        self.workers = WorkerPool(reactor, settings.database.pool_size)
        self.workers.setServiceParent(self)
        self.sms: SmsChannel | None = None
        self.ivr: AmiClientFactory | None = None
        self.http: HttpServices | None = None
        self._started: list[Deferred[None]] = []

    def add_sms(self) -> SmsChannel:
        self.sms = SmsChannel(self)
        self.sms.setServiceParent(self)
        self._started.append(self.sms.started)
        return self.sms

    def add_ivr(self) -> AmiClientFactory:
        settings = self.settings.ivr
        call_log = DatabaseCallLog(
            self.store.engine, self.workers, self.observers, clock=self.reactor
        )
        reset: Callable[[ResetRequest], Awaitable[ResetResult]] = self.reset

        def on_call(call: Any) -> Awaitable[object]:
            return handle_call(call, reset, settings, call_log)

        self.ivr = AmiClientFactory(settings, on_call, self.reactor)
        try:
            endpoint = clientFromString(self.reactor, settings.ami)
        except Exception as error:  # ValueError, TypeError, or a TLS file that cannot be read
            raise StartupError(
                f"[ivr] ami: not a usable Twisted client endpoint string ({error})"
            ) from None
        ClientService(endpoint, self.ivr, retryPolicy=backoffPolicy()).setServiceParent(self)
        return self.ivr

    def add_service(self, service: Service, started: Deferred[None] | None = None) -> None:
        service.setServiceParent(self)
        if started is not None:
            self._started.append(started)

    def when_started(self) -> Deferred[None]:
        """Fires when every listener listens; fails with the first :class:`StartupError`."""
        if not self._started:
            return succeed(None)
        waiting = DeferredList(list(self._started), fireOnOneErrback=True, consumeErrors=True)

        def unwrap(failure: Any) -> Any:
            return failure.value.subFailure if hasattr(failure.value, "subFailure") else failure

        return waiting.addCallbacks(lambda _: None, unwrap)

    @property
    def ivr_connected(self) -> bool | None:
        """None when the IVR is disabled, else whether the AMI link is logged in."""
        return None if self.ivr is None else self.ivr.connected is not None

    def reset(self, request: ResetRequest) -> Deferred[ResetResult]:
        """Run the shared reset rules on a worker thread."""
        return self.workers.run(self.store.reset_service.reset, request)

    def stopService(self) -> Deferred[None]:  # noqa: N802 - Twisted's name
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        # Not MultiService.stopService, which stops every child at once: the worker pool (the
        # first child) would join its threads while the SMS channel still unbinds, and the
        # work the channel hands it from then on would never run.
        Service.stopService(self)
        if self.ivr is not None:
            # First, while the workers and the AMI link still run: calls in progress are
            # handed back to the dialplan and their records written (bounded; never fails).
            await self.ivr.shutdown()
        for child in reversed(list(self)):
            try:
                await maybeDeferred(child.stopService)
            except Exception:
                log.failure("stopping {service} failed", service=type(child).__name__)
        self.store.close()


def instance_name(settings: Settings) -> str:
    """The configured instance name, else one that is stable across restarts on this host."""
    if settings.smpp.instance:
        return settings.smpp.instance
    return f"{socket.gethostname()}/{settings.smpp.listen}"[:64]


def check_schema(store: Store, hide: Iterable[str] = ()) -> None:
    try:
        current = current_revision(store.engine)
    except Exception as error:  # any driver error means the same to the operator
        reason = one_line(f"{type(error).__name__}: {error}", hide)
        raise StartupError(f"database unreachable: {reason}") from None
    head = head_revision(store.engine)
    if current != head:
        raise StartupError(
            f"database schema is at {current or 'nothing'}, expected {head}: "
            "run 'vssid-gateway db upgrade'"
        )


def make_service(settings: Settings, reactor: IReactorTime | IReactorFromThreads) -> Gateway:
    """The configured gateway, not yet started; raises :class:`StartupError`."""
    cores = os.cpu_count() or 1
    hide = url_secrets(settings.database.url.reveal())
    try:
        store = open_store(settings, hash_threads=cores)
    except (SQLAlchemyError, OSError) as error:  # e.g. a SQLite folder that cannot be made
        reason = one_line(f"{type(error).__name__}: {error}", hide)
        raise StartupError(f"database: {reason}") from None
    check_schema(store, hide)
    if settings.ivr.enabled:
        try:
            require_prompts(settings.ivr)
        except PromptError as error:
            raise StartupError(f"IVR: {error}") from None
    service = Gateway(settings, store, reactor)
    if settings.smpp.enabled:
        service.add_sms()
    if settings.ivr.enabled:
        service.add_ivr()
    if settings.http.enabled:
        service.http = http_service(service, reactor)
        service.add_service(service.http, service.http.started)
    service.add_service(retention_service(service, reactor))
    return service
