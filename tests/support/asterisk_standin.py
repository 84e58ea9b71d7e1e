"""An Asterisk 22 stand-in that speaks AMI exactly as the recorded transcripts show.

Asterisk is not packaged for our machines, so tests drive the IVR against this server. It is
built from ``tests/fixtures/ami`` (recorded against Asterisk 22.10.1) and checked against
them byte for byte by ``tests/unit/test_ivr_standin_replay.py``: feeding it a transcript's
client side reproduces the transcript's server side, channel names, unique ids, internal
command ids, thread ids and timestamps aside.

What it models, and nothing more:

* the AMI session: banner without an empty line, Login (a wrong secret is answered about 1 s
  later, then the socket closes), ``Permission denied`` before Login, read/write classes per
  user and the ``Events`` mask, Ping, Logoff;
* ``Originate`` of ``Local/<exten>@<context>`` channel pairs, with an application (``Wait``,
  ``SendDTMF``) or a ``[caller-sim]`` extension on the ``;1`` half, with every event Asterisk
  sends and in the same order;
* the ``[hotline]`` dialplan of the README (``Answer``, ``Set(CHANNEL(language)=vi)``,
  ``AGI(agi:async)``, ``Hangup``), AsyncAGI with its queue polled every ``agi_poll`` seconds,
  and the AGI commands the IVR uses with Asterisk's results (``STREAM FILE`` with barge-in,
  ``GET DATA`` with ``#``/max/time-out, a missing file ending AsyncAGI, ``-1`` on hang-up);
* ``PlayDTMF`` (on ``;1``, or ``Receive: true`` on ``;2``), ``Hangup``, and the race where a
  command queued just after ``AsyncAGIEnd`` is acknowledged and never runs;
* a scriptable caller for dialog tests (:meth:`Pbx.place_call`): keys pressed when a prompt
  starts (or after a delay), and a hang-up at a given moment.

Time comes from an injected clock (``twisted.internet.task.Clock`` in unit and adapter tests,
the reactor in end-to-end tests); ``Timing`` holds every delay, all scalable to near zero.
Cross-channel event order is one fixed interleaving: real Asterisk publishes each channel's
events from its own thread, so that interleaving varies between recordings of the same call.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from twisted.internet.protocol import Factory, Protocol
from twisted.test import iosim

from ivr import ami
from ivr.settings import PromptTexts

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
ASTERISK_VERSION = "22.10.1"
SAMPLE_RATE = 8000
FRAME = 0.02  # Asterisk reads files in 20 ms frames; endpos moves one frame at a time
STATE_DESC = {0: "Down", 4: "Ring", 6: "Up"}
CAUSE_TEXT = {0: "Unknown", 16: "Normal Clearing"}
PRESENTATION_TEXT = {
    0: "Presentation Allowed, Not Screened",
    1: "Presentation Allowed, Passed Screen",
    3: "Presentation Allowed, Network Number",
    32: "Presentation Restricted, Not Screened",
    33: "Presentation Prohibited, Passed Screen",
    35: "Presentation Restricted, Network Number",
    67: "Number Unavailable",
}
PRESENTATION_NAMES = {
    "allowed_not_screened": 0,
    "allowed_passed_screen": 1,
    "prohib_not_screened": 32,
    "prohib_passed_screen": 33,
    "unavailable": 67,
}
GET_DATA_USAGE = (
    "520-Invalid command syntax.  Proper usage follows:\n"
    "Stream the given <replaceable>file</replaceable>, and receive DTMF data.\n"
    "Returns the digits received from the channel at the other end.\n"
    "520 End of proper usage.\n"
)
# Durations (samples at 8 kHz) of the prompts used when the transcripts were recorded.
FIXTURE_SOUNDS: dict[str, int] = {
    "vssid-welcome": 67637,
    "vssid-enter-code": 28000,
    "vssid-invalid-code": 24000,
    "vssid-not-matched": 40000,
    "vssid-no-callerid": 44834,
    "vssid-new-password": 18538,
    "vssid-repeat": 19942,
    "vssid-timeout": 18361,
    "vssid-goodbye": 23935,
    **{f"digits/{d}": 5400 for d in "0123456789"},
    "digits/star": 5400,
    "digits/pound": 5400,
}
CLASSES = (
    "system",
    "call",
    "log",
    "verbose",
    "command",
    "agent",
    "user",
    "config",
    "dtmf",
    "reporting",
    "cdr",
    "dialplan",
    "originate",
    "agi",
    "cc",
    "aoc",
    "test",
    "security",
    "message",
)


@dataclass(frozen=True)
class Timing:
    """Every delay of the model, in seconds; ``scale`` shrinks the media-bound ones."""

    agi_poll: float = 0.1  # AsyncAGI polls its queue (per-command latency)
    answer: float = 0.5  # Answer() on a channel that was not up yet
    login_failure: float = 1.0
    dialplan_step: float = 0.0015  # from AsyncAGIEnd to the dialplan's Hangup()
    scale: float = 1.0  # prompt lengths, Wait(), GET DATA/WAIT FOR DIGIT time-outs, SendDTMF

    @classmethod
    def fast(cls, scale: float = 0.001) -> Timing:
        return cls(agi_poll=0.0, answer=0.0, login_failure=0.01, dialplan_step=0.0, scale=scale)


@dataclass
class User:
    secret: str
    read: frozenset[str]
    write: frozenset[str]
    filters: tuple[str, ...] = ()
    """manager.conf ``eventfilter`` lines (legacy form: a regex, ``!`` for an exclusion)."""

    def passes(self, event: bytes) -> bool:
        """Asterisk's legacy event filtering: each filter is a regex searched in the whole
        event text; with includes only, an event must match one; with excludes only, it must
        match none; with both, it must match an include and no exclude."""
        if not self.filters:
            return True
        text = event.decode("utf-8", "replace")
        includes = [f for f in self.filters if not f.startswith("!")]
        excludes = [f[1:] for f in self.filters if f.startswith("!")]
        if includes and not any(re.search(f, text) for f in includes):
            return False
        return not any(re.search(f, text) for f in excludes)


def user(secret: str, read: str, write: str, *filters: str) -> User:
    return User(secret, frozenset(read.split(",")), frozenset(write.split(",")), filters)


def manager_users(path: Path, secrets: Mapping[str, str]) -> dict[str, User]:
    """The users of a manager.conf (``read``, ``write``, ``eventfilter``), as Asterisk reads
    them; ``secrets`` replaces the placeholder secrets shipped in the file."""
    users: dict[str, User] = {}
    section = ""
    values: dict[str, list[str]] = {}

    def close() -> None:
        if section and section != "general":
            read, write = (",".join(values.get(k, [""])) for k in ("read", "write"))
            secret = secrets.get(section, values.get("secret", [""])[0])
            users[section] = user(secret, read, write, *values.get("eventfilter", []))

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            close()
            section, values = line[1:-1], {}
        elif "=" in line:
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    close()
    return users


SHIPPED_MANAGER_CONF = Path(__file__).parents[2] / "ivr" / "asterisk" / "manager.conf"
SHIPPED_EXTENSIONS_CONF = Path(__file__).parents[2] / "ivr" / "asterisk" / "extensions.conf"
_SHIPPED_USERS = manager_users(SHIPPED_MANAGER_CONF, {"vssid": "secret", "vssid-calltest": "ct"})
FIXTURE_USER = user("***", "system,call,agi,dtmf,user", "call,agi,originate,reporting")
SERVICE_USER = _SHIPPED_USERS["vssid"]
"""The service's AMI user exactly as ``ivr/asterisk/manager.conf`` ships it (secret ``secret``)."""
CALLTEST_USER = _SHIPPED_USERS["vssid-calltest"]
"""The call-test tool's AMI user as shipped (secret ``ct``)."""


