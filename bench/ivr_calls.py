"""N simultaneous hotline calls through the Asterisk stand-in on loopback; prints one JSON line.

    .venv/bin/python bench/ivr_calls.py --calls 200

Every call takes the successful path (menu, key 8, the 10-digit code, a reset, the password
twice, goodbye). The stand-in plays Asterisk in a separate process (as Asterisk is), with its
media time scaled (``--scale``) and the calls arriving over ``--ramp`` seconds, so that all of
them are in progress at once while this process runs the real AMI client and dialog.
Reported:

* ``calls_per_second``: completed calls over the wall time from the first call to the last;
* ``reactor_lag_ms_p50/p99``: lateness of a 10 ms LoopingCall while the calls run;
* ``agi_added_by_us_ms_p50/p99``: from the bytes of an ``AsyncAGIExec`` result arriving in
  our process to our next ``Action: AGI`` for that call being written (parsing, the dialog
  step, encoding, and waiting behind the other calls' work): what our side adds;
* ``agi_roundtrip_ms_p50/p99``: the same gap as the stand-in sees it (plus two loopback hops
  and the stand-in's own work for other calls, on the same 2 cores);
* ``prompt_seconds_success``: seconds of prompt a successful caller hears (rendered WAV
  lengths, the whole menu counted), and what that costs at 1,000 VND per started minute.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import defer, reactor, task, threads
from twisted.internet.endpoints import clientFromString

from commands.ports import Outcome
from commands.replies import Reply
from commands.reset import ResetRequest, ResetResult
from commands.secret import Secret
from ivr import link, prompts
from ivr.client import AmiClientFactory, AmiProtocol
from ivr.dialog import handle_call
from ivr.records import CallOutcome, CallRecord
from ivr.settings import IvrSettings
from tests.support import asterisk_standin as standin

PASSWORD_DIGITS = 8


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)]


def successful_path_seconds(durations: dict[str, float]) -> float:
    digits = statistics.mean(durations[f"digits/{d}"] for d in range(10))
    names = ("menu", "enter-code", "new-password", "repeat", "goodbye")
    return sum(durations[f"vssid/{n}"] for n in names) + 2 * PASSWORD_DIGITS * digits


class Measured(standin.Pbx):
    """The stand-in, timing each result-to-next-command gap per channel."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.result_at: dict[str, float] = {}
        self.gaps: list[float] = []

    def emit(self, name: str, klass: str, headers: Any) -> None:
        headers = list(headers)
        if name == "AsyncAGIExec":
            self.result_at[headers[0][1]] = time.perf_counter()
        super().emit(name, klass, headers)

    def agi_action(self, session: Any, message: Any) -> None:
        sent = self.result_at.pop(message.get("Channel") or "", None)
        if sent is not None:
            self.gaps.append(time.perf_counter() - sent)
        super().agi_action(session, message)


async def serve(calls: int, scale: float, ramp: float, sounds: Path) -> None:
    """The Asterisk side (child process): prints its port, then the AGI gaps as JSON."""
    durations = prompts.durations(sounds, "vi")
    table = {name: int(seconds * 8000) for name, seconds in durations.items()}
    timing = standin.Timing(
        agi_poll=0.0, answer=0.0, login_failure=0.01, dialplan_step=0.0, scale=scale
    )
    pbx = Measured(reactor, timing=timing, sounds=table, users={"vssid": standin.SERVICE_USER})
    port = reactor.listenTCP(0, standin.AsteriskStandIn(pbx), interface="127.0.0.1", backlog=50)  # type: ignore[attr-defined]
    print(port.getHost().port, flush=True)
    while not pbx.sessions or pbx.sessions[0].user is None:
        await task.deferLater(reactor, 0.01, lambda: None)
    await task.deferLater(reactor, 0.2, lambda: None)
    script = [
        standin.Press("8", on="vssid/menu"),
        standin.Press("0123456789", on="vssid/enter-code"),
    ]
    for n in range(calls):
        reactor.callLater(ramp * n / calls, pbx.place_call, f"0912{n:06d}", script=list(script))  # type: ignore[attr-defined]
    while pbx.hangups < 2 * calls:
        await task.deferLater(reactor, 0.05, lambda: None)
    print(
        json.dumps(
            {
                "p50": percentile(pbx.gaps, 0.5),
                "p99": percentile(pbx.gaps, 0.99),
                "count": len(pbx.gaps),
            }
        ),
        flush=True,
    )


def instrument_our_side() -> list[float]:
    """Time from the bytes of an AGI result arriving in our process to our next command for
    that channel being written: parsing, the dialog step and encoding, queueing included."""
    gaps: list[float] = []
    arrived: dict[str, float] = {}
    chunk_at = [0.0]
    data_received, apply, send_raw = (
        AmiProtocol.dataReceived,
        AmiProtocol._apply,
        AmiProtocol.send_raw,
    )

    def timed_data(self: AmiProtocol, data: bytes) -> None:
        chunk_at[0] = time.perf_counter()
        data_received(self, data)

    def timed_apply(self: AmiProtocol, effects: list[link.Effect]) -> None:
        for effect in effects:
            if isinstance(effect, link.CommandDone):
                arrived[effect.key[0]] = chunk_at[0]
        apply(self, effects)

    def timed_send(self: AmiProtocol, data: bytes) -> None:
        found = re.search(rb"Channel: ([^\r]+)\r\nCommand", data)
        if found is not None:
            at = arrived.pop(found[1].decode(), None)
            if at is not None:
                gaps.append(time.perf_counter() - at)
        send_raw(self, data)

    AmiProtocol.dataReceived = timed_data  # type: ignore[method-assign]
    AmiProtocol._apply = timed_apply  # type: ignore[method-assign]
    AmiProtocol.send_raw = timed_send  # type: ignore[method-assign]
    return gaps


