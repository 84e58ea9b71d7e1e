"""The hotline script: 1900.9068, key 8, a new VssID password read aloud twice.

It reads like BHXH's published flow and keeps every call short (the caller pays 1,000 VND a
minute): raise the dialplan's short time limit to the whole call's (``TIMEOUT(absolute)``, see
``ivr/asterisk/extensions.conf``); answer, unless the dialplan did; the menu, which any key
interrupts; key 8 (``reset_key``) for a password, another configured key to a dialplan
location (a human queue); the caller's number must be present, not withheld and valid; up to
``max_tries`` tries to type the 10-digit code (``#`` ends early, ``*`` starts the entry over
without costing a try); then the SAME reset service as SMS, which commits the new password
before we speak it, so what the caller hears always works; the password digit by digit with
``SAY DIGITS`` twice (pre-rendered digit prompts, never text-to-speech); goodbye; hang up.
Every call ends with one :class:`ivr.records.CallRecord` written to the call log, whatever
ends it: a hang-up, a lost link, a stop, or a failure of ours (then the caller is hung up
rather than left in silence).

No Twisted here: the dialog only awaits a :class:`CallPort` and the reset function, so it runs
against :class:`ivr.call.Call` in production and in tests alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Final, Protocol

from commands.parse import normalise_code
from commands.ports import Channel, Outcome
from commands.reset import ResetRequest, ResetResult
from commands.secret import Secret
from ivr.agi import KEYPAD
from ivr.caller import CallerId, CallerStatus, caller_from_env
from ivr.link import LINK_LOST, STOPPING, CallHungUp
from ivr.records import CallLog, CallOutcome, CallRecord, mask_code
from ivr.settings import IvrSettings, PromptTexts

ResetFunction = Callable[[ResetRequest], Awaitable[ResetResult]]
PROMPT_FOLDER: Final = "vssid"
CODE_DIGITS: Final = 10
RESTART_KEY: Final = "*"
MAX_RESTARTS: Final = 3
"""Restarts with ``*`` per call; one more ``*`` makes the try a failed one (calls stay short)."""
CALL_LIMIT: Final = "TIMEOUT(absolute)"
_PROMPTS: Final = frozenset(PromptTexts.names())

_REFUSALS: Final[Mapping[Outcome, tuple[str, CallOutcome]]] = {
    Outcome.MISMATCH: ("not-matched", CallOutcome.MISMATCH),
    Outcome.RATE_LIMITED: ("rate-limited", CallOutcome.RATE_LIMITED),
    Outcome.INVALID: ("code-invalid", CallOutcome.INVALID),
}
_CALLER_PROMPTS: Final[Mapping[CallerStatus, tuple[str, CallOutcome]]] = {
    CallerStatus.WITHHELD: ("number-withheld", CallOutcome.WITHHELD),
    CallerStatus.NO_NUMBER: ("number-withheld", CallOutcome.NO_NUMBER),
    CallerStatus.INVALID: ("number-invalid", CallOutcome.INVALID_NUMBER),
}


class CallPort(Protocol):
    """What the script needs of a call (:class:`ivr.call.Call` provides it)."""

    channel: str
    unique_id: str
    env: dict[str, str]
    started_at: float
    answered_at: float | None

    def now(self) -> float: ...
    def let_finish(self) -> None: ...
    async def set_variable(self, name: str, value: str) -> None: ...
    async def answer(self) -> None: ...
    async def play(self, prompt: str, escape: str = "") -> str | None: ...
    async def wait_for_digit(self, timeout: float) -> str | None: ...
    async def read(self, prompt: str, max_digits: int = 10, timeout: float = 6.0) -> str: ...
    async def say_digits(self, digits: Secret | str) -> None: ...
    async def goto(self, target: str) -> None: ...
    async def hangup(self) -> None: ...


def prompt(name: str) -> str:
    """``not-matched`` -> ``vssid/not-matched`` (Asterisk adds the language folder).

    Only prompts with a text in :class:`PromptTexts` exist as files (``prompts build`` renders
    those, the start-up check looks for those); a missing file would end AsyncAGI mid-call.
    """
    if name not in _PROMPTS:
        raise ValueError(f"no prompt text for {name!r}: add it to PromptTexts")
    return f"{PROMPT_FOLDER}/{name}"


class Dialog:
    """One run of the script on one call; :meth:`run` returns how it ended."""

    def __init__(self, call: CallPort, reset: ResetFunction, settings: IvrSettings) -> None:
        self.call = call
        self.reset = reset
        self.settings = settings
        self.caller: CallerId = caller_from_env(call.env)
        self.keys: list[str] = []
        self.outcome = CallOutcome.HUNG_UP
        self.detail = ""
        self.password_at: float | None = None
        self.restarts = 0

    async def run(self) -> CallOutcome:
        call, cfg = self.call, self.settings
        # First, before Asterisk's short deadline for taking the call expires: the call's limit.
        await call.set_variable(CALL_LIMIT, str(cfg.call_limit_seconds))
        await call.answer()
        key = await call.play(prompt("menu"), escape=KEYPAD)
        if key is None:
            key = await call.wait_for_digit(cfg.menu_timeout_seconds)
        self.keys.append(f"menu:{key or '-'}")
        if key is None:
            return await self._finish("goodbye", CallOutcome.NO_CHOICE)
        if key != cfg.reset_key:
            return await self._route(key)
        if self.caller.status is not CallerStatus.OK:
            name, outcome = _CALLER_PROMPTS[self.caller.status]
            return await self._finish(name, outcome)
        code = await self._read_code()
        if code is None:
            return await self._finish("too-many-tries", CallOutcome.TOO_MANY_TRIES)
        request = ResetRequest(self.caller.received, code, Channel.IVR, call.unique_id)
        try:
            result = await self.reset(request)
        except Exception as error:  # the service failed: say so, record it, let the caller go
            self.detail = f"reset failed: {type(error).__name__}"
            return await self._finish("error", CallOutcome.ERROR)
        if result.outcome in _REFUSALS:
            name, outcome = _REFUSALS[result.outcome]
            return await self._finish(name, outcome)
        if result.outcome is not Outcome.RESET or result.password is None:
            self.detail = "duplicate request" if result.duplicate else "no password"
            return await self._finish("error", CallOutcome.ERROR)
        self.outcome = CallOutcome.RESET  # committed: from here on, a hang-up is still a reset
        call.let_finish()  # a graceful stop lets the caller hear it
        await self._say_password(result.password)
        return await self._finish("goodbye", CallOutcome.RESET)

    async def _read_code(self) -> str | None:
        cfg = self.settings
        for attempt in range(1, cfg.max_tries + 1):
            typed = await self._read_try()
            self.keys.append(f"code:{mask_code(typed) if typed else '-'}")
            code = normalise_code(typed)
            if code is not None:
                return code
            if attempt < cfg.max_tries:
                await self.call.play(prompt("no-input" if not typed else "code-invalid"))
        return None

    async def _read_try(self) -> str:
        """One try at the code, with ``*`` starting the entry over.

        ``GET DATA`` stops only on ``#``: it collects ``*`` like a digit and counts it toward the
        10, so ``*0123456789`` comes back as ``*012345678``. The keys after the last ``*`` are
        the new entry: when ``GET DATA`` stopped at its limit the caller is still typing, and
        only the missing keys are read (the prompt is played again; the next key stops it);
        when it stopped on ``#`` or a pause, they are the whole entry. A restart is not a failed
        try; past :data:`MAX_RESTARTS` in a call, an entry with ``*`` is one.
        """
        wanted, kept = CODE_DIGITS, ""
        while True:
            more = await self.call.read(
                prompt("enter-code"), max_digits=wanted, timeout=self.settings.digit_timeout_seconds
            )
            if RESTART_KEY not in more or self.restarts >= MAX_RESTARTS:
                return kept + more
            self.restarts += 1
            self.keys.append(f"code:{RESTART_KEY}")
            kept = more.rpartition(RESTART_KEY)[2]
            if kept and len(more) < wanted:
                return kept
            wanted = CODE_DIGITS - len(kept)

    async def _say_password(self, password: Secret) -> None:
        await self.call.play(prompt("new-password"))
        self.password_at = self.call.now()
        await self.call.say_digits(password)
        await self.call.play(prompt("repeat"))
        await self.call.say_digits(password)

    async def _route(self, key: str) -> CallOutcome:
        target = next((r.goto for r in self.settings.routes if r.key == key), None)
        if target is None:
            return await self._finish("goodbye", CallOutcome.NO_CHOICE)
        self.outcome = CallOutcome.ROUTED
        self.detail = target
        await self.call.goto(target)
        return CallOutcome.ROUTED

    async def _finish(self, name: str, outcome: CallOutcome) -> CallOutcome:
        self.outcome = outcome
        await self.call.play(prompt(name))
        await self.call.hangup()
        return outcome

    def ended(self, reason: str) -> None:
        """The call ended under the dialog (:class:`CallHungUp`)."""
        if self.outcome is not CallOutcome.RESET:
            if reason == LINK_LOST:
                self.outcome = CallOutcome.LINK_LOST
            elif reason == STOPPING:
                self.outcome = CallOutcome.ERROR  # the dialplan tells the caller: vssid/error
        self.detail = self.detail or reason

    def failed(self, error: BaseException) -> None:
        """A failure of ours (a bug, an AGI reply we cannot read): never a password in it."""
        if self.outcome is not CallOutcome.RESET:
            self.outcome = CallOutcome.ERROR
        self.detail = f"failed: {type(error).__name__}"

    def record(self) -> CallRecord:
        call = self.call
        return CallRecord(
            unique_id=call.unique_id,
            channel=call.channel,
            caller_received=self.caller.received,
            caller_presentation=self.caller.presentation,
            caller=self.caller.e164 if self.caller.status is CallerStatus.OK else None,
            started_at=_time(call.started_at),
            answered_at=None if call.answered_at is None else _time(call.answered_at),
            ended_at=_time(call.now()),
            keys=" ".join(self.keys),
            outcome=self.outcome,
            detail=self.detail,
            password_spoken_at=None if self.password_at is None else _time(self.password_at),
        )


async def handle_call(
    call: CallPort, reset: ResetFunction, settings: IvrSettings, call_log: CallLog
) -> CallRecord:
    """The entry point the AMI client runs for each call: the script, then the record.

    The record is written however the dialog ends. A failure of ours is recorded as ``error``,
    the caller is hung up (not left in silence on a channel nobody drives), and the exception
    goes on to the caller of this function, which logs it.
    """
    dialog = Dialog(call, reset, settings)
    try:
        try:
            await dialog.run()
        except CallHungUp as ended:
            dialog.ended(ended.reason)
        except Exception as error:
            dialog.failed(error)
            with contextlib.suppress(Exception):
                await call.hangup()
            raise
    finally:
        record = dialog.record()
        call_log.record(record)
    return record


def prompts_used() -> tuple[str, ...]:
    """Every fixed prompt the script may play (for the start-up check): exactly the prompts
    with a text, since :func:`prompt` refuses any other."""
    return PromptTexts.names()


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