@dataclass(frozen=True)
class Dialplan:
    """What the stand-in's ``[hotline]`` does around ``AGI(agi:async)``.

    The default is the dialplan the transcripts were recorded with (``Answer()``,
    ``Set(CHANNEL(language)=vi)``, ``AGI(agi:async)``, then ``Hangup()``: see the fixtures'
    README); :func:`shipped_dialplan` reads ``ivr/asterisk/extensions.conf``. The behaviour
    beyond the recordings follows Asterisk's source: ``AMI_CLIENT(user,sessions)`` counts the
    user's logged-in AMI sessions; ``TIMEOUT(absolute)`` (also set with ``SET VARIABLE``)
    counts from when it is set, ``0`` clears it; when it expires the running AGI command
    returns ``-1``, AsyncAGI ends, and the context's ``T`` extension runs (without one, the
    channel hangs up); no AMI event marks the expiry itself.
    """

    service_user: str | None = None
    """``GotoIf($["${AMI_CLIENT(<user>,sessions)}" = "0"]?unavailable)`` before AGI()."""
    agi_timeout: float | None = None
    """``Set(TIMEOUT(absolute)=N)`` just before AGI()."""
    after_agi_prompt: str | None = None
    """``Playback()`` after AGI() (and at ``unavailable``) when the channel is still up."""
    timeout_prompt: str | None = None
    """The ``T`` extension's ``Playback()``; None: no ``T`` extension."""
    agents_clear_timeout: bool = False
    """``[hotline-agents]`` starts with ``Set(TIMEOUT(absolute)=0)``."""


def shipped_dialplan(path: Path = SHIPPED_EXTENSIONS_CONF) -> Dialplan:
    """The :class:`Dialplan` of an extensions.conf written like ours."""
    steps: dict[tuple[str, str], list[str]] = {}
    context = exten = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            context = line[1:-1]
        elif line.startswith("exten =>"):
            exten, _, rest = line.removeprefix("exten =>").strip().partition(",")
            steps.setdefault((context, exten), []).append(rest.split(",", 1)[1])
        elif line.startswith("same =>"):
            steps[(context, exten)].append(line.removeprefix("same =>").strip().split(",", 1)[1])
    hotline = steps[("hotline", "19009068")]
    agi = next(i for i, step in enumerate(hotline) if step.startswith("AGI(agi:async)"))
    user_check = next(
        (
            m[1]
            for step in hotline[:agi]
            if (m := re.search(r"AMI_CLIENT\(([^,]+),sessions\)", step))
        ),
        None,
    )
    limit = next(
        (
            float(m[1])
            for step in hotline[:agi]
            if (m := re.match(r"Set\(TIMEOUT\(absolute\)=(\d+)\)", step))
        ),
        None,
    )
    after = next(
        (m[1] for step in hotline[agi + 1 :] if (m := re.match(r"Playback\(([^)]+)\)", step))),
        None,
    )
    timeout = steps.get(("hotline", "T"), [])
    played = re.match(r"Playback\(([^)]+)\)", timeout[0]) if timeout else None
    agents = steps.get(("hotline-agents", "s"), [])
    return Dialplan(
        service_user=user_check,
        agi_timeout=limit,
        after_agi_prompt=after,
        timeout_prompt=played[1] if played else None,
        agents_clear_timeout=bool(agents) and agents[0] == "Set(TIMEOUT(absolute)=0)",
    )


@dataclass
class Press:
    """The scripted caller presses ``keys`` when ``on`` starts playing (or right away)."""

    keys: str
    on: str | None = None
    after: float = 0.0
    gap: float = 0.0


@dataclass
class HangUp:
    """The scripted caller hangs up when ``on`` starts playing (or right away)."""

    on: str | None = None
    after: float = 0.0


Step = Press | HangUp


@dataclass
class Channel:
    name: str
    uniqueid: str
    linkedid: str
    state: int
    context: str
    exten: str
    priority: int = 1
    cid_num: str = "<unknown>"
    cid_name: str = "<unknown>"
    conn_num: str = "<unknown>"
    conn_name: str = "<unknown>"
    language: str = "en"
    pres: int = 0
    variables: dict[str, str] = field(default_factory=dict)
    peer: Channel | None = None
    alive: bool = True
    in_dialplan: bool = False  # runs an extension (not an Originate application)
    agi: AgiSession | None = None
    listener: Callable[[str], None] | None = None  # who takes a key arriving now
    timers: list[Any] = field(default_factory=list)
    bridge: Bridge | None = None
    dial_peer: Channel | None = None
    device: str = ""
    absolute: Any = None  # the TIMEOUT(absolute) timer

    def snapshot(self, prefix: str = "") -> list[tuple[str, str]]:
        return [
            (prefix + "Channel", self.name),
            (prefix + "ChannelState", str(self.state)),
            (prefix + "ChannelStateDesc", STATE_DESC[self.state]),
            (prefix + "CallerIDNum", self.cid_num),
            (prefix + "CallerIDName", self.cid_name),
            (prefix + "ConnectedLineNum", self.conn_num),
            (prefix + "ConnectedLineName", self.conn_name),
            (prefix + "Language", self.language),
            (prefix + "AccountCode", ""),
            (prefix + "Context", self.context),
            (prefix + "Exten", self.exten),
            (prefix + "Priority", str(self.priority)),
            (prefix + "Uniqueid", self.uniqueid),
            (prefix + "Linkedid", self.linkedid),
        ]


@dataclass
class Bridge:
    uniqueid: str
    members: list[Channel] = field(default_factory=list)

    def headers(self) -> list[tuple[str, str]]:
        return [
            ("BridgeUniqueid", self.uniqueid),
            ("BridgeType", "basic"),
            ("BridgeTechnology", "simple_bridge"),
            ("BridgeCreator", "<unknown>"),
            ("BridgeName", "<unknown>"),
            ("BridgeNumChannels", str(len(self.members))),
            ("BridgeVideoSourceMode", "none"),
        ]


@dataclass
class Command:
    command_id: str  # the client's CommandID
    text: str
    internal_id: str = ""


