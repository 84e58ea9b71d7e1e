"""The operators' HTTP listener as a service: the pages of :mod:`gateway.web` on ``[http] listen``.

:func:`http_service` is what the gateway mounts. Besides the listener it runs two timers the
pages rely on: a sample of the counters every ten seconds for the dashboard's charts, and a
``SELECT 1`` on a worker thread at the same pace for the database status (``vssid_database_up``).

The site writes no access log of its own: Twisted's default would put ``?token=...`` into the
logs. Requests are logged at debug level, path only.
"""

from __future__ import annotations

from typing import Any, Final, cast

from twisted.application.internet import TimerService
from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IReactorTime
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http as twisted_http
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site

from gateway.live import BUCKET_SECONDS
from gateway.logs import one_line, url_secrets
from gateway.monitor import StatusSource, select_one
from gateway.web import build_root

DATABASE_CHECK_TIMEOUT: Final = 5.0

_log = Logger(namespace="vssid.web")


class HttpListenError(Exception):
    """The HTTP listener could not start (address in use, bad endpoint string)."""


MAX_CONNECTIONS: Final = 64
"""Open connections to the HTTP listener at most: more are closed at once, so that clients
holding connections open cannot take the descriptors the SMPP listener and the database need."""
IDLE_TIMEOUT_SECONDS: Final = 60.0
"""A connection that sends nothing for this long is closed (Twisted's default is 12 hours)."""