async def drive(calls: int, scale: float, ramp: float, sounds: Path) -> dict[str, Any]:
    """The service side (this process): the real AMI client, dialog and call log."""
    child = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            "--calls",
            str(calls),
            "--scale",
            str(scale),
            "--ramp",
            str(ramp),
            "--sounds",
            str(sounds),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    ami_port = int(child.stdout.readline())
    settings = IvrSettings(
        enabled=True,
        ami=f"tcp:127.0.0.1:{ami_port}",
        secret=Secret("secret"),
        sounds_dir=str(sounds),
    )
    records: list[CallRecord] = []
    finished: defer.Deferred[None] = defer.Deferred()
    first: list[float] = []

    class Log:
        def record(self, call: CallRecord) -> None:
            records.append(call)
            if len(records) == calls:
                finished.callback(None)

    async def reset(request: ResetRequest) -> ResetResult:
        if not first:
            first.append(time.perf_counter())
        return ResetResult(Outcome.RESET, Reply("reset_ok"), password=Secret("48291750"))

    ours = instrument_our_side()
    factory = AmiClientFactory(settings, lambda c: handle_call(c, reset, settings, Log()), reactor)
    service = ClientService(
        clientFromString(reactor, settings.ami),
        factory,
        retryPolicy=backoffPolicy(initialDelay=0.05),
    )
    service.startService()
    lags: list[float] = []
    expected = [time.perf_counter() + 0.01]

    def tick() -> None:
        now = time.perf_counter()
        lags.append(max(now - expected[0], 0.0))
        expected[0] = now + 0.01

    ticker = task.LoopingCall(tick)
    ticker.start(0.01, now=False)
    while factory.connected is None:
        await task.deferLater(reactor, 0.01, lambda: None)
    started = time.perf_counter()
    concurrent = 0

    def sample() -> None:
        nonlocal concurrent
        if factory.connected is not None:
            concurrent = max(concurrent, len(factory.connected.calls))

    sampler = task.LoopingCall(sample)
    sampler.start(0.05)
    await finished.addTimeout(600, reactor)
    elapsed = time.perf_counter() - started
    ticker.stop()
    sampler.stop()
    out, _ = await threads.deferToThread(child.communicate)
    gaps = json.loads(out.strip().splitlines()[-1])
    await service.stopService()
    durations = prompts.durations(sounds, "vi")
    listened = successful_path_seconds(durations)
    return {
        "benchmark": "ivr_calls",
        "calls": calls,
        "completed_ok": sum(r.outcome is CallOutcome.RESET for r in records),
        "max_concurrent_calls": concurrent,
        "media_scale": scale,
        "ramp_seconds": ramp,
        "seconds": round(elapsed, 3),
        "calls_per_second": round(calls / elapsed, 1),
        "reactor_lag_ms_p50": round(percentile(lags, 0.50) * 1000, 2),
        "reactor_lag_ms_p99": round(percentile(lags, 0.99) * 1000, 2),
        "agi_added_by_us_ms_p50": round(percentile(ours, 0.50) * 1000, 3),
        "agi_added_by_us_ms_p99": round(percentile(ours, 0.99) * 1000, 3),
        "agi_roundtrip_ms_p50": round(gaps["p50"] * 1000, 3),
        "agi_roundtrip_ms_p99": round(gaps["p99"] * 1000, 3),
        "agi_commands": gaps["count"],
        "prompt_seconds_success": round(listened, 1),
        "cost_vnd_success": 1000 * math.ceil(listened / 60),
    }


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--scale", type=float, default=0.05, help="stand-in media time scale")
    parser.add_argument("--sounds", default=None, help="rendered prompts (default: espeak-ng now)")
    parser.add_argument("--ramp", type=float, default=1.0, help="seconds over which calls arrive")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        task.react(
            lambda _r: defer.ensureDeferred(
                serve(args.calls, args.scale, args.ramp, Path(args.sounds))
            )
        )
    with tempfile.TemporaryDirectory() as scratch:
        sounds = Path(args.sounds) if args.sounds else Path(scratch)
        if not args.sounds:
            settings = IvrSettings(sounds_dir=str(sounds))
            prompts.build(
                prompts.prompt_texts(settings), sounds, "vi", prompts.espeak_engine(), "espeak"
            )

        async def go() -> None:
            result = await drive(args.calls, args.scale, args.ramp, sounds)
            print(json.dumps(result), flush=True)

        task.react(lambda _reactor: defer.ensureDeferred(go()))  # exits the process


if __name__ == "__main__":
    run()