class AgiSession:
    """The AsyncAGI side of one channel: a queue of commands run one at a time."""

    def __init__(self, pbx: Pbx, channel: Channel) -> None:
        self.pbx = pbx
        self.channel = channel
        self.queue: list[Command] = []
        self.running: Command | None = None
        self.finish: Callable[[str, str, str], None] | None = None  # hang-up handler
        self.ended = False
        self.poll: Any = None
        # Recorded: right after GET DATA / WAIT FOR DIGIT ended on a key, and for the quick
        # commands that follow, AsyncAGI picks the next command up within 20 ms, not 100 ms
        # (frames still arrive from the caller's half and wake its 100 ms wait early).
        self.fast = False

    def _delay(self) -> float:
        return min(0.02, self.pbx.timing.agi_poll) if self.fast else self.pbx.timing.agi_poll

    def add(self, command: Command) -> None:
        self.queue.append(command)
        if self.running is None and self.poll is None and not self.ended:
            self.poll = self.pbx.later(self._delay(), self._next, raw=True)

    def _next(self) -> None:
        self.poll = None
        if self.running is not None or self.ended or not self.queue or not self.channel.alive:
            return
        command = self.queue.pop(0)
        command.internal_id = str(self.pbx.rng.randrange(1, 2**31))
        self.running = command
        self.pbx.emit(
            "AGIExecStart",
            "agi",
            [
                *self.channel.snapshot(),
                ("CommandId", command.internal_id),
                ("Command", command.text),
            ],
        )
        self.pbx.run_agi(self, command)

    def done(self, code: int, text: str, status: str | None = None) -> None:
        """``text``: the AGI reply without the trailing newline."""
        command = self.running
        if command is None:
            return
        self.running = None
        self.finish = None
        self.channel.listener = None
        result = status or {200: "Success", 510: "Invalid or unknown command", 520: "Usage"}[code]
        self.pbx.emit(
            "AGIExecEnd",
            "agi",
            [
                *self.channel.snapshot(),
                ("CommandId", command.internal_id),
                ("Command", command.text),
                ("ResultCode", str(code)),
                ("Result", result),
            ],
        )
        encoded = quote(text + "\n", safe="-_.!~*'()")
        self.pbx.emit(
            "AsyncAGIExec",
            "agi",
            [*self.channel.snapshot(), ("Result", encoded), ("CommandId", command.command_id)],
        )
        if self.queue and not self.ended:
            self.poll = self.pbx.later(self._delay(), self._next, raw=True)


