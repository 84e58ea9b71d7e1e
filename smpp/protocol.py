"""The Twisted side of the SMPP listener: sockets, one timer per connection, Deferreds.

:class:`SmppProtocol` feeds received bytes through the framer, the codec and the
:class:`~smpp.session.Session`, and performs the effects that come back; it decides nothing.
:class:`SmppListener` (the factory) owns what the connections share: the settings, the pure
:class:`~smpp.registry.Registry`, the application's :class:`~smpp.interfaces.InboundHandler`,
the clock (any ``IReactorTime``, so tests pass a ``Clock``) and the one
:class:`~smpp.interfaces.Observer`. It is also the outbound side: :meth:`SmppListener.send`
puts a deliver_sm on a live receiver bind of a peer and returns a Deferred of its response.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from typing import Final

from twisted.internet.defer import Deferred, DeferredList, fail, maybeDeferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import (
    IDelayedCall,
    IListeningPort,
    IPushProducer,
    IReactorTime,
    ITCPTransport,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from smpp.codec import DecodeError, Pdu, Status, decode, encode
from smpp.events import (
    Bound,
    CloseConnection,
    ConnectionClosed,
    ConnectionOpened,
    Effect,
    Event,
    MessageReceived,
    PduReceived,
    RequestFailed,
    ResponseReceived,
    SendPdu,
    Unbound,
)
from smpp.framing import Framer, FramingError
from smpp.interfaces import (
    Acknowledgement,
    BindWatcher,
    DeliveryFailed,
    DeliveryResult,
    InboundHandler,
    NullObserver,
    Observer,
)
from smpp.outbound import Outgoing
from smpp.registry import Registry
from smpp.session import Session, State, SubmitError
from smpp.settings import SmppSettings

_log = Logger()

ABORT_AFTER_SECONDS: Final = 5.0
"""How long a closed connection may spend flushing what we wrote before it is aborted: a peer
that stops reading must not hold its connection, or our shutdown, open."""
REFUSAL_LOG_SECONDS: Final = 60.0
"""A refused address is logged at most once in this many seconds."""
_REFUSALS_REMEMBERED: Final = 4096  # addresses whose refusal was logged; past it, no logging
_REFUSAL_TEXT: Final = {
    "allowlist": "in no peer's allowlist",
    "max_connections": "[smpp] max_connections reached",
    "max_connections_per_address": "[smpp] max_connections_per_address reached",
}
REFUSAL_REASONS: Final = tuple(_REFUSAL_TEXT)
"""Why a connection can be refused at connect: the label values of the refusals metric."""


@implementer(IPushProducer)
class SmppProtocol(Protocol):
    """One connection: bytes in, effects out, one timer at the session's next deadline.

    It is also the producer of its own writes: when the peer stops reading and the transport's
    write buffer fills, the transport pauses it and it stops reading the peer's requests, so
    the responses to them cannot pile up without bound. The session's inactivity timeout then
    closes the connection, and :data:`ABORT_AFTER_SECONDS` later it is aborted if the buffer
    still has not drained.
    """

    def __init__(self, listener: SmppListener, address: str) -> None:
        self._listener = listener
        self._clock = listener.clock
        self.session = Session(listener.registry, listener.registry.new_connection_id(),
                               address, self._clock.seconds())  # fmt: skip
        self._framer = Framer(listener.settings.max_pdu_length)
        self._timer: IDelayedCall | None = None
        self._abort: IDelayedCall | None = None
        self._waiting: dict[Hashable, Deferred[DeliveryResult]] = {}
        self.closed: Deferred[None] = Deferred()

    def connectionMade(self) -> None:  # noqa: N802 - Twisted's name
        transport = self.transport
        if ITCPTransport.providedBy(transport):
            transport.setTcpNoDelay(True)
        transport.registerProducer(self, True)  # type: ignore[union-attr]
        self._listener.connection_opened(self)
        self._observe(ConnectionOpened(self.session.address))
        self._rearm()

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted's name
        now = self._clock.seconds()
        try:
            frames = self._framer.feed(data)
        except FramingError as error:
            self._receive(error.frames, now)
            self._apply(self.session.framing_failed(error, now), rearm=False)
        else:
            self._receive(frames, now)
        self._rearm()  # once for everything one read brought (often dozens of PDUs)

    def _receive(self, frames: list[bytes], now: float) -> None:
        for frame in frames:
            if self.session.state is State.CLOSED:
                break
            item: Pdu | DecodeError
            try:
                item = decode(frame)
            except DecodeError as error:
                item = error
            self._observe(PduReceived(item))
            self._apply(self.session.receive(item, now), rearm=False)

    def connectionLost(self, reason: Failure = connectionDone) -> None:  # noqa: N802 - Twisted's name
        for timer in (self._timer, self._abort):
            if timer is not None and timer.active():
                timer.cancel()
        self._apply(self.session.connection_lost(self._clock.seconds()))
        self._listener.connection_closed(self)
        self._observe(ConnectionClosed(reason.getErrorMessage()))
        self.closed.callback(None)

    def send(self, outgoing: Outgoing) -> Deferred[DeliveryResult]:
        """Send one deliver_sm on this bind; fails with :class:`DeliveryFailed`."""
        try:
            effects = self.session.submit(outgoing, self._clock.seconds())
        except SubmitError as error:
            return fail(DeliveryFailed(error.reason))
        waiting: Deferred[DeliveryResult] = Deferred(
            lambda _: self._waiting.pop(outgoing.id, None)  # type: ignore[arg-type]
        )
        self._waiting[outgoing.id] = waiting
        self._apply(effects)
        return waiting

    def unbind(self) -> Deferred[None]:
        """Unbind (or close, if not bound) and fire once the connection is gone."""
        self._apply(self.session.unbind(self._clock.seconds()))
        return self.closed

    def _apply(self, effects: list[Effect], rearm: bool = True) -> None:
        transport = self.transport
        assert transport is not None
        for effect in effects:
            self._observe(effect)
            if isinstance(effect, SendPdu):
                transport.write(encode(effect.pdu))
            elif isinstance(effect, CloseConnection):
                self._close()
            elif isinstance(effect, MessageReceived):
                self._handle(effect)
            elif isinstance(effect, ResponseReceived | RequestFailed):
                self._resolve(effect)
            elif isinstance(effect, Bound | Unbound):
                self._listener.bind_changed(effect)
        if rearm:
            self._rearm()

    def _handle(self, effect: MessageReceived) -> None:
        assert self.session.bind is not None
        handler = self._listener.handler
        stored = maybeDeferred(handler.message_received, self.session.bind, effect.message)
        stored.addErrback(self._store_failed)
        stored.addCallback(self._acknowledge, effect.token)

    def _store_failed(self, failure: Failure) -> Acknowledgement:
        _log.failure("message not stored; answered ESME_RTHROTTLED", failure)
        return Acknowledgement(Status.ESME_RTHROTTLED, "")

    def _acknowledge(self, ack: Acknowledgement, token: int) -> None:
        now = self._clock.seconds()
        self._apply(self.session.acknowledge(token, ack.status, ack.message_id, now))

    def _resolve(self, effect: ResponseReceived | RequestFailed) -> None:
        waiting = self._waiting.pop(effect.outgoing_id, None)
        if waiting is None:
            return  # the caller cancelled
        if isinstance(effect, ResponseReceived):
            waiting.callback(DeliveryResult(effect.status, effect.message_id))
        else:
            waiting.errback(DeliveryFailed(effect.reason))

    def _rearm(self) -> None:
        deadline = self.session.next_deadline()
        if deadline is None:
            if self._timer is not None and self._timer.active():
                self._timer.cancel()
            return
        if self._timer is not None and self._timer.active():
            # Traffic keeps pushing the deadlines later; a timer that fires early finds nothing
            # due and is armed again then. Only an earlier deadline has to move it now.
            if deadline < self._timer.getTime():
                self._timer.reset(max(0.0, deadline - self._clock.seconds()))
        else:
            delay = max(0.0, deadline - self._clock.seconds())
            self._timer = self._clock.callLater(delay, self._fire)

    def _fire(self) -> None:
        self._apply(self.session.tick(self._clock.seconds()))

    def _close(self) -> None:
        transport = self.transport
        assert transport is not None
        if self._abort is not None:
            return
        # Unregistered first: a transport does not close while a paused producer is registered.
        transport.unregisterProducer()  # type: ignore[attr-defined]
        transport.loseConnection()
        self._abort = self._clock.callLater(ABORT_AFTER_SECONDS, self._abort_now)

    def _abort_now(self) -> None:
        # loseConnection waits for the write buffer to drain, which a peer that does not read
        # never lets happen.
        self.transport.abortConnection()  # type: ignore[union-attr]

    # IPushProducer: the transport calls these as its write buffer fills and drains.

    def pauseProducing(self) -> None:  # noqa: N802 - Twisted's name
        self.transport.pauseProducing()  # type: ignore[union-attr]

    def resumeProducing(self) -> None:  # noqa: N802 - Twisted's name
        self.transport.resumeProducing()  # type: ignore[union-attr]

    def stopProducing(self) -> None:  # noqa: N802 - Twisted's name
        pass  # the connection is going; connectionLost does the rest

    def _observe(self, event: Event) -> None:
        self._listener.observer.observe(self.session, event)


class _Refused(Protocol):
    """A connection we refuse: aborted as soon as it is made. (``buildProtocol`` returning
    ``None`` closes a plain TCP connection, but under TLS the wrapper then calls a protocol
    that is not there.)"""

    def connectionMade(self) -> None:  # noqa: N802 - Twisted's name
        self.transport.abortConnection()  # type: ignore[union-attr]


class SmppListener(Factory):
    """The listener: shared state of its connections, and the way to send replies."""

    noisy = False  # the gateway logs "SMPP listening on ..." itself

    def __init__(
        self,
        settings: SmppSettings,
        handler: InboundHandler,
        clock: IReactorTime,
        observer: Observer | None = None,
    ) -> None:
        self.settings = settings
        self.handler = handler
        self.clock = clock
        self.observer: Observer = observer or NullObserver()
        self.registry = Registry(settings, clock.seconds())
        self.connections: dict[int, SmppProtocol] = {}
        self.refusals: dict[str, int] = dict.fromkeys(REFUSAL_REASONS, 0)
        """Connections refused at connect, by reason (the keys never change: safe to copy
        from another thread)."""
        self._per_address: Counter[str] = Counter()
        self._watchers: list[BindWatcher] = []
        self._refused: dict[str, float] = {}  # address -> when its refusal was last logged
        self._refusals_swept_at = float("-inf")

    def listen(self, reactor: object) -> Deferred[IListeningPort]:
        """Listen on ``settings.listen`` (a Twisted endpoint string: tcp:, ssl:, unix:)."""
        endpoint = serverFromString(reactor, self.settings.listen)
        listening: Deferred[IListeningPort] = endpoint.listen(self)
        return listening

    def buildProtocol(self, addr: object) -> Protocol:  # noqa: N802 - Twisted's name
        """A protocol for a connection from ``addr``; for an address in no peer's allowlist,
        one that closes it at once: a stranger gets no session, no timer and no place in the
        failed-bind table."""
        address = str(getattr(addr, "host", ""))
        reason = self._refusal(address)
        if reason is not None:
            self.refusals[reason] += 1
            self._log_refusal(address, reason)
            return _Refused()
        return SmppProtocol(self, address)

    def _refusal(self, address: str) -> str | None:
        if not self.registry.may_connect(address):
            return "allowlist"
        if len(self.connections) >= self.settings.max_connections:
            return "max_connections"
        if self._per_address[address] >= self.settings.max_connections_per_address:
            return "max_connections_per_address"
        return None

    def connection_opened(self, protocol: SmppProtocol) -> None:
        self.connections[protocol.session.connection] = protocol
        self._per_address[protocol.session.address] += 1

    def connection_closed(self, protocol: SmppProtocol) -> None:
        if self.connections.pop(protocol.session.connection, None) is None:
            return
        address = protocol.session.address
        self._per_address[address] -= 1
        if self._per_address[address] <= 0:
            del self._per_address[address]

    def _log_refusal(self, address: str, reason: str) -> None:
        now = self.clock.seconds()
        if now >= self._refusals_swept_at + REFUSAL_LOG_SECONDS:
            self._refusals_swept_at = now
            cutoff = now - REFUSAL_LOG_SECONDS
            self._refused = {a: at for a, at in self._refused.items() if at > cutoff}
        last = self._refused.get(address)
        if last is not None and now < last + REFUSAL_LOG_SECONDS:
            return
        if last is None and len(self._refused) >= _REFUSALS_REMEMBERED:
            return  # a flood from many addresses: what was logged already says enough
        self._refused[address] = now
        _log.warn(
            "SMPP connection from {address} refused: {why}",
            event="smpp_connection_refused",
            address=address,
            reason=reason,
            why=_REFUSAL_TEXT[reason],
        )

    def watch(self, watcher: BindWatcher) -> None:
        """Tell ``watcher`` about every bind that comes up or goes down from now on."""
        self._watchers.append(watcher)

    def bind_changed(self, effect: Bound | Unbound) -> None:
        for watcher in list(self._watchers):
            if isinstance(effect, Bound):
                watcher.bind_up(effect.bind)
            else:
                watcher.bind_down(effect.bind)

    def receivers(self, peer: str) -> list[SmppProtocol]:
        """The peer's live binds that can take a deliver_sm, most free window first."""
        binds = [b for b in self.registry.binds(peer) if b.kind.can_receive]
        found = [self.connections[b.connection] for b in binds if b.connection in self.connections]
        return sorted(found, key=lambda p: p.session.free_window, reverse=True)

    def capacity(self, peer: str) -> int:
        """How many deliver_sm the peer can take right now (windows and ``max_tps_out``)."""
        window = sum(p.session.free_window for p in self.receivers(peer))
        return min(window, self.registry.outbound_allowance(peer, self.clock.seconds()))

    def send(self, peer: str, outgoing: Outgoing) -> Deferred[DeliveryResult]:
        """Send one deliver_sm on the peer's least busy receiver bind."""
        receivers = self.receivers(peer)
        if not receivers:
            return fail(DeliveryFailed("no bind"))
        return receivers[0].send(outgoing)

    def unbind_all(self) -> Deferred[None]:
        """Unbind every connection (shutdown); fires when all are closed."""
        closing = [protocol.unbind() for protocol in list(self.connections.values())]
        done: Deferred[None] = DeferredList(closing, consumeErrors=True).addCallback(lambda _: None)
        return done
