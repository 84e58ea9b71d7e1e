"""The AMI session as a pure state machine: AMI messages in, calls and command results out.

Rules (each one is what a real Asterisk 22 does, see ``tests/fixtures/ami``):

1. The session opens with a banner line; only then do we send ``Login`` (with the event
   classes we want, ``agi,call``). ``Response: Error`` to Login (Asterisk waits ~1 s, then
   closes the socket) is :class:`LoginFailed`, never a retry from here: reconnecting and its
   back-off belong to the adapter.
2. Every action carries a fresh ``ActionID``; responses are matched on it. Events can arrive
   between an action and its response.
3. ``AsyncAGIStart`` (or ``Event: AsyncAGI`` + ``SubEvent: Start`` before Asterisk 12)
   starts a call: :class:`CallStarted` with the decoded AGI environment, and whether the
   channel is already up (``ChannelState: 6``: the dialplan answered it).
4. A command is ``Action: AGI`` with our ``CommandID``. ``Response: Success`` only means
   *queued*; the result is the ``AsyncAGIExec`` whose ``CommandId`` (Asterisk's spelling) is
   ours. ``AGIExecStart``/``AGIExecEnd`` carry an internal id and are ignored.
5. ``Response: Error`` to ``Action: AGI`` (``Channel … does not exist.``, ``Failed to add AGI
   command …``) fails the command and ends the call: the channel is gone or not ours.
6. ``AsyncAGIEnd`` or ``Hangup`` for the channel ends the call and fails every outstanding
   command: a command queued just before the end may be acknowledged and never run.
7. Every command has a deadline; a missed one fails the command (``timeout``).
8. ``Ping`` every ``ping_interval`` seconds; no answer within ``ping_timeout`` closes the link.
9. When the link is lost every call in progress ends (``link lost``).

Time is an argument (``now``, seconds); :meth:`AmiLink.next_deadline` says when to call
:meth:`AmiLink.tick` next. Nothing here performs I/O.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from commands.secret import Secret
from ivr import ami
from ivr.agi import AgiError, AgiResult, decode_result, parse_env

CommandKey = tuple[str, str]
"""(channel, CommandID): the identity of one AGI command."""

DEFAULT_EVENTS: Final = "agi,call"
LINK_LOST: Final = "AMI link lost"
STOPPING: Final = "gateway stopping"
"""Why calls end when the service stops and hands them back to the dialplan."""
CHANNEL_UP: Final = "6"


class CallHungUp(Exception):  # noqa: N818 - a fact, named as DESIGN.md names it
    """The call is over: the caller hung up, AsyncAGI ended, a command failed or timed out, or
    the AMI link was lost (``reason == LINK_LOST``). Raised into the dialog by every wait."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LinkState(enum.Enum):
    AWAIT_BANNER = "await_banner"
    LOGGING_IN = "logging_in"
    READY = "ready"
    CLOSED = "closed"


class Failure(enum.StrEnum):
    """Why a command did not produce a result (bounded: also a log and metrics field)."""

    REJECTED = "rejected"
    HANGUP = "hangup"
    TIMEOUT = "timeout"
    LINK = "link"
    BAD_REPLY = "bad_reply"


@dataclass(frozen=True, slots=True)
class Send:
    data: bytes


@dataclass(frozen=True, slots=True)
class Close:
    reason: str


@dataclass(frozen=True, slots=True)
class LoggedIn:
    banner: str


@dataclass(frozen=True, slots=True)
class LoginFailed:
    message: str


@dataclass(frozen=True, slots=True)
class CallStarted:
    channel: str
    unique_id: str
    env: Mapping[str, str]
    answered: bool = False
    """The channel was already up (``ChannelState: 6``): the dialplan answered before AGI()."""


@dataclass(frozen=True, slots=True)
class CommandDone:
    key: CommandKey
    result: AgiResult


@dataclass(frozen=True, slots=True)
class CommandFailed:
    key: CommandKey
    failure: Failure
    detail: str = ""


@dataclass(frozen=True, slots=True)
class CallEnded:
    channel: str
    reason: str


Effect = (
    Send | Close | LoggedIn | LoginFailed | CallStarted | CommandDone | CommandFailed | CallEnded
)