class Pbx:
    """The simulated Asterisk: channels, dialplan, AsyncAGI, and the AMI sessions to tell."""

    def __init__(
        self,
        clock: Any,
        *,
        timing: Timing | None = None,
        sounds: Mapping[str, int] | None = None,
        users: Mapping[str, User] | None = None,
        seed: int = 22,
        epoch: int = 1795340130,
        first_local: int = 0,
        dialplan: Dialplan | None = None,
    ) -> None:
        self.clock = clock
        self.timing = timing or Timing()
        self.dialplan = dialplan or Dialplan()
        self.sounds = dict(FIXTURE_SOUNDS if sounds is None else sounds)
        self.users = dict(users or {"vssid": FIXTURE_USER})
        self.rng = random.Random(seed)
        self.sessions: list[AmiSession] = []
        self.channels: dict[str, Channel] = {}
        self.epoch = epoch
        self._unique = itertools.count()
        self._local = itertools.count(first_local)
        self.started_calls: list[Channel] = []
        self.hangups = 0
        self.prompt_listeners: list[Callable[[Channel, str], None]] = []
        self.said_digits: list[tuple[str, str]] = []
        """(channel, digits) of every SAY DIGITS: what callers heard read out."""
        self.dialplan_prompts: list[tuple[str, str]] = []
        """(channel, prompt) of every Playback() the dialplan itself ran (not through AGI)."""

    # -- plumbing ---------------------------------------------------------------------------

    def later(
        self,
        delay: float,
        function: Callable[..., Any],
        *args: Any,
        raw: bool = False,
        owner: Channel | None = None,
    ) -> Any:
        seconds = delay if raw else delay * self.timing.scale
        call = self.clock.callLater(max(seconds, 0.0), function, *args)
        if owner is not None:
            owner.timers.append(call)
        return call

    def emit(self, name: str, klass: str, headers: Iterable[tuple[str, str]]) -> None:
        data = ami.encode([("Event", name), ("Privilege", f"{klass},all"), *headers])
        for session in list(self.sessions):
            session.event(klass, data)

    def now(self) -> float:
        return float(self.clock.seconds())

    def _uniqueid(self) -> str:
        return f"{self.epoch}.{next(self._unique)}"

    # -- channels ---------------------------------------------------------------------------

    def local_pair(
        self, exten: str, context: str, linkedid: str | None = None
    ) -> tuple[Channel, Channel]:
        base = f"Local/{exten}@{context}-{next(self._local):08x}"
        one_id = self._uniqueid()
        one = Channel(f"{base};1", one_id, linkedid or one_id, 0, context, exten)
        two = Channel(f"{base};2", self._uniqueid(), linkedid or one_id, 4, context, exten)
        one.peer, two.peer = two, one
        one.device = two.device = f"Local/{exten}@{context}"
        for channel in (one, two):
            self.channels[channel.name] = channel
        self.emit("Newchannel", "call", one.snapshot())
        self.emit("Newchannel", "call", two.snapshot())
        return one, two

    def set_caller(
        self, one: Channel, two: Channel, num: str, name: str, pres: int, one_num: str | None = None
    ) -> None:
        one.cid_num, one.cid_name = one_num or num, name
        one.pres = pres
        pres_text = f"{pres} ({PRESENTATION_TEXT.get(pres, 'Unknown')})"
        self.emit(
            "NewCallerid",
            "call",
            [*one.snapshot(), ("CID-CallingPres", "0 (" + PRESENTATION_TEXT[0] + ")")],
        )
        one.conn_num, one.conn_name = num, name
        self.emit("NewConnectedLine", "call", one.snapshot())
        two.cid_num, two.cid_name = num, name
        two.conn_num, two.conn_name = one.cid_num, name
        two.pres = pres
        self.emit("NewCallerid", "call", [*two.snapshot(), ("CID-CallingPres", pres_text)])
        self.emit("NewConnectedLine", "call", two.snapshot())

    def local_bridge(self, one: Channel, two: Channel) -> None:
        self.emit(
            "LocalBridge",
            "call",
            one.snapshot("LocalOne")
            + two.snapshot("LocalTwo")
            + [("Context", two.context), ("Exten", two.exten), ("LocalOptimization", "Yes")],
        )

    def originate(self, session: AmiSession | None, message: ami.Message) -> None:
        target = message.get("Channel") or ""
        exten, _, context = target.removeprefix("Local/").partition("@")
        num, name = _parse_callerid(message.get("CallerID"))
        variables = dict(v.partition("=")[::2] for v in message.get_all("Variable"))
        one, two = self.local_pair(exten, context)
        pres = 0
        if num is not None:
            self.set_caller(one, two, num, name or "<unknown>", pres)
        else:
            one.pres = two.pres = 67
        self.local_bridge(one, two)
        self.emit(
            "DialBegin", "call", [*one.snapshot("Dest"), ("DialString", f"{exten}@{context}")]
        )
        application = message.get("Application")
        where = (
            [("Application", application), ("Data", message.get("Data") or "")]
            if application
            else [("Context", message.get("Context") or ""), ("Exten", message.get("Exten") or "")]
        )

        def answered() -> None:
            self.emit("DialEnd", "call", [*one.snapshot("Dest"), ("DialStatus", "ANSWER")])
            self._device(one, "INUSE")
            self._device(one, "INUSE")
            if session is not None and message.action_id is not None:
                self.emit(
                    "OriginateResponse",
                    "call",
                    [
                        ("ActionID", message.action_id),
                        ("Response", "Success"),
                        ("Channel", one.name),
                        *where,
                        ("Reason", "4"),
                        ("Uniqueid", one.uniqueid),
                        ("CallerIDNum", one.cid_num),
                        ("CallerIDName", one.cid_name),
                    ],
                )

        if context == "caller-sim" and exten == "withheld":
            self._withheld(two, answered)
        else:
            self._answer_pair(one, two)
            answered()
            self._dialplan(two)
        if application:
            self._application(one, application, message.get("Data") or "")
        else:
            one.context, one.exten = message.get("Context") or "", message.get("Exten") or ""
            one.priority = int(message.get("Priority") or "1")
            one.in_dialplan = True
            one.variables.update(variables)
            self._caller_sim(one)

    def _answer_pair(self, one: Channel, two: Channel) -> None:
        two.state = 6
        self.emit("Newstate", "call", two.snapshot())
        one.state = 6
        self.emit("Newstate", "call", one.snapshot())

    def place_call(
        self,
        caller: str | None = "0912345678",
        *,
        presentation: int = 0,
        name: str = "",
        script: Iterable[Step] = (),
    ) -> Channel:
        """A test call into the hotline: returns the caller's ``;1`` half."""
        headers = [
            ("Action", "Originate"),
            ("Channel", "Local/19009068@hotline"),
            ("Application", "Wait"),
            ("Data", "3600"),
        ]
        if caller is not None:
            headers.append(("CallerID", f'"{name}" <{caller}>'))
        before = set(self.channels)
        self.originate(None, ami.Message(tuple(headers)))
        one = next(self.channels[n] for n in self.channels if n not in before and n.endswith(";1"))
        assert one.peer is not None
        if presentation:
            one.pres = one.peer.pres = presentation
        self._run_script(one, list(script))
        return one

    # -- the caller's side ------------------------------------------------------------------

    def _application(self, one: Channel, application: str, data: str) -> None:
        if application == "Wait":
            self.later(float(data or 0), self._app_done, one, owner=one)
        elif application == "SendDTMF":
            self._send_dtmf(one, data, lambda: self.later(0.25, self._app_done, one, owner=one))

    def _app_done(self, one: Channel) -> None:
        if one.alive:
            self.caller_hangup(one, 0)

    def _caller_sim(self, one: Channel) -> None:
        """``[caller-sim]``: ``dtmf`` = Wait(WAIT1), SendDTMF(DTMF1), Wait(GAP),
        SendDTMF(DTMF2), Wait(60)."""
        v = one.variables

        def step(priority: int) -> None:
            if not one.alive:
                return
            one.priority = priority
            if priority == 1:
                self.later(float(v.get("WAIT1", "0")), step, 2, owner=one)
            elif priority == 2:
                self._send_dtmf(one, v.get("DTMF1", ""), lambda: step(3))
            elif priority == 3:
                self.later(float(v.get("GAP", "0")), step, 4, owner=one)
            elif priority == 4:
                self._send_dtmf(one, v.get("DTMF2", ""), lambda: step(5))
            elif priority == 5:
                self.later(60.0, self._app_done, one, owner=one)

        if one.exten == "dtmf":
            step(1)

    def _send_dtmf(self, one: Channel, data: str, then: Callable[[], None]) -> None:
        keys = list(data)

        def next_key() -> None:
            if not one.alive:
                return
            if not keys:
                then()
                return
            key = keys.pop(0)
            if key == "w":
                self.later(0.5, next_key, owner=one)
                return
            target = one.peer
            if target is not None and target.alive:
                self.emit(
                    "DTMFBegin",
                    "dtmf",
                    [*target.snapshot(), ("Digit", key), ("Direction", "Received")],
                )
            self.later(0.1, end_key, key, owner=one)

        def end_key(key: str) -> None:
            self._dtmf_end(one.peer, key, 100)
            self.later(0.25, next_key, owner=one)

        self.later(0.1, next_key, owner=one)

    def _dtmf_end(self, target: Channel | None, key: str, duration_ms: int) -> None:
        if target is None or not target.alive:
            return
        self.emit(
            "DTMFEnd",
            "dtmf",
            [
                *target.snapshot(),
                ("Digit", key),
                ("DurationMs", str(duration_ms)),
                ("Direction", "Received"),
            ],
        )
        if target.listener is not None:
            target.listener(key)

    def play_dtmf(self, session: AmiSession, message: ami.Message) -> None:
        channel = self.channels.get(message.get("Channel") or "")
        digit = (message.get("Digit") or "")[:1]
        action_id = message.action_id
        if channel is None or not channel.alive or not digit:
            session.respond(
                action_id, "Error", "Channel not found" if channel is None else "No digit specified"
            )
            return
        duration = int(message.get("Duration") or "250")
        if (message.get("Receive") or "").lower() in ("true", "yes", "1"):
            session.respond(action_id, "Success", "DTMF successfully queued")
            self._dtmf_end(channel, digit, duration)
            return

        def played() -> None:
            session.respond(action_id, "Success", "DTMF successfully queued")
            target = channel.peer
            if target is not None and target.alive:
                self.emit(
                    "DTMFBegin",
                    "dtmf",
                    [*target.snapshot(), ("Digit", digit), ("Direction", "Received")],
                )
                self._dtmf_end(target, digit, duration)

        self.later(duration / 1000, played, raw=True)

    def _run_script(self, one: Channel, steps: list[Step]) -> None:
        def run() -> None:
            if not steps or not one.alive:
                return
            current = steps[0]
            if current.on is None:
                steps.pop(0)
                self.later(current.after, act, current, owner=one)
            else:
                self.prompt_listeners.append(trigger)

        def trigger(channel: Channel, prompt: str) -> None:
            current = steps[0] if steps else None
            if channel is one.peer and current is not None and current.on == prompt:
                self.prompt_listeners.remove(trigger)
                steps.pop(0)
                if current.after:
                    self.later(current.after, act, current, owner=one)
                else:
                    act(current)

        def act(current: Step) -> None:
            if not one.alive:
                return
            if isinstance(current, HangUp):
                self.caller_hangup(one, 16)
                return
            keys = list(current.keys)

            def press() -> None:
                if keys and one.alive:
                    self._dtmf_end(one.peer, keys.pop(0), 100)
                    if current.gap:
                        self.later(current.gap, press, owner=one)
                    else:
                        press()
                else:
                    run()

            press()

        run()

    def prompt_started(self, channel: Channel, prompt: str) -> None:
        for listener in list(self.prompt_listeners):
            listener(channel, prompt)

    # -- the [hotline] dialplan and AsyncAGI -------------------------------------------------

    def _dialplan(self, two: Channel) -> None:
        def agi() -> None:
            if not two.alive:
                return
            two.priority = 3
            two.language = "vi"
            if two.peer is not None:
                two.peer.language = "vi"
            if two.dial_peer is not None:
                two.dial_peer.language = "vi"
            plan = self.dialplan
            if plan.service_user is not None and not self.logged_in(plan.service_user):
                self._after_agi(two)  # GotoIf(AMI_CLIENT(...) = 0 ?unavailable)
                return
            if plan.agi_timeout is not None:
                self.set_absolute_timeout(two, plan.agi_timeout)
            env = _agi_env(two, self.rng)
            two.agi = AgiSession(self, two)
            self.started_calls.append(two)
            self.emit("AsyncAGIStart", "agi", [*two.snapshot(), ("Env", env)])

        if two.context == "hotline":
            self.later(self.timing.answer, agi, raw=True, owner=two)

    def run_agi(self, session: AgiSession, command: Command) -> None:
        channel = session.channel
        words = command.text.split(" ")
        name = " ".join(words[:2]).upper()
        arguments = _split_arguments(command.text)
        if words[0].upper() in ("ANSWER", "HANGUP"):
            name = words[0].upper()
        if name == "ANSWER":
            session.done(200, "200 result=0")
        elif name == "HANGUP":
            self.emit("SoftHangupRequest", "call", [*channel.snapshot(), ("Cause", "32")])
            session.done(200, "200 result=1")
            self.agi_end(channel)
            self.ivr_hangup(channel)
        elif name == "STREAM FILE" and len(arguments) >= 3:
            escape = arguments[3] if len(arguments) > 3 else ""
            self._stream(session, arguments[2], escape)
        elif name == "GET DATA" and len(arguments) >= 3:
            timeout = int(arguments[3]) if len(arguments) > 3 else 2000
            maximum = int(arguments[4]) if len(arguments) > 4 else 1024
            self._get_data(session, arguments[2], timeout, maximum)
        elif name == "GET DATA":
            session.done(520, GET_DATA_USAGE.rstrip("\n"))
        elif name == "WAIT FOR":
            self._wait_for_digit(session, int(arguments[3]))
        elif name == "SAY DIGITS":
            self.said_digits.append((channel.name, arguments[2]))
            files = [f"digits/{d}" for d in arguments[2]]
            self._play_list(
                session, files, arguments[3] if len(arguments) > 3 else "", "", "say-digits"
            )
        elif name == "SET VARIABLE":
            value = arguments[3] if len(arguments) > 3 else ""
            if arguments[2] == "TIMEOUT(absolute)":
                self.set_absolute_timeout(channel, float(value or 0))
            else:
                channel.variables[arguments[2]] = value
            session.done(200, "200 result=1")
        elif name == "GET VARIABLE":
            value = channel.variables.get(arguments[2])
            session.done(200, "200 result=0" if value is None else f"200 result=1 ({value})")
        elif name == "GET FULL":
            session.done(200, f"200 result=1 ({self._expand(channel, arguments[3])})")
        elif name == "CHANNEL STATUS":
            session.done(200, f"200 result={channel.state}")
        elif name.startswith("EXEC "):
            self._exec(session, words[1], " ".join(arguments[2:]))
        elif name == "ASYNCAGI BREAK":
            session.done(200, "200 result=0")
            self.agi_end(channel)
            self.later(self.timing.dialplan_step, self._after_agi, channel, raw=True)
        else:
            session.done(510, "510 Invalid or unknown command")

    def _expand(self, channel: Channel, expression: str) -> str:
        def value(name: str) -> str:
            if name == "CALLERID(num)":
                return "" if channel.cid_num == "<unknown>" else channel.cid_num
            if name == "CALLERID(num-pres)":
                if channel.cid_num == "<unknown>":
                    return "allowed_not_screened"
                return {v: k for k, v in PRESENTATION_NAMES.items()}.get(channel.pres, "")
            if name == "CHANNEL(language)":
                return channel.language
            return channel.variables.get(name, "")

        out = expression
        while "${" in out:
            start = out.index("${")
            end = out.index("}", start)
            out = out[:start] + value(out[start + 2 : end]) + out[end + 1 :]
        return out

    def _stream(self, session: AgiSession, file: str, escape: str) -> None:
        channel = session.channel
        if file not in self.sounds:
            session.done(-1, "200 result=-1 endpos=0", status="Failure")
            self.agi_end(channel)
            self.later(self.timing.dialplan_step, self._after_agi, channel, raw=True)
            return
        self._play_list(session, [file], escape, "endpos", file)

    def _play_list(
        self, session: AgiSession, files: list[str], escape: str, report: str, prompt: str
    ) -> None:
        """Play ``files`` in a row; a key in ``escape`` stops; hang-up gives ``-1``."""
        channel = session.channel
        session.fast = False
        total = sum(self.sounds.get(f, 0) for f in files)
        started = self.now()
        timer: Any = None

        def position() -> int:
            elapsed = (self.now() - started) / max(self.timing.scale, 1e-9)
            return min(math.ceil(round(elapsed / FRAME, 6)) * int(FRAME * SAMPLE_RATE), total)

        def finished() -> None:
            session.done(200, "200 result=0" + (f" endpos={total}" if report else ""))

        def key(digit: str) -> None:
            if digit in escape:
                timer.cancel()
                session.done(
                    200, f"200 result={ord(digit)}" + (f" endpos={position()}" if report else "")
                )

        def hung_up() -> None:
            timer.cancel()
            session.done(
                -1, "200 result=-1" + (f" endpos={position()}" if report else ""), status="Failure"
            )

        timer = self.later(total / SAMPLE_RATE, finished, owner=channel)
        channel.listener = key
        session.finish = lambda *_: hung_up()
        self.prompt_started(channel, prompt)

    def _get_data(self, session: AgiSession, file: str, timeout_ms: int, maximum: int) -> None:
        channel = session.channel
        typed: list[str] = []
        state: dict[str, Any] = {"timer": None}

        def arm(seconds: float) -> None:
            if state["timer"] is not None and state["timer"].active():
                state["timer"].cancel()
            state["timer"] = self.later(seconds, timed_out, owner=channel)

        def timed_out() -> None:
            session.fast = False
            session.done(200, f"200 result={''.join(typed)} (timeout)")

        def key(digit: str) -> None:
            session.fast = True
            if digit == "#":
                state["timer"].cancel()
                session.done(200, f"200 result={''.join(typed)}")
                return
            typed.append(digit)
            if len(typed) >= maximum:
                state["timer"].cancel()
                session.done(200, f"200 result={''.join(typed)}")
                return
            arm(timeout_ms / 1000)

        def hung_up() -> None:
            if state["timer"] is not None:
                state["timer"].cancel()
            session.done(200, "200 result=-1")

        arm(self.sounds.get(file, 0) / SAMPLE_RATE + timeout_ms / 1000)
        channel.listener = key
        session.finish = lambda *_: hung_up()
        self.prompt_started(channel, file)

    def _wait_for_digit(self, session: AgiSession, timeout_ms: int) -> None:
        channel = session.channel

        def key(digit: str) -> None:
            timer.cancel()
            session.fast = True
            session.done(200, f"200 result={ord(digit)}")

        def hung_up() -> None:
            timer.cancel()
            session.done(200, "200 result=-1")

        def timed_out() -> None:
            session.fast = False
            session.done(200, "200 result=0")

        timer = self.later(timeout_ms / 1000, timed_out, owner=channel)
        channel.listener = key
        session.finish = lambda *_: hung_up()

    def _exec(self, session: AgiSession, application: str, data: str) -> None:
        channel = session.channel
        if application.lower() == "playback":
            exists = data in self.sounds
            channel.variables["PLAYBACKSTATUS"] = "SUCCESS" if exists else "FAILED"
            if not exists:
                session.done(200, "200 result=0")
                return
            self._play_list(session, [data], "", "", data)
        elif application.lower() == "goto":
            parts = data.split(",")
            channel.context, channel.exten = parts[0], parts[1] if len(parts) > 1 else "s"
            channel.priority = int(parts[2]) - 1 if len(parts) > 2 else 0
            session.done(200, "200 result=0")
        else:
            session.done(200, "200 result=-2")

    # -- the dialplan around AGI(), TIMEOUT(absolute) and its T extension --------------------

    def logged_in(self, username: str) -> bool:
        """``AMI_CLIENT(<username>,sessions)`` > 0."""
        return any(s.username == username for s in self.sessions)

    def set_absolute_timeout(self, channel: Channel, seconds: float) -> None:
        """``TIMEOUT(absolute)``: counts from now (wall time, not scaled); 0 clears it."""
        if channel.absolute is not None and channel.absolute.active():
            channel.absolute.cancel()
        channel.absolute = None
        if seconds > 0:
            channel.absolute = self.later(
                seconds, self._absolute_expired, channel, raw=True, owner=channel
            )

    def _absolute_expired(self, channel: Channel) -> None:
        channel.absolute = None
        if not channel.alive:
            return
        agi = channel.agi
        in_agi = agi is not None and not agi.ended
        if agi is not None and agi.running is not None and agi.finish is not None:
            agi.finish("", "", "")  # the command ends with result=-1, as on a hang-up
        if in_agi:
            self.agi_end(channel)
        prompt = self.dialplan.timeout_prompt if channel.context == "hotline" else None
        if prompt is None:
            self.dialplan_hangup(channel)  # no T extension: the channel hangs up
        else:
            self._dialplan_playback(channel, prompt)

    def _after_agi(self, channel: Channel) -> None:
        """The dialplan after AGI() returned with the channel up (ASYNCAGI BREAK, a missing
        file), or at ``unavailable``: a routed call is in ``[hotline-agents]``, with a human;
        otherwise the dialplan's prompt (if any), then ``Hangup()``."""
        if not channel.alive:
            return
        if channel.context == "hotline-agents":
            if self.dialplan.agents_clear_timeout:
                self.set_absolute_timeout(channel, 0)
            return  # Queue(): an agent talks with the caller until someone hangs up
        prompt = self.dialplan.after_agi_prompt
        if prompt is None:
            self.dialplan_hangup(channel)
        else:
            self._dialplan_playback(channel, prompt)

    def _dialplan_playback(self, channel: Channel, prompt: str) -> None:
        """``Playback(prompt)`` then ``Hangup()``, run by the dialplan (no AGI events)."""
        self.dialplan_prompts.append((channel.name, prompt))
        self.later(
            self.sounds.get(prompt, 0) / SAMPLE_RATE, self.dialplan_hangup, channel, owner=channel
        )
        self.prompt_started(channel, prompt)

    # -- endings ----------------------------------------------------------------------------

    def agi_end(self, channel: Channel) -> None:
        agi = channel.agi
        if agi is not None and not agi.ended:
            agi.ended = True
            if agi.poll is not None and agi.poll.active():
                agi.poll.cancel()
            self.emit("AsyncAGIEnd", "agi", channel.snapshot())

    def caller_hangup(self, one: Channel, cause: int) -> None:
        """The caller's half goes away (its application ended, or Action: Hangup)."""
        two = one.peer
        if two is None or not one.alive:
            return
        self.emit("HangupRequest", "call", [*two.snapshot(), ("Cause", str(cause))])
        self._destroy(one, cause)
        agi = two.agi
        if agi is not None and agi.running is not None and agi.finish is not None:
            agi.finish("", "", "")
        self.agi_end(two)
        self.emit("SoftHangupRequest", "call", [*two.snapshot(), ("Cause", "16")])
        self._destroy(two, cause, device_events=False)
        self._device(one, "NOT_INUSE")
        self._device(one, "NOT_INUSE")

    def ivr_hangup(self, two: Channel) -> None:
        """HANGUP from the IVR: the ``;2`` half goes, then its ``;1`` caller."""
        one = two.peer
        self.emit("SoftHangupRequest", "call", [*two.snapshot(), ("Cause", "16")])
        if one is not None and one.bridge is not None:
            self._withheld_teardown(two, one)
            return
        if one is not None:
            self.emit("HangupRequest", "call", [*one.snapshot(), ("Cause", "0")])
        self._destroy(two, 0)
        if one is not None:
            if one.in_dialplan:
                self.emit("SoftHangupRequest", "call", [*one.snapshot(), ("Cause", "16")])
            self._destroy(one, 0)
        self._device(two, "NOT_INUSE")
        self._device(two, "NOT_INUSE")

    def dialplan_hangup(self, two: Channel) -> None:
        """After AsyncAGI ended (BREAK or a missing file): NoOp(), then Hangup() at 5."""
        if not two.alive:
            return
        two.priority = 5
        one = two.peer
        self.emit("SoftHangupRequest", "call", [*two.snapshot(), ("Cause", "16")])
        if one is not None:
            self.emit("HangupRequest", "call", [*one.snapshot(), ("Cause", "16")])
        self._destroy(two, 16)
        if one is not None:
            self._destroy(one, 16)
        self._device(two, "NOT_INUSE")
        self._device(two, "NOT_INUSE")

    def _destroy(self, channel: Channel, cause: int, device_events: bool = False) -> None:
        if not channel.alive:
            return
        channel.alive = False
        for timer in channel.timers:
            if timer.active():
                timer.cancel()
        channel.listener = None
        self.emit(
            "Hangup",
            "call",
            [
                *channel.snapshot(),
                ("Cause", str(cause)),
                ("Cause-txt", CAUSE_TEXT.get(cause, "Unknown")),
            ],
        )
        self.channels.pop(channel.name, None)
        self.hangups += 1

    def _device(self, channel: Channel, state: str) -> None:
        self.emit("DeviceStateChange", "call", [("Device", channel.device), ("State", state)])

    def hangup_action(self, session: AmiSession, message: ami.Message) -> None:
        channel = self.channels.get(message.get("Channel") or "")
        if channel is None:
            session.respond(message.action_id, "Error", "No such channel")
            return
        session.respond(message.action_id, "Success", "Channel Hungup")
        cause = int(message.get("Cause") or "16")
        if channel.name.endswith(";1"):
            self.caller_hangup(channel, cause)
        elif channel.peer is not None:
            self.caller_hangup(channel.peer, cause)

    def agi_action(self, session: AmiSession, message: ami.Message) -> None:
        name = message.get("Channel") or ""
        channel = self.channels.get(name)
        if channel is None:
            session.respond(message.action_id, "Error", f"Channel {name} does not exist.")
            return
        if channel.agi is None:
            session.respond(
                message.action_id, "Error", f"Failed to add AGI command to channel {name} queue"
            )
            return
        session.respond(message.action_id, "Success", "Added AGI command to queue")
        channel.agi.add(Command(message.get("CommandID") or "", message.get("Command") or ""))

    # -- [caller-sim] withheld: Set(CALLERID(num-pres)=prohib_passed_screen), Dial(hotline) ---

    def _withheld(self, sim_two: Channel, answered: Callable[[], None]) -> None:
        sim_two.priority = 3
        sim_one = sim_two.peer
        assert sim_one is not None
        one, two = self.local_pair("19009068", "hotline", sim_two.linkedid)
        one.cid_num, one.exten = "withheld", "withheld"
        one.conn_num = sim_two.cid_num
        one.pres = 0
        self.emit(
            "NewCallerid",
            "call",
            [*one.snapshot(), ("CID-CallingPres", f"0 ({PRESENTATION_TEXT[0]})")],
        )
        self.emit("NewConnectedLine", "call", one.snapshot())
        two.cid_num, two.conn_num, two.pres = sim_two.cid_num, "withheld", 33
        self.emit(
            "NewCallerid",
            "call",
            [*two.snapshot(), ("CID-CallingPres", f"33 ({PRESENTATION_TEXT[33]})")],
        )
        self.emit("NewConnectedLine", "call", two.snapshot())
        self.local_bridge(one, two)
        self.emit(
            "DialBegin",
            "call",
            sim_two.snapshot() + one.snapshot("Dest") + [("DialString", "19009068@hotline")],
        )
        self._answer_pair(one, two)
        self._device(one, "INUSE")
        self._device(one, "INUSE")
        one.exten = ""
        self.emit(
            "DialEnd",
            "call",
            sim_two.snapshot() + one.snapshot("Dest") + [("DialStatus", "ANSWER")],
        )
        assert sim_two.peer is not None
        self._answer_pair(sim_two.peer, sim_two)
        answered()
        bridge = Bridge(str(uuid.UUID(int=self.rng.getrandbits(128), version=4)))
        self.emit("BridgeCreate", "call", bridge.headers())
        for member in (one, sim_two):
            bridge.members.append(member)
            member.bridge = bridge
            self.emit("BridgeEnter", "call", bridge.headers() + member.snapshot())
        one.dial_peer = sim_two
        self._dialplan(two)

    def _withheld_teardown(self, two: Channel, one: Channel) -> None:
        bridge = one.bridge
        assert bridge is not None
        sim_two = one.dial_peer
        self.emit("HangupRequest", "call", [*one.snapshot(), ("Cause", "0")])
        self._destroy(two, 0)
        for member, cause in ((one, 16), (sim_two, 16)):
            if member is None:
                continue
            bridge.members.remove(member)
            self.emit("BridgeLeave", "call", bridge.headers() + member.snapshot())
            if member is one:
                self._destroy(one, cause)
        assert sim_two is not None and sim_two.peer is not None
        self.emit("SoftHangupRequest", "call", [*sim_two.snapshot(), ("Cause", "16")])
        self.emit("HangupRequest", "call", [*sim_two.peer.snapshot(), ("Cause", "16")])
        self.emit("BridgeDestroy", "call", bridge.headers())
        self._device(two, "NOT_INUSE")
        self._destroy(sim_two, 16)
        self._destroy(sim_two.peer, 16)
        self._device(two, "NOT_INUSE")
        self._device(sim_two, "NOT_INUSE")
        self._device(sim_two, "NOT_INUSE")


