"""``vssid-gateway call-test``: place a test call through a real Asterisk and report what happened.

The operator checks a deployment end to end: Asterisk originates ``Local/19009068@hotline``;
its ``;2`` half runs the hotline dialplan and reaches our service over AsyncAGI, while the
``;1`` half plays the caller with ``Wait()``. Each key group (``--keys 8,0123456789#``) is sent
to the ``;1`` half with ``Action: PlayDTMF`` once the IVR starts the next prompt that listens
for keys, which is what a real caller does. (Originating with ``Application: SendDTMF`` hangs
the caller up as soon as the digits are sent: see the ``senddtmf-app-early-hangup``
transcript.) The report lists the IVR's commands and results in order. The user's event filter
in manager.conf keeps the ``SAY DIGITS`` that speaks the new password from reaching us at all;
should it arrive anyway (a user configured without the filter), its digits are masked.

Why asterisk-ami here and not in the service: this tool is a short sequential script, where
asterisk-ami's blocking client (a thread around a socket) and its action/event types are the
simplest fit. The service cannot use it: its parser drops lines it does not understand and
lets a repeated key overwrite the first, and a thread per connection does not fit Twisted.
We send actions with ``AMIClient.send`` and match responses ourselves, because its
``FutureResponse`` calls the deprecated ``Condition.notifyAll``.
"""

from __future__ import annotations

import contextlib
import queue
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from asterisk.ami import AMIClient, SimpleAction

from commands.secret import Secret

_LISTENING = ("STREAM FILE", "GET DATA", "WAIT FOR DIGIT")
_SAY = re.compile(r"^(SAY DIGITS) (\d+)")


class CallTestError(Exception):
    """The test call could not be placed or did not reach the IVR; the message says why."""


@dataclass(frozen=True)
class Plan:
    """What to call and how; printing it (``repr``) never shows the AMI secret."""

    caller: str
    keys: tuple[str, ...]
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "vssid-calltest"
    secret: Secret = field(default_factory=lambda: Secret(""))
    target: str = "Local/19009068@hotline"
    timeout: float = 120.0
    key_delay: float = 0.5
    dtmf_ms: int = 200


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    reached_ivr: bool = False
    ended: bool = False
    commands: int = 0

    @property
    def ok(self) -> bool:
        return self.reached_ivr and self.ended


def parse_keys(text: str) -> tuple[str, ...]:
    groups = tuple(g.strip() for g in text.split(",") if g.strip())
    if any(not re.fullmatch(r"[0-9*#]+", g) for g in groups):
        raise CallTestError(f"--keys takes groups of 0-9, * and # separated by commas: {text!r}")
    return groups


def endpoint_address(endpoint: str) -> tuple[str, int]:
    """Host and port of a ``tcp:`` Twisted endpoint string (``tcp:127.0.0.1:5038``)."""
    parts = endpoint.split(":")
    if parts[0] != "tcp":
        raise CallTestError(f"call-test speaks plain TCP to the AMI; got {endpoint!r}")
    named = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
    plain = [p for p in parts[1:] if "=" not in p]
    host = named.get("host") or (plain[0] if plain else "127.0.0.1")
    port = named.get("port") or (plain[1] if len(plain) > 1 else "5038")
    return host, int(port)


def run(plan: Plan, say: Callable[[str], None] = print) -> Report:
    client = AMIClient(address=plan.host, port=plan.port, timeout=max(plan.timeout, 30.0))
    session = _Session(plan, client, say)
    client.add_listener(
        on_response=lambda source, response: session.events.put(
            ("response", {**response.keys, "Response": response.status})
        ),
        on_event=lambda source, event: session.events.put((event.name, dict(event.keys))),
    )
    try:
        client.connect()
    except OSError as error:
        raise CallTestError(f"cannot reach the AMI at {plan.host}:{plan.port}: {error}") from error
    try:
        return session.drive()
    finally:
        session.logoff()  # Asterisk then closes the socket, which ends asterisk-ami's thread
        client.disconnect()


