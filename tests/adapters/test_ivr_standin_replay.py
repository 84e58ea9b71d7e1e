"""The Asterisk stand-in reproduces every recorded transcript of a real Asterisk 22.

For each scenario in ``tests/fixtures/ami``, the client's messages are fed to the stand-in at
their recorded times (on a ``Clock``); what it answers must be the recorded server stream:
the same messages, byte for byte, once opaque values are normalised (channel suffixes, unique
ids, Asterisk's internal command ids, thread ids, uptimes, bridge ids, and the ``endpos`` of a
prompt cut short, which is a time measurement). Each channel's events must come in the
recorded order, and so must the responses; only the interleaving of *different* channels may
differ, by a few places, because Asterisk publishes them from different threads and two
recordings of the same call interleave them differently.
"""

from __future__ import annotations

import collections
import difflib
import re
from dataclasses import dataclass

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from ivr import ami
from tests.fixtures import AMI as FIXTURES
from tests.support.asterisk_standin import (
    FIXTURE_USER,
    AsteriskStandIn,
    Pbx,
    Timing,
    advance_to,
    run_for,
)

SCENARIOS = sorted(p.name.removesuffix(".txt") for p in FIXTURES.glob("*.txt"))
MAX_DISPLACEMENT = 8


@dataclass(frozen=True)
class Line:
    outgoing: bool  # client -> Asterisk
    time: float
    data: bytes


def _unescape(text: str) -> bytes:
    escapes = {b"r": b"\r", b"n": b"\n", b"t": b"\t", b"\\": b"\\"}
    return re.sub(
        rb"\\(x[0-9a-f]{2}|.)",
        lambda m: escapes.get(m.group(1)) or bytes([int(m.group(1)[1:], 16)]),
        text.encode("utf-8"),
    )


def transcript(name: str) -> list[Line]:
    """The messages of a ``.txt`` transcript, each with the time it started."""
    messages: list[Line] = []
    current: list[bytes] = []
    time = 0.0
    for row in (FIXTURES / f"{name}.txt").read_text(encoding="utf-8").split("\n"):
        if row.startswith("## +"):
            time = float(row[4:-1])
        elif row.startswith((">> ", "<< ")):
            data = _unescape(row[3:])
            current.append(data)
            if data == b"\r\n" or data.startswith(b"Asterisk Call Manager/"):
                messages.append(Line(row.startswith(">>"), time, b"".join(current)))
                current = []
    return messages


def replay(name: str) -> tuple[bytes, StringTransport]:
    clock = Clock()
    recorded = (FIXTURES / f"{name}.s2c.raw").read_bytes()
    first = re.search(rb"Event: Newchannel\r\n[^\r]*\r\nChannel: [^\r]*-([0-9a-f]{8});", recorded)
    # The client's messages name Asterisk's channels: number ours the same way.
    pbx = Pbx(
        clock,
        timing=Timing(),
        users={"vssid": FIXTURE_USER},
        first_local=int(first[1], 16) if first else 0,
    )
    session = AsteriskStandIn(pbx).buildProtocol(None)
    transport = StringTransport()
    lines = transcript(name)
    clock.advance(lines[0].time)
    session.makeConnection(transport)
    expected_so_far = 0
    counter = ami.Decoder()
    received = 0
    seen = 0

    def count() -> int:
        nonlocal received, seen
        value = transport.value()
        received += len(counter.feed(value[seen:]))
        seen = len(value)
        return received

    for line in lines:
        if not line.outgoing:
            expected_so_far += 1
            continue
        advance_to(clock, line.time)
        for _ in range(2000):  # the model may be a few ms slower than the recording
            if count() >= expected_so_far:
                break
            run_for(clock, 0.001)
        session.dataReceived(line.data)
    run_for(clock, 10.0)
    return transport.value(), transport