class ReadOnlyRequest(Request):
    """No page takes a request body: a request that announces one (a Content-Length, chunks)
    is answered 413 and its connection closed before any of the body is read. (Twisted would
    otherwise buffer the whole body, to disk if large, before any access check.) Methods other
    than GET and HEAD get 405 from the resources."""

    _refused = False

    def gotLength(self, length: int | None) -> None:  # noqa: N802 - Twisted's name
        super().gotLength(0)  # an empty in-memory buffer; a refused body never reaches it
        if length == 0:
            return
        self._refused = True
        self.requestHeaders.removeHeader(b"expect")  # or Twisted sends "100 Continue" after it
        transport: Any = self.channel.transport
        transport.write(
            b"HTTP/1.1 413 Content Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        )
        transport.loseConnection()  # flushes the 413; reads nothing more

    def handleContentChunk(self, data: bytes) -> None:  # noqa: N802 - Twisted's name
        if not self._refused:
            super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:  # noqa: N802
        if not self._refused:
            super().requestReceived(command, path, version)


class _Closed(Protocol):
    """A connection over the cap: closed as soon as it is made."""

    def connectionMade(self) -> None:  # noqa: N802 - Twisted's name
        self.transport.abortConnection()  # type: ignore[union-attr]


class _CountedChannel(twisted_http.HTTPChannel):
    """HTTP/1.1 only (the pages need nothing more), counted by its :class:`QuietSite`."""

    site: QuietSite  # set by Site.buildProtocol

    def connectionMade(self) -> None:  # noqa: N802 - Twisted's name
        super().connectionMade()
        self.site.open_connections += 1

    def connectionLost(self, reason: Failure = connectionDone) -> None:  # noqa: N802
        self.site.open_connections -= 1
        super().connectionLost(reason)


class QuietSite(Site):
    """A ``Site`` that never logs query strings (tokens); requests go to debug, path only.
    It takes no request bodies (:class:`ReadOnlyRequest`) and at most
    :data:`MAX_CONNECTIONS` connections, each closed after :data:`IDLE_TIMEOUT_SECONDS`."""

    protocol = _CountedChannel  # type: ignore[assignment]
    requestFactory = ReadOnlyRequest  # noqa: N815 - Twisted's name

    def __init__(self, resource: IResource, reactor: Any = None) -> None:
        super().__init__(resource, timeout=IDLE_TIMEOUT_SECONDS, reactor=reactor)
        self.open_connections = 0

    def buildProtocol(self, addr: Any) -> Any:  # noqa: N802 - Twisted's name
        if self.open_connections >= MAX_CONNECTIONS:
            # Not None: under TLS the wrapping factory would wrap None and keep the connection.
            return _Closed()
        return super().buildProtocol(addr)

    def log(self, request: twisted_http.Request) -> None:
        _log.debug(
            "{method} {path} {code}",
            event="http_request",
            method=request.method.decode("ascii", "replace"),
            path=request.path.decode("utf-8", "replace"),
            code=request.code,
        )


class HttpService(Service):
    """Listens on an endpoint string while running. :attr:`started` fires once it listens, or
    fails with :class:`HttpListenError` (the gateway's start-up waits on it)."""

    def __init__(self, reactor: Any, description: str, site: Site) -> None:
        self._reactor = reactor
        self.description = description
        self.site = site
        self.port: IListeningPort | None = None
        self.started: Deferred[None] = Deferred()

    def startService(self) -> None:  # noqa: N802 - Twisted's name
        super().startService()
        try:
            endpoint = serverFromString(self._reactor, self.description)
        except ValueError as error:
            self.started.errback(HttpListenError(f"[http] listen {self.description!r}: {error}"))
            return
        listening: Deferred[IListeningPort] = endpoint.listen(self.site)
        listening.addCallbacks(self._listening, self._failed)

    def _listening(self, port: IListeningPort) -> None:
        self.port = port
        _log.info(
            "HTTP listening on {address}", event="http_listening", address=str(port.getHost())
        )
        self.started.callback(None)

    def _failed(self, failure: Failure) -> None:
        message = f"[http] listen {self.description!r}: {failure.getErrorMessage()}"
        self.started.errback(HttpListenError(message))

    def stopService(self) -> Deferred[None] | None:  # noqa: N802 - Twisted's name
        super().stopService()
        port, self.port = self.port, None
        if port is None:
            return None
        stopping = port.stopListening()
        return stopping if isinstance(stopping, Deferred) else None


class HttpServices(MultiService):
    """The listener and its timers; :attr:`started` is the listener's."""

    def __init__(self, listener: HttpService) -> None:
        super().__init__()
        self.listener = listener
        listener.setServiceParent(self)

    @property
    def started(self) -> Deferred[None]:
        return self.listener.started

    @property
    def port(self) -> IListeningPort | None:
        return self.listener.port


class DatabaseCheck:
    """The periodic ``SELECT 1``; reports to the monitor, never raises into the timer.

    ``/readyz`` shows only the error's type (anyone may read it); this check logs the driver's
    message once when the database goes down (``event: database_down``), on one line and with
    the database URL and its password masked should the driver quote them.
    """

    def __init__(self, source: StatusSource, clock: IReactorTime) -> None:
        self._source = source
        self._clock = clock
        self._hide = url_secrets(source.settings.database.url.reveal())

    def __call__(self) -> Deferred[None]:
        checking = self._source.workers.run(select_one, self._source.store.engine)
        checking.addTimeout(DATABASE_CHECK_TIMEOUT, self._clock)
        return checking.addCallbacks(self._ok, self._failed)

    def _ok(self, _: object) -> None:
        self._source.monitor.database_checked(True)

    def _failed(self, failure: Failure) -> None:
        if self._source.monitor.database_ok is not False:
            _log.warn(
                "database check failed: {error}",
                event="database_down",
                error=one_line(
                    f"{type(failure.value).__name__}: {failure.getErrorMessage()}", self._hide
                ),
            )
        self._source.monitor.database_checked(False)


def metrics_resource(source: StatusSource) -> IResource:
    """prometheus_client's Twisted resource over the gateway's own registry."""
    # Imported here: the module installs the global reactor when imported.
    from prometheus_client.twisted import MetricsResource  # noqa: PLC0415

    return cast(IResource, MetricsResource(registry=source.monitor.metrics.registry))


def make_site(source: StatusSource, clock: IReactorTime, metrics: IResource | None = None) -> Site:
    root: Resource = build_root(source, clock, metrics or metrics_resource(source))
    site = QuietSite(root, reactor=clock)
    site.noisy = False
    return site


def http_service(source: StatusSource, reactor: Any = None) -> HttpServices:
    """The listener and its timers, to mount under the gateway's service tree."""
    if reactor is None:
        from twisted.internet import reactor as global_reactor  # noqa: PLC0415

        reactor = global_reactor
    source.monitor.watch(source)
    site = make_site(source, reactor)
    service = HttpServices(HttpService(reactor, source.settings.http.listen, site))
    live = source.monitor.live
    sampler = TimerService(BUCKET_SECONDS, lambda: live.sample(reactor.seconds()))
    sampler.clock = reactor
    sampler.setServiceParent(service)
    database = TimerService(BUCKET_SECONDS, DatabaseCheck(source, reactor))
    database.clock = reactor
    database.setServiceParent(service)
    return service