class _Session:
    """One test call: actions out, events in (from asterisk-ami's thread, through a queue)."""

    def __init__(self, plan: Plan, client: Any, say: Callable[[str], None]) -> None:
        self.plan = plan
        self.client = client
        self.say = say
        self.events: queue.Queue[tuple[str, dict[str, str]]] = queue.Queue()
        self.pending: list[tuple[str, dict[str, str]]] = []
        self.report = Report()
        self.started = time.monotonic()
        self.deadline = self.started + plan.timeout
        self.keys = list(plan.keys)
        self.counter = 0
        self.caller_leg = self.ivr_leg = ""

    def drive(self) -> Report:
        plan = self.plan
        login = self.action(
            "Login", Username=plan.username, Secret=plan.secret.reveal(), Events="agi,call"
        )
        if login.get("Response") != "Success":
            raise CallTestError(f"AMI login refused: {login.get('Message', '')}")
        self.originate_id = f"ct-{self.counter + 1}"
        answer = self.action(
            "Originate",
            Channel=plan.target,
            Application="Wait",
            Data=str(int(plan.timeout)),
            CallerID=f'"" <{plan.caller}>',
            Timeout="30000",
            Async="true",
        )
        if answer.get("Response") != "Success":
            raise CallTestError(f"Originate refused: {answer.get('Message', '')}")
        self.log(f"originated {plan.target} as caller {plan.caller}")
        while not self.report.ended:
            kind, headers = self.pending.pop(0) if self.pending else self.next_event()
            self.handle(kind, headers)
        if self.keys:
            self.log(f"keys not sent (the IVR stopped listening first): {','.join(self.keys)}")
        return self.report

    def handle(self, kind: str, headers: dict[str, str]) -> None:
        channel = headers.get("Channel", "")
        if kind == "OriginateResponse" and headers.get("ActionID") == self.originate_id:
            if headers.get("Response") != "Success":
                raise CallTestError(f"the call failed (reason {headers.get('Reason')})")
            self.caller_leg = channel
            self.ivr_leg = channel[:-1] + "2" if channel.endswith(";1") else ""
        elif channel != self.ivr_leg or not channel:
            return
        elif kind == "AsyncAGIStart":
            self.report.reached_ivr = True
            self.log("the IVR took the call (AsyncAGIStart)")
        elif kind == "AGIExecStart":
            command = _mask(headers.get("Command", ""))
            self.report.commands += 1
            self.log(f"IVR: {command}")
            if self.keys and command.startswith(_LISTENING):
                self.press(self.keys.pop(0))
        elif kind == "AsyncAGIExec":
            self.log(f"  -> {unquote(headers.get('Result', '')).strip()}")
        elif kind in ("AsyncAGIEnd", "Hangup"):
            self.report.ended = True
            cause = headers.get("Cause-txt") or headers.get("Cause") or ""
            self.log(f"call ended ({kind}{': ' + cause if cause else ''})")

    def press(self, group: str) -> None:
        time.sleep(self.plan.key_delay)  # let the prompt start, as a caller would
        for key in group:
            self.action(
                "PlayDTMF", Channel=self.caller_leg, Digit=key, Duration=str(self.plan.dtmf_ms)
            )
        self.log(f"caller pressed {group}")

    def logoff(self) -> None:
        with contextlib.suppress(OSError, CallTestError):
            self.deadline = time.monotonic() + 2.0
            self.action("Logoff")

    def action(self, name: str, **keys: str) -> dict[str, str]:
        self.counter += 1
        action_id = f"ct-{self.counter}"
        self.client.send(SimpleAction(name, ActionID=action_id, **keys))
        while True:
            kind, headers = self.next_event()
            if kind == "response" and headers.get("ActionID") == action_id:
                return headers
            self.pending.append((kind, headers))

    def next_event(self) -> tuple[str, dict[str, str]]:
        left = self.deadline - time.monotonic()
        try:
            if left <= 0:
                raise queue.Empty
            return self.events.get(timeout=left)
        except queue.Empty:
            raise CallTestError("the test call did not finish in time") from None

    def log(self, text: str) -> None:
        line = f"+{time.monotonic() - self.started:6.2f}s {text}"
        self.report.lines.append(line)
        self.say(line)


def _mask(command: str) -> str:
    """The digits the IVR speaks are the new password: never print them."""
    return _SAY.sub(lambda m: f"{m[1]} {'*' * len(m[2])}", command)
