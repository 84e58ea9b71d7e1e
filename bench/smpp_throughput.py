"""Benchmark: SMS through the SMPP listener, next to a minimal responder; prints one JSON line.

    .venv/bin/python bench/smpp_throughput.py --mix mismatch             # the pure gateway path
    .venv/bin/python bench/smpp_throughput.py --mix reset --messages 600 # limited by Argon2
    .venv/bin/python bench/smpp_throughput.py --rate 1000 --messages 10000  # latency, paced

Starts ``vssid-gateway run`` as a subprocess on a fresh database (SQLite in a temporary folder
by default) holding synthetic accounts, binds ``--connections`` transceivers with ``--window``
outstanding submit_sm each (:mod:`bench.esme_async`), sends ``--messages`` messages, each
from its own number, and waits for every acknowledgement and every reply. Then, with the same
client and settings, the same against :mod:`bench.minimal_responder` (answers and replies,
stores nothing). Every MO and reply on the gateway side is durably stored (SQLite WAL with
``synchronous=FULL``), with the production Argon2 cost unless ``--fast-argon2``.

``--mix mismatch``: every message names another citizen's code (no Argon2; the gateway's own
cost). ``--mix reset``: every message is a valid reset; compared with raw Argon2id hashes per
second on as many threads as there are CPUs, measured in the same run.

Rates are messages over the time from the first submission to the last acknowledgement (or
reply); latencies are per message, from its (last) submission to its acknowledgement and to its
reply. CPU is user + system time of each server process (all threads) over the measured run,
from /proc, and of this client.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.esme_async import Client, Message, Run
from bench.synthetic import code, phone
from gateway.config import ResetSettings
from tests.support.processes import (
    PEER,
    PEER_PASSWORD,
    GatewayConfig,
    GatewayProcess,
    cpu_seconds,
    free_port,
    prepare_database,
    scratch_postgresql,
)

MISMATCH = "So dien thoai va ma so BHXH khong khop"
RESET_OK = "Cap lai mat khau thanh cong"


def international(index: int) -> str:
    return "84" + phone(index)[1:]


def messages(mix: str, start: int, count: int, accounts: int) -> list[Message]:
    """Each from its own number: its own code (a reset) or the next citizen's (a mismatch)."""
    if mix == "reset":
        return [Message(international(i), f"BH MK {code(i)}") for i in range(start, start + count)]
    return [
        Message(international(i), f"BH MK {code((i + 1) % accounts)}")
        for i in range(start, start + count)
    ]


def percentiles(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}

    def at(fraction: float) -> float:
        return round(ordered[min(int(fraction * len(ordered)), len(ordered) - 1)] * 1000, 2)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": at(1.0)}


def summarise(run: Run, cpu: float, client_cpu: float, expected: str) -> dict[str, Any]:
    records = run.records
    first = min(r.sent_at for r in records)
    last_ack = max(r.acked_at for r in records)
    last_reply = max(r.replied_at for r in records)
    count = len(records)
    elapsed = last_reply - first
    return {
        "mo_acknowledged_per_s": round(count / (last_ack - first), 1),
        "replies_per_s": round(count / elapsed, 1),
        "ack_latency_ms": percentiles([r.acked_at - r.sent_at for r in records]),
        "reply_latency_ms": percentiles([r.replied_at - r.sent_at for r in records]),
        "errors": dict(run.errors),
        "retried_messages": sum(1 for r in records if r.attempts > 1),
        "unexpected_replies": sum(1 for r in records if not r.reply.startswith(expected)),
        "extra_replies": run.extra_replies,
        "elapsed_s": round(elapsed, 3),
        "server_cpu_s": round(cpu, 2),
        "server_cores_busy": round(cpu / elapsed, 2),
        "client_cores_busy": round(client_cpu / elapsed, 2),
    }


async def drive(
    port: int,
    args: argparse.Namespace,
    warm_up: list[Message],
    measured: list[Message],
    server_cpu: Callable[[], float],
) -> tuple[Run, float, float]:
    client = Client(
        "127.0.0.1",
        port,
        connections=args.connections,
        window=args.window,
        system_id=PEER,
        password=PEER_PASSWORD,
        retry_delay=args.retry_delay,
    )
    await client.connect()
    try:
        if warm_up:
            await client.send(warm_up, args.timeout)
        cpu_before, client_before = server_cpu(), time.process_time()
        run = await client.send(measured, args.timeout, rate=args.rate)
        cpu, client_cpu = server_cpu() - cpu_before, time.process_time() - client_before
    finally:
        await client.close()
    return run, cpu, client_cpu