class AmiSession(Protocol):
    """One AMI connection to the stand-in."""

    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx
        self.decoder = ami.Decoder(expect_banner=False)
        self.user: User | None = None
        self.username = ""
        self.events: frozenset[str] = frozenset()
        self.closing = False
        self.received: list[ami.Message] = []

    def connectionMade(self) -> None:  # noqa: N802
        self.pbx.sessions.append(self)
        self.transport.write(BANNER)  # type: ignore[union-attr]

    def connectionLost(self, reason: Any = None) -> None:  # noqa: N802
        if self in self.pbx.sessions:
            self.pbx.sessions.remove(self)

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        for item in self.decoder.feed(data):
            if isinstance(item, ami.Message) and not self.closing:
                self.received.append(item)
                self.action(item)

    def respond(
        self, action_id: str | None, response: str, message: str, *extra: tuple[str, str]
    ) -> None:
        headers = [("Response", response)]
        if action_id is not None:
            headers.append(("ActionID", action_id))
        headers.append(("Message", message))
        self.write(ami.encode([*headers, *extra]))

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closing:
            self.transport.write(data)

    def event(self, klass: str, data: bytes) -> None:
        if (
            self.user is not None
            and klass in self.user.read
            and klass in self.events
            and self.user.passes(data)
        ):
            self.write(data)

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.loseConnection()

    def action(self, message: ami.Message) -> None:
        name = (message.action or "").lower()
        action_id = message.action_id
        if name == "login":
            self.login(message)
            return
        if self.user is None:
            self.respond(action_id, "Error", "Permission denied")
            return
        needs = {
            "originate": "originate",
            "agi": "agi",
            "playdtmf": "call",
            "hangup": "system",
            "events": "",
            "ping": "",
            "logoff": "",
        }
        if name not in needs:
            self.respond(action_id, "Error", "Invalid/unknown command")
            return
        need = needs[name]
        if name == "hangup":
            if not {"system", "call"} & self.user.write:
                self.respond(action_id, "Error", "Permission denied")
                return
        elif need and need not in self.user.write:
            self.respond(action_id, "Error", "Permission denied")
            return
        if name == "ping":
            stamp = f"{self.pbx.now():.6f}"
            self.write(
                ami.encode(
                    [
                        ("Response", "Success"),
                        *_action_id(action_id),
                        ("Ping", "Pong"),
                        ("Timestamp", stamp),
                    ]
                )
            )
        elif name == "logoff":
            self.respond(action_id, "Goodbye", "Thanks for all the fish.")
            self.close()
        elif name == "events":
            self.events = _event_mask(message.get("EventMask") or "on", self.user)
            state = "On" if self.events else "Off"
            self.write(
                ami.encode([("Response", "Success"), *_action_id(action_id), ("Events", state)])
            )
        elif name == "originate":
            self.respond(action_id, "Success", "Originate successfully queued")
            self.pbx.originate(self, message)
        elif name == "agi":
            self.pbx.agi_action(self, message)
        elif name == "playdtmf":
            self.pbx.play_dtmf(self, message)
        elif name == "hangup":
            self.pbx.hangup_action(self, message)

    def login(self, message: ami.Message) -> None:
        account = self.pbx.users.get(message.get("Username") or "")
        secret = message.get("Secret") or ""
        if account is None or account.secret != secret:

            def refuse() -> None:
                self.respond(message.action_id, "Error", "Authentication failed")
                self.close()

            self.pbx.later(self.pbx.timing.login_failure, refuse, raw=True)
            return
        self.user = account
        self.username = message.get("Username") or ""
        self.events = _event_mask(message.get("Events") or "on", account)
        self.respond(message.action_id, "Success", "Authentication accepted")
        if "system" in self.events:
            uptime = str(int(self.pbx.now()) + 4)
            self.event(
                "system",
                ami.encode(
                    [
                        ("Event", "FullyBooted"),
                        ("Privilege", "system,all"),
                        ("Uptime", uptime),
                        ("LastReload", uptime),
                        ("Status", "Fully Booted"),
                    ]
                ),
            )


