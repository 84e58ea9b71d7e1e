"""The AMI client on Twisted: feeds :class:`ivr.link.AmiLink`, carries out its effects.

It decides nothing: bytes go into the link, ``Send`` goes to the socket, command results
resolve the Deferreds of :class:`ivr.call.Call`, and a new call starts the dialog. Build it as

    endpoint = clientFromString(reactor, settings.ami)
    factory = AmiClientFactory(settings, on_call, reactor)
    ClientService(endpoint, factory, retryPolicy=backoffPolicy())

``ClientService`` reconnects when the TCP connection fails or drops. A *refused login* is
different: the TCP connection worked, so ClientService would reconnect at once, forever. The
factory therefore remembers consecutive login failures and refuses to build a protocol until
an exponential back-off has passed (each refusal is a failed attempt for ClientService, which
backs off too), and logs one clear error per failure.

Stopping: :meth:`AmiClientFactory.shutdown` hands every call back to the dialplan (which tells
the caller the service is unavailable) and logs off, so that no caller waits in silence on a
channel nobody drives; call it before stopping the ``ClientService``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from ivr import ami, link
from ivr.agi import AgiResult, hangup
from ivr.call import Call, CallHungUp, DelayedCall, ReactorClock
from ivr.settings import IvrSettings

CallHandler = Callable[[Call], Awaitable[object]]
MAX_LOGIN_BACKOFF = 300.0
LOGOFF_WAIT = 2.0
"""Seconds :meth:`AmiClientFactory.shutdown` waits for Asterisk to close after ``Logoff``."""


class AmiProtocol(Protocol):
    """One AMI connection; pending command Deferreds are keyed by (channel, CommandID)."""

    log = Logger()

    def __init__(self, factory: AmiClientFactory, session: link.AmiLink) -> None:
        self.factory = factory
        self.link = session
        self.calls: dict[str, Call] = {}
        self._clock = factory.clock
        self._pending: dict[link.CommandKey, Deferred[AgiResult]] = {}
        self._timer: DelayedCall | None = None
        self._timer_at: float | None = None
        self.closed: Deferred[None] = Deferred()
        """Fires when the connection is gone."""
        self._lost_calls: set[str] = set()

    def connectionMade(self) -> None:  # noqa: N802
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)  # each AGI command is one small write the caller is waiting on
        self._apply(self.link.connection_made(self._clock.seconds()))

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        self._apply(self.link.data_received(data, self._clock.seconds()))

    def connectionLost(self, reason: Failure | None = None) -> None:  # noqa: N802
        self._apply(self.link.connection_lost(self._clock.seconds()))
        in_progress, self._lost_calls = self._lost_calls, set()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self.factory.link_lost(self, in_progress)
        self.closed.callback(None)

    def run(self, channel: str, command: str, timeout: float) -> Deferred[AgiResult]:
        key, effects = self.link.send_command(channel, command, self._clock.seconds(), timeout)
        waiting: Deferred[AgiResult] = Deferred()
        self._pending[key] = waiting
        self._apply(effects)
        return waiting

    def send_raw(self, data: bytes) -> None:
        transport: Any = self.transport
        if transport is not None:
            transport.write(data)

    def logoff(self) -> None:
        """``Logoff``: Asterisk answers ``Goodbye`` and closes the connection."""
        self._apply(self.link.logoff())

    def close(self) -> None:
        transport: Any = self.transport
        if transport is not None:
            transport.loseConnection()

    def _apply(self, effects: list[link.Effect]) -> None:
        for effect in effects:
            if isinstance(effect, link.Send):
                self.send_raw(effect.data)
            elif isinstance(effect, link.CommandDone):
                waiting = self._pending.pop(effect.key, None)
                if waiting is not None:
                    waiting.callback(effect.result)
            elif isinstance(effect, link.CommandFailed):
                self._fail(effect)
            elif isinstance(effect, link.CallStarted):
                call = Call(
                    self, effect.channel, effect.unique_id, effect.env, self._clock,
                    self.factory.settings.command_timeout_seconds, answered=effect.answered,
                )
                self.calls[effect.channel] = call
                self.factory.call_started(call)
            elif isinstance(effect, link.CallEnded):
                self._call_ended(effect)
            elif isinstance(effect, link.LoggedIn):
                self.factory.logged_in(self)
            elif isinstance(effect, link.LoginFailed):
                self.factory.login_failed(effect.message)
            elif isinstance(effect, link.Close):
                self.log.warn("Closing the AMI link: {reason}", reason=effect.reason)
                transport: Any = self.transport
                if transport is not None:
                    transport.loseConnection()
        self._rearm()

    def _call_ended(self, effect: link.CallEnded) -> None:
        ended = self.calls.pop(effect.channel, None)
        if ended is not None:
            ended.ended(effect.reason)
        if effect.reason == link.LINK_LOST:
            # Ended here, but still in AsyncAGI at Asterisk: hung up after the reconnect. (A
            # link we close ourselves has ended its calls before connectionLost runs.)
            self._lost_calls.add(effect.channel)

    def _fail(self, effect: link.CommandFailed) -> None:
        waiting = self._pending.pop(effect.key, None)
        if waiting is None:
            return
        call = self.calls.get(effect.key[0])
        reason = effect.detail or effect.failure.value
        if effect.failure in _STILL_IN_ASYNC_AGI:
            # The channel is still Asterisk's and ours: nobody else will end it for the caller.
            if effect.failure is link.Failure.TIMEOUT:
                reason = "AGI command timed out"
            else:
                reason = f"unreadable AGI reply: {reason}"
            if call is not None:
                call.ended(reason)
                self.send_raw(self._orphan_hangup(effect.key[0]))
        waiting.errback(CallHungUp(reason))

    def _orphan_hangup(self, channel: str) -> bytes:
        self.factory.hangups += 1
        return ami.action(
            "AGI", f"vssid-hangup-{self.factory.hangups}", ("Channel", channel),
            ("Command", hangup()),
        )

    def _rearm(self) -> None:
        deadline = self.link.next_deadline()
        if deadline is None:
            return  # a timer already armed only causes a harmless early tick
        if self._timer is not None and self._timer.active():
            if self._timer_at is not None and self._timer_at <= deadline:
                return
            self._timer.cancel()
        self._timer_at = deadline
        delay = max(deadline - self._clock.seconds(), 0.0)
        self._timer = self._clock.callLater(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._timer_at = None
        self._apply(self.link.tick(self._clock.seconds()))


_STILL_IN_ASYNC_AGI: Final = frozenset({link.Failure.TIMEOUT, link.Failure.BAD_REPLY})
"""Command failures after which the call is still in AsyncAGI, waiting for our next command."""


class AmiClientFactory(Factory):
    """Builds AMI protocols, starts a dialog per call, and backs off after refused logins."""

    log = Logger()

    def __init__(
        self,
        settings: IvrSettings,
        on_call: CallHandler,
        clock: ReactorClock,
        *,
        login_backoff: float = 2.0,
    ) -> None:
        self.settings = settings
        self.login_backoff = login_backoff
        self.clock = clock
        self.on_call = on_call
        self.connected: AmiProtocol | None = None
        self.login_failures = 0
        self.reconnects = 0
        self.hangups = 0
        self.not_before = 0.0
        self.running: set[Deferred[object]] = set()
        self.stopping = False
        self._orphans: set[str] = set()

    def buildProtocol(self, addr: IAddress) -> AmiProtocol | None:  # type: ignore[override]  # noqa: N802
        if self.stopping:
            return None  # shut down: no reconnect before the ClientService itself stops
        if self.clock.seconds() < self.not_before:
            return None  # still backing off after a refused login: ClientService retries later
        session = link.AmiLink(
            self.settings.username,
            self.settings.secret,
            ping_interval=self.settings.ping_interval_seconds,
            ping_timeout=min(10.0, self.settings.ping_interval_seconds),
        )
        return AmiProtocol(self, session)

    def logged_in(self, protocol: AmiProtocol) -> None:
        if self.login_failures or self.reconnects:
            self.log.info(
                "AMI link to Asterisk is up again ({banner})", banner=protocol.link.banner
            )
        else:
            self.log.info("AMI link to Asterisk is up ({banner})", banner=protocol.link.banner)
        self.login_failures = 0
        self.connected = protocol
        for channel in sorted(self._orphans):
            protocol.send_raw(protocol._orphan_hangup(channel))
        self._orphans.clear()

    def login_failed(self, message: str) -> None:
        self.login_failures += 1
        delay = min(self.login_backoff * 2.0 ** (self.login_failures - 1), MAX_LOGIN_BACKOFF)
        self.not_before = self.clock.seconds() + delay
        self.log.error(
            "Asterisk refused the AMI login of user {username!r}: {message}. Check [ivr] "
            "username and secret against manager.conf; next attempt in {delay:.0f} s.",
            username=self.settings.username, message=message, delay=delay,
        )

    def link_lost(self, protocol: AmiProtocol, in_progress: set[str]) -> None:
        if self.connected is protocol:
            self.connected = None
            if self.stopping:
                self.log.info("AMI link to Asterisk closed (gateway stopping)")
                return
            self.reconnects += 1
            self.log.warn(
                "AMI link to Asterisk lost; {count} call(s) in progress were ended",
                count=len(in_progress),
            )
        self._orphans.update(in_progress)

    def shutdown(self, timeout: float | None = None) -> Deferred[None]:
        """Stop taking calls and let the calls in progress go, then log off. Never fails.

        Every call is handed back to the dialplan after its current command (``ASYNCAGI
        BREAK``: the shipped dialplan plays ``vssid/error`` and hangs up); a call whose caller
        is hearing a committed password (:meth:`Call.let_finish`) is let finish. New calls are
        handed back at once. When every dialog has ended and recorded its call, or after
        ``timeout`` seconds (default ``[ivr] stop_timeout_seconds``), the calls left are handed
        back too and the link logs off; the Deferred fires at most :data:`LOGOFF_WAIT` seconds
        later. Call it from the service's stop, before the ``ClientService`` and the worker
        pool stop (dialogs still write their records through the workers).
        """
        self.stopping = True
        limit = self.settings.stop_timeout_seconds if timeout is None else timeout
        protocol = self.connected
        if protocol is None:
            return succeed(None)
        calls = list(protocol.calls.values())
        for call in calls:
            if not call.finishing:
                call.leave(link.STOPPING)
        self.log.info(
            "Stopping the IVR: {left} call(s) handed back to the dialplan, {finishing} reading "
            "a new password let finish",
            left=sum(not call.finishing for call in calls),
            finishing=sum(call.finishing for call in calls),
        )
        return Deferred.fromCoroutine(self._shutdown(protocol, limit))

    async def _shutdown(self, protocol: AmiProtocol, limit: float) -> None:
        if self.running:
            dialogs = DeferredList(list(self.running), consumeErrors=True)
            await _within(dialogs, limit, self.clock)
        for call in list(protocol.calls.values()):
            call.leave(link.STOPPING)  # still running at the deadline: the dialplan takes them
        if self.connected is protocol:
            protocol.logoff()
            await _within(protocol.closed, LOGOFF_WAIT, self.clock)
            if not protocol.closed.called:
                protocol.close()

    def call_started(self, call: Call) -> None:
        if self.stopping:
            call.leave(link.STOPPING)  # its dialog records it; the dialplan tells the caller
        running = Deferred.fromCoroutine(self._guarded(call))
        self.running.add(running)
        running.addBoth(self._finished, running)

    async def _guarded(self, call: Call) -> object:
        try:
            return await self.on_call(call)
        except CallHungUp:
            return None

    def _finished(self, result: object, running: Deferred[object]) -> None:
        self.running.discard(running)
        if isinstance(result, Failure):
            self.log.failure("The call dialog failed", result)


def _within(waiting: Deferred[Any], seconds: float, clock: ReactorClock) -> Deferred[None]:
    """Fires when ``waiting`` does or after ``seconds``, whichever comes first (never fails;
    ``waiting`` keeps its own result for anyone else)."""
    done: Deferred[None] = Deferred()

    def fire(_: object = None) -> None:
        if not done.called:
            done.callback(None)

    timer = clock.callLater(max(seconds, 0.0), fire)

    def settled(result: object) -> object:
        if timer.active():
            timer.cancel()
        fire()
        return result

    waiting.addBoth(settled)
    return done