@dataclass(slots=True)
class _Call:
    commands: dict[str, float] = field(default_factory=dict)  # CommandID -> deadline


class AmiLink:
    """One AMI session; see the module docstring for the rules."""

    def __init__(
        self,
        username: str,
        secret: Secret,
        *,
        events: str = DEFAULT_EVENTS,
        ping_interval: float = 20.0,
        ping_timeout: float = 10.0,
        login_timeout: float = 10.0,
        id_prefix: str = "vssid",
    ) -> None:
        self.state = LinkState.AWAIT_BANNER
        self.banner = ""
        self._username = username
        self._secret = secret
        self._events = events
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._login_timeout = login_timeout
        self._prefix = id_prefix
        self._decoder = ami.Decoder()
        self._counter = 0
        self._actions: dict[str, CommandKey | str] = {}
        self._calls: dict[str, _Call] = {}
        self._deadlines: list[tuple[float, str, str]] = []  # (deadline, channel, CommandID)
        self._login_deadline: float | None = None
        self._next_ping: float | None = None
        self._ping_deadline: float | None = None

    # -- inputs -----------------------------------------------------------------------------

    def connection_made(self, now: float) -> list[Effect]:
        self._login_deadline = now + self._login_timeout
        return []

    def data_received(self, data: bytes, now: float) -> list[Effect]:
        if self.state is LinkState.CLOSED:
            return []
        try:
            items = self._decoder.feed(data)
        except ami.AmiDecodeError as error:
            return self._close(f"AMI framing error: {error}", now)
        effects: list[Effect] = []
        for item in items:
            if isinstance(item, ami.Banner):
                effects += self._banner(item, now)
            else:
                effects += self._message(item, now)
            if self._closed():
                break
        return effects

    def _closed(self) -> bool:
        return self.state is LinkState.CLOSED

    def send_command(
        self, channel: str, command: str, now: float, timeout: float
    ) -> tuple[CommandKey, list[Effect]]:
        """Queue an AGI command line for ``channel``; its result comes as an effect later."""
        self._counter += 1
        key = (channel, f"cmd-{self._counter}")
        if self.state is not LinkState.READY:
            return key, [CommandFailed(key, Failure.LINK, "AMI link is not ready")]
        call = self._calls.get(channel)
        if call is None:
            return key, [CommandFailed(key, Failure.HANGUP, "the call has ended")]
        action_id = self._action_id()
        self._actions[action_id] = key
        call.commands[key[1]] = now + timeout
        heapq.heappush(self._deadlines, (now + timeout, channel, key[1]))
        data = ami.action(
            "AGI", action_id, ("Channel", channel), ("Command", command), ("CommandID", key[1])
        )
        return key, [Send(data)]

    def logoff(self) -> list[Effect]:
        if self.state is not LinkState.READY:
            return []
        return [Send(ami.action("Logoff", self._action_id()))]

    def tick(self, now: float) -> list[Effect]:
        if self.state is LinkState.CLOSED:
            return []
        if self._login_deadline is not None and now >= self._login_deadline:
            return self._close("Asterisk did not complete the AMI login in time", now)
        if self._ping_deadline is not None and now >= self._ping_deadline:
            return self._close("Asterisk did not answer Ping", now)
        effects: list[Effect] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, channel, command_id = heapq.heappop(self._deadlines)
            call = self._calls.get(channel)
            if call is not None and call.commands.pop(command_id, None) is not None:
                effects.append(CommandFailed((channel, command_id), Failure.TIMEOUT))
        if self._next_ping is not None and now >= self._next_ping:
            action_id = self._action_id()
            self._actions[action_id] = "ping"
            self._next_ping = now + self._ping_interval
            self._ping_deadline = now + self._ping_timeout
            effects.append(Send(ami.action("Ping", action_id)))
        return effects

    def next_deadline(self) -> float | None:
        while self._deadlines and not self._is_outstanding(self._deadlines[0]):
            heapq.heappop(self._deadlines)
        candidates = [
            t for t in (self._login_deadline, self._ping_deadline, self._next_ping) if t is not None
        ]
        if self._deadlines:
            candidates.append(self._deadlines[0][0])
        return min(candidates) if candidates else None

    def connection_lost(self, now: float) -> list[Effect]:
        effects: list[Effect] = []
        for channel in list(self._calls):
            effects += self._end_call(channel, LINK_LOST)
        self.state = LinkState.CLOSED
        self._clear_timers()
        return effects

    @property
    def calls(self) -> frozenset[str]:
        return frozenset(self._calls)

    # -- internals --------------------------------------------------------------------------

    def _banner(self, banner: ami.Banner, now: float) -> list[Effect]:
        self.banner = banner.text
        self.state = LinkState.LOGGING_IN
        action_id = self._action_id()
        self._actions[action_id] = "login"
        login = ami.action(
            "Login",
            action_id,
            ("Username", self._username),
            ("Secret", self._secret.reveal()),
            ("Events", self._events),
        )
        return [Send(login)]

    def _message(self, message: ami.Message, now: float) -> list[Effect]:
        if message.response is not None:
            return self._response(message, now)
        event = message.event
        if event is None:
            return []
        if event == "AsyncAGI":  # Asterisk < 12
            event = "AsyncAGI" + (message.get("SubEvent") or "")
        if event == "AsyncAGIStart":
            return self._start(message)
        if event == "AsyncAGIExec":
            return self._exec(message)
        if event in ("AsyncAGIEnd", "Hangup"):
            channel = message.get("Channel")
            if channel in self._calls:
                return self._end_call(channel, "AsyncAGI ended" if event != "Hangup" else "hangup")
        return []

    def _response(self, message: ami.Message, now: float) -> list[Effect]:
        purpose = self._actions.pop(message.action_id or "", None)
        success = message.response in ("Success", "Goodbye", "Follows")
        text = message.get("Message") or ""
        if purpose == "login":
            self._login_deadline = None
            if not success:
                self.state = LinkState.CLOSED
                self._clear_timers()
                return [LoginFailed(text or "login refused"), Close("AMI login refused")]
            self.state = LinkState.READY
            self._next_ping = now + self._ping_interval
            return [LoggedIn(self.banner)]
        if purpose == "ping":
            self._ping_deadline = None
            return []
        if isinstance(purpose, tuple) and not success:
            channel, command_id = purpose
            call = self._calls.get(channel)
            if call is None or call.commands.pop(command_id, None) is None:
                return []
            effects: list[Effect] = [CommandFailed(purpose, Failure.REJECTED, text)]
            return effects + self._end_call(channel, f"Asterisk refused a command: {text}")
        return []

    def _start(self, message: ami.Message) -> list[Effect]:
        channel = message.get("Channel")
        if not channel or channel in self._calls:
            return []
        try:
            env = parse_env(message.get("Env") or "")
        except AgiError:
            env = {}
        unique_id = message.get("Uniqueid") or env.get("agi_uniqueid") or channel
        self._calls[channel] = _Call()
        answered = message.get("ChannelState") == CHANNEL_UP  # Asterisk >= 12 says; older: no
        return [CallStarted(channel, unique_id, env, answered)]

    def _exec(self, message: ami.Message) -> list[Effect]:
        channel = message.get("Channel") or ""
        command_id = message.get("CommandID") or ""
        call = self._calls.get(channel)
        if call is None or call.commands.pop(command_id, None) is None:
            return []
        key = (channel, command_id)
        try:
            return [CommandDone(key, decode_result(message.get("Result") or ""))]
        except (AgiError, UnicodeDecodeError) as error:
            return [CommandFailed(key, Failure.BAD_REPLY, str(error))]

    def _end_call(self, channel: str, reason: str) -> list[Effect]:
        call = self._calls.pop(channel)
        effects: list[Effect] = [
            CommandFailed((channel, command_id), Failure.HANGUP, reason)
            for command_id in call.commands
        ]
        effects.append(CallEnded(channel, reason))
        return effects

    def _close(self, reason: str, now: float) -> list[Effect]:
        effects = self.connection_lost(now)
        return [Close(reason), *effects]

    def _clear_timers(self) -> None:
        self._login_deadline = self._next_ping = self._ping_deadline = None
        self._deadlines.clear()

    def _is_outstanding(self, entry: tuple[float, str, str]) -> bool:
        call = self._calls.get(entry[1])
        return call is not None and entry[2] in call.commands

    def _action_id(self) -> str:
        self._counter += 1
        return f"{self._prefix}-{self._counter}"