class AsteriskStandIn(Factory):
    """Listening factory: ``reactor.listenTCP(0, AsteriskStandIn(pbx))``."""

    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx

    def buildProtocol(self, addr: Any) -> AmiSession:  # noqa: N802
        return AmiSession(self.pbx)


def advance_to(clock: Any, target: float) -> None:
    """Move a ``task.Clock`` to ``target`` one scheduled call at a time, so that each call
    runs at its own time (``Clock.advance`` alone runs them all at the final time)."""
    while True:
        pending = [c.getTime() for c in clock.getDelayedCalls() if c.active()]
        due = min((t for t in pending if t <= target), default=None)
        if due is None:
            break
        clock.advance(max(due - clock.seconds(), 0.0))
    if target > clock.seconds():
        clock.advance(target - clock.seconds())


def run_for(clock: Any, seconds: float) -> None:
    advance_to(clock, clock.seconds() + seconds)


def _action_id(action_id: str | None) -> list[tuple[str, str]]:
    return [] if action_id is None else [("ActionID", action_id)]


def _event_mask(text: str, account: User) -> frozenset[str]:
    lowered = text.strip().lower()
    if lowered in ("on", "yes", "true", "all"):
        return frozenset(CLASSES)
    if lowered in ("off", "no", "false", ""):
        return frozenset()
    return frozenset(p.strip() for p in lowered.split(","))


