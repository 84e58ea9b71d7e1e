"""One hotline call as awaitable steps, so that the dialog reads like the script it is.

``await call.play("vssid/menu", escape="0123456789*#")`` sends ``STREAM FILE`` through the
AMI link and resumes with the key that stopped the prompt. Every wait is a Deferred keyed by
(channel, CommandID) in :class:`ivr.client.AmiProtocol`; when the call ends (``AsyncAGIEnd``,
``Hangup``, a refused command, a time-out or a lost link) every wait fails with
:class:`CallHungUp`, which ends the dialog wherever it is. AGI replies are interpreted in
:mod:`ivr.agi`; here ``result=-1`` becomes that same exception.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from twisted.internet.defer import Deferred

from commands.secret import Secret
from ivr import agi
from ivr.agi import AgiResult
from ivr.link import CallHungUp

__all__ = ["Call", "CallHungUp", "CommandRunner", "ReactorClock"]


class DelayedCall(Protocol):
    def active(self) -> bool: ...
    def cancel(self) -> None: ...


class ReactorClock(Protocol):
    """The part of ``IReactorTime`` we use (a real reactor or ``twisted.internet.task.Clock``)."""

    def seconds(self) -> float: ...
    def callLater(  # noqa: N802
        self, delay: float, callable: Callable[..., object], *args: Any, **kw: Any
    ) -> DelayedCall: ...


class CommandRunner(Protocol):
    def run(self, channel: str, command: str, timeout: float) -> Deferred[AgiResult]: ...


class Call:
    """A call in AsyncAGI: the AGI environment plus awaitable commands.

    ``answered``: the channel was already up when AsyncAGI started (the shipped dialplan
    answers before ``AGI()``), so billing starts with the call and ``ANSWER`` is not sent
    (on an up channel it does nothing but cost the caller an AsyncAGI poll, ~100 ms).
    """

    def __init__(
        self,
        runner: CommandRunner,
        channel: str,
        unique_id: str,
        env: Mapping[str, str],
        clock: ReactorClock,
        command_timeout: float = 30.0,
        *,
        answered: bool = False,
    ) -> None:
        self.channel = channel
        self.unique_id = unique_id
        self.env = dict(env)
        self.started_at = clock.seconds()
        self.answered_at: float | None = self.started_at if answered else None
        self.ended_reason: str | None = None
        self.finishing = False
        """Set by :meth:`let_finish`: a graceful stop waits for this call."""
        self._leaving: str | None = None
        self._runner = runner
        self._clock = clock
        self._timeout = command_timeout

    def now(self) -> float:
        return self._clock.seconds()

    def ended(self, reason: str) -> None:
        """Called by the protocol when the call is over; pending waits fail on their own."""
        if self.ended_reason is None:
            self.ended_reason = reason

    def let_finish(self) -> None:
        """The caller must hear the rest (a committed password): a graceful stop lets this call
        run to its end, within the stop's time limit, instead of handing it back."""
        self.finishing = True

    def leave(self, reason: str) -> None:
        """Hand the call back to the dialplan (``ASYNCAGI BREAK``, which Asterisk runs after the
        command now running; the shipped dialplan then plays ``vssid/error`` and hangs up).
        Every later command of the dialog fails with :class:`CallHungUp` (``reason``)."""
        if self.ended_reason is not None or self._leaving is not None:
            return
        self._leaving = reason
        breaking = self._runner.run(self.channel, agi.asyncagi_break(), self._timeout)
        breaking.addErrback(lambda _failure: None)  # the call may already be gone: that is fine

    async def run(self, command: str, timeout: float | None = None) -> AgiResult:
        """One AGI command; :class:`CallHungUp` if the call ended or the channel hung up."""
        if self.ended_reason is not None:
            raise CallHungUp(self.ended_reason)
        if self._leaving is not None:
            raise CallHungUp(self._leaving)
        result = await self._runner.run(self.channel, command, timeout or self._timeout)
        if result.hung_up:
            self.ended(f"hung up during {command.split(' ', 2)[0].lower()}")
            raise CallHungUp(self.ended_reason or "hung up")
        return result

    async def answer(self) -> None:
        """``ANSWER``, unless the channel was already up when the call reached us."""
        if self.answered_at is not None:
            return
        await self.run(agi.answer())
        self.answered_at = self.now()

    async def set_variable(self, name: str, value: str) -> None:
        """``SET VARIABLE``: a channel variable or a writable function (``TIMEOUT(absolute)``)."""
        await self.run(agi.set_variable(name, value))

    async def play(self, prompt: str, escape: str = "") -> str | None:
        """Play ``prompt``; the first key of ``escape`` pressed stops it and is returned."""
        result = await self.run(agi.stream_file(prompt, escape))
        return result.digit

    async def wait_for_digit(self, timeout: float) -> str | None:
        ms = max(int(timeout * 1000), 1)
        result = await self.run(agi.wait_for_digit(ms), self._timeout + timeout)
        return result.digit

    async def read(self, prompt: str, max_digits: int = 10, timeout: float = 6.0) -> str:
        """Play ``prompt`` and collect keys (``GET DATA``): up to ``max_digits``, or until ``#``
        or ``timeout`` seconds without a key. Returns what was typed, possibly empty."""
        ms = max(int(timeout * 1000), 1)
        limit = self._timeout + timeout * (max_digits + 1)
        result = await self.run(agi.get_data(prompt, ms, max_digits), limit)
        return result.result

    async def say_digits(self, digits: Secret | str) -> None:
        """Speak digits with the language's pre-rendered ``digits/N`` prompts."""
        text = digits.reveal() if isinstance(digits, Secret) else digits
        await self.run(agi.say_digits(text))

    async def goto(self, target: str) -> None:
        """Leave the IVR for a dialplan location ``context,exten,priority``."""
        await self.run(agi.exec_application("Goto", target))
        await self.run(agi.asyncagi_break())

    async def hangup(self) -> None:
        with contextlib.suppress(CallHungUp):
            await self.run(agi.hangup())