class Normaliser:
    """Replaces opaque values by their order of first appearance in one stream."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, str]] = collections.defaultdict(dict)

    def _ordinal(self, kind: str, value: str) -> str:
        table = self.seen[kind]
        return table.setdefault(value, f"<{kind}{len(table) + 1}>")

    def __call__(self, text: str) -> str:
        text = re.sub(r"-([0-9a-f]{8})(?=;|%3B)", lambda m: "-" + self._ordinal("L", m[1]), text)
        text = re.sub(
            r"(?:(?<=%20)|(?<![\d.]))(1\d{9}\.\d+)\b", lambda m: self._ordinal("U", m[1]), text
        )
        text = re.sub(
            r"\b([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b",
            lambda m: self._ordinal("B", m[1]),
            text,
        )
        text = re.sub(r"(CommandId: )\d+\r\n", r"\1<internal>\r\n", text)
        text = re.sub(r"agi_threadid%3A%20\d+", "agi_threadid%3A%20<thread>", text)
        text = re.sub(r"(Uptime|LastReload|Timestamp): [\d.]+", r"\1: <time>", text)
        return re.sub(
            r"result%3D(-?\d+)%20endpos%3D(\d+)",
            lambda m: m[0] if m[1] == "0" or m[2] == "0" else f"result%3D{m[1]}%20endpos%3D<cut>",
            text,
        )


def messages(stream: bytes) -> list[str]:
    normalise = Normaliser()
    out = []
    for item in ami.decode_all(stream):
        raw = (item.text + "\r\n") if isinstance(item, ami.Banner) else item.encode().decode()
        out.append(normalise(raw))
    return out


def source(message: str) -> str:
    """Which Asterisk thread orders this message relative to others."""
    headers = dict(line.split(": ", 1) for line in message.split("\r\n")[:12] if ": " in line)
    event = headers.get("Event", "")
    if event == "OriginateResponse":
        return "originate " + headers.get("ActionID", "")
    if "Response" in headers or "Asterisk Call Manager" in message:
        return "responses"
    for key in ("Channel", "DestChannel", "LocalOneChannel", "BridgeUniqueid", "Device"):
        if key in headers:
            return headers[key]
    return event


def summary(message: str) -> str:
    first = message.split("\r\n", 1)[0]
    return f"{first} [{source(message)}]"


@pytest.mark.parametrize("name", SCENARIOS)
def test_standin_reproduces_the_recorded_asterisk_stream(name: str) -> None:
    ours, _ = replay(name)
    theirs = (FIXTURES / f"{name}.s2c.raw").read_bytes()
    got, want = messages(ours), messages(theirs)

    if collections.Counter(got) != collections.Counter(want):
        diff = "\n".join(
            difflib.unified_diff(
                [summary(m) for m in want],
                [summary(m) for m in got],
                "asterisk",
                "stand-in",
                lineterm="",
                n=2,
            )
        )
        missing = collections.Counter(want) - collections.Counter(got)
        extra = collections.Counter(got) - collections.Counter(want)
        diff += (
            "\nMISSING:\n" + "".join(list(missing)[:2]) + "\nEXTRA:\n" + "".join(list(extra)[:2])
        )
        pytest.fail(f"{name}: messages differ\n{diff[:20000]}")
    for key in {source(m) for m in want}:
        assert [m for m in got if source(m) == key] == [m for m in want if source(m) == key], (
            f"{name}: order differs for {key}"
        )
    positions: dict[str, collections.deque[int]] = collections.defaultdict(collections.deque)
    for index, message in enumerate(got):
        positions[message].append(index)
    displacement = max(abs(positions[m].popleft() - i) for i, m in enumerate(want))
    assert displacement <= MAX_DISPLACEMENT, "\n".join(map(summary, got))


def test_standin_closes_the_socket_after_a_refused_login_and_after_logoff() -> None:
    _, refused = replay("wrong-password")
    _, logged_off = replay("happy-path")
    assert refused.disconnecting and logged_off.disconnecting


def test_every_transcript_is_replayed() -> None:
    assert len(SCENARIOS) == 12