def _parse_callerid(text: str | None) -> tuple[str | None, str | None]:
    if text is None:
        return None, None
    name, _, rest = text.partition("<")
    number = rest.rstrip(">").strip()
    name = name.strip().strip('"')
    return number, name or None


def _split_arguments(text: str) -> list[str]:
    """Asterisk's AGI argument splitting: spaces separate, double quotes group."""
    out: list[str] = []
    current: list[str] = []
    quoted = escaped = had = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
            had = True
        elif char == " " and not quoted:
            if current or had:
                out.append("".join(current))
            current, had = [], False
        else:
            current.append(char)
    if current or had:
        out.append("".join(current))
    return out


def _agi_env(two: Channel, rng: random.Random) -> str:
    callerid = "unknown" if two.cid_num == "<unknown>" else two.cid_num
    name = "unknown" if two.cid_name == "<unknown>" else two.cid_name
    lines = [
        ("agi_request", "async"),
        ("agi_channel", two.name),
        ("agi_language", two.language),
        ("agi_type", "Local"),
        ("agi_uniqueid", two.uniqueid),
        ("agi_version", ASTERISK_VERSION),
        ("agi_callerid", callerid),
        ("agi_calleridname", name),
        ("agi_callingpres", str(two.pres)),
        ("agi_callingani2", "0"),
        ("agi_callington", "0"),
        ("agi_callingtns", "0"),
        ("agi_dnid", "unknown"),
        ("agi_rdnis", "unknown"),
        ("agi_context", two.context),
        ("agi_extension", two.exten),
        ("agi_priority", str(two.priority)),
        ("agi_enhanced", "0.0"),
        ("agi_accountcode", ""),
        ("agi_threadid", str(140652140000000 + rng.randrange(10**6))),
    ]
    text = "".join(f"{k}: {v}\n" for k, v in lines) + "\n"
    return quote(text, safe="-_.!~*'()")