def measure_gateway(
    url: str,
    folder: Path,
    args: argparse.Namespace,
    warm_up: list[Message],
    measured: list[Message],
) -> dict[str, Any]:
    config = GatewayConfig(
        url,
        free_port(),
        instance="bench",
        window=args.window,
        max_binds=args.connections,
        pool_size=args.pool_size,
        argon2=(8192, 1) if args.fast_argon2 else None,
        inbound_queue_limit=args.queue_limit,
    )
    gateway = GatewayProcess(config, folder)
    gateway.start()
    try:
        if args.profile:  # py-spy: where the GIL holder is, over the measured run
            output = "speedscope" if args.profile.endswith(".json") else "flamegraph"
            py_spy = str(Path(sys.executable).with_name("py-spy"))
            sampling = ["--pid", str(gateway.pid), "--rate", "250", "--threads", "--gil"]
            profiler = subprocess.Popen(
                [py_spy, "record", *sampling, "--format", output, "--output", args.profile],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        run, cpu, client_cpu = asyncio.run(
            drive(gateway.port, args, warm_up, measured, gateway.cpu_seconds)
        )
        if args.profile:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(60)
    finally:
        gateway.stop()
    expected = RESET_OK if args.mix == "reset" else MISMATCH
    return summarise(run, cpu, client_cpu, expected)


def measure_minimal(
    args: argparse.Namespace, warm_up: list[Message], measured: list[Message]
) -> dict[str, Any]:
    port = free_port()
    script = Path(__file__).with_name("minimal_responder.py")
    responder = subprocess.Popen(
        [sys.executable, str(script), "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert responder.stdout is not None
        line = responder.stdout.readline()
        assert line.startswith("listening"), line
        run, cpu, client_cpu = asyncio.run(
            drive(port, args, warm_up, measured, lambda: cpu_seconds(responder.pid))
        )
    finally:
        responder.kill()
        responder.wait(10)
        if responder.stdout is not None:
            responder.stdout.close()
    return summarise(run, cpu, client_cpu, "Cap lai mat khau")


def raw_argon2_rate(settings: ResetSettings, hashes: int) -> float:
    from bench.reset_rate import raw_argon2_rate as measure  # noqa: PLC0415 - only for --mix reset

    return measure(settings, hashes)


def run(args: argparse.Namespace) -> dict[str, Any]:
    accounts = max(args.accounts, args.messages + args.warm_up)  # every sender has one
    warm_up = messages(args.mix, args.messages, args.warm_up, accounts)
    measured = messages(args.mix, 0, args.messages, accounts)
    with tempfile.TemporaryDirectory(prefix="vssid-bench-") as temporary:
        folder = Path(temporary)
        if args.database == "postgresql":
            with scratch_postgresql() as url:
                prepare_database(url, ((code(i), phone(i)) for i in range(accounts)))
                gateway = measure_gateway(url, folder, args, warm_up, measured)
        else:
            url = f"sqlite:///{folder / 'bench.db'}"
            prepare_database(url, ((code(i), phone(i)) for i in range(accounts)))
            gateway = measure_gateway(url, folder, args, warm_up, measured)
    result: dict[str, Any] = {
        "benchmark": "smpp_throughput",
        "mix": args.mix,
        "accounts": accounts,
        "database": args.database,
        "messages": args.messages,
        "connections": args.connections,
        "window": args.window,
        "paced_rate": args.rate or None,
        "argon2": "fast (8 MiB, 1 pass)" if args.fast_argon2 else "default (19 MiB, 2 passes)",
        "cpus": os.cpu_count(),
        "load_average_before": LOAD_BEFORE,
        "gateway": gateway,
    }
    if not args.no_minimal:
        minimal = measure_minimal(args, warm_up, measured)
        result["minimal_responder"] = minimal
        ratio = gateway["replies_per_s"] / minimal["replies_per_s"]
        result["ratio_replies_per_s"] = round(ratio, 4)
    if args.mix == "reset":
        raw = raw_argon2_rate(reset_settings(args), max(200, min(args.messages, 2000)))
        result["raw_argon2_hashes_per_s"] = round(raw, 1)
        result["ratio_to_raw_argon2"] = round(gateway["replies_per_s"] / raw, 3)
    result["targets"] = targets(result, args)
    return result


def reset_settings(args: argparse.Namespace) -> ResetSettings:
    base = ResetSettings()
    if args.fast_argon2:
        return dataclasses.replace(base, argon2_memory_kib=8192, argon2_time_cost=1)
    return base


def targets(result: dict[str, Any], args: argparse.Namespace) -> dict[str, bool]:
    """The issue's targets that this run's mode can judge."""
    gateway = result["gateway"]
    met: dict[str, bool] = {}
    if args.rate:
        met["p99_ack_latency_under_50ms"] = gateway["ack_latency_ms"]["p99"] < 50
        met["p99_reply_latency_under_200ms"] = gateway["reply_latency_ms"]["p99"] < 200
    elif args.mix == "mismatch":
        met["replies_per_s_at_least_3000"] = gateway["replies_per_s"] >= 3000
        if "ratio_replies_per_s" in result:
            met["at_least_5pct_of_minimal_responder"] = result["ratio_replies_per_s"] >= 0.05
    if args.mix == "reset" and not args.rate:
        met["at_least_85pct_of_raw_argon2"] = result["ratio_to_raw_argon2"] >= 0.85
    return met


LOAD_BEFORE = [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mix", choices=["mismatch", "reset"], default="mismatch")
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument(
        "--accounts",
        type=int,
        default=0,
        help="synthetic accounts in the database (at least messages + warm-up, the default)",
    )
    parser.add_argument("--warm-up", type=int, default=500)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--rate", type=float, default=0.0, help="MO per second (0: unpaced)")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--pool-size", type=int, default=8, help="[database] pool_size")
    parser.add_argument("--queue-limit", type=int, default=10000, help="inbound_queue_limit")
    parser.add_argument("--fast-argon2", action="store_true", help="8 MiB, 1 pass")
    parser.add_argument("--retry-delay", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--no-minimal", action="store_true", help="skip the minimal responder")
    parser.add_argument("--profile", default="", help="py-spy output file (.svg or .json)")
    args = parser.parse_args()
    print(json.dumps(run(args)))


if __name__ == "__main__":
    main()