# Prompts of the service's own dialog (ivr.dialog), in samples at 8 kHz, for dialog tests.
SERVICE_SOUNDS: dict[str, int] = {
    **{f"vssid/{name}": 16000 for name in PromptTexts.names()},
    **{f"digits/{d}": 4000 for d in "0123456789"},
}


class Loop:
    """The AMI client connected to the stand-in in memory, both on one ``Clock``."""

    def __init__(self, pbx: Pbx, client_factory: Any) -> None:
        self.pbx = pbx
        self.clock = pbx.clock
        self.server = AsteriskStandIn(pbx).buildProtocol(None)
        self.client = client_factory.buildProtocol(None)
        self.pump = iosim.connect(
            self.server,
            iosim.makeFakeServer(self.server),
            self.client,
            iosim.makeFakeClient(self.client),
            greet=True,
        )

    def run_until(self, done: Callable[[], bool], limit: float = 900.0) -> None:
        """Run both sides, scheduled call by scheduled call, until ``done()``."""
        end = self.clock.seconds() + limit
        while True:
            self.pump.flush()
            if done():
                return
            pending = [c.getTime() for c in self.clock.getDelayedCalls() if c.active()]
            if not pending or min(pending) > end:
                raise AssertionError("nothing left to run and the condition is still false")
            self.clock.advance(max(min(pending) - self.clock.seconds(), 0.0))

    def commands(self) -> list[str]:
        """Every AGI command line the client sent."""
        return [m.get("Command") or "" for m in self.server.received if m.action == "AGI"]
