"""Benchmark: password resets per second through the service vs raw Argon2id; one JSON line.

    .venv/bin/python bench/reset_rate.py [--resets 400] [--database sqlite|postgresql]

The resets go through the running service's path: ``Gateway.reset`` on the worker thread pool,
with the configured (default) Argon2id cost, each for a different account and phone so no
rate limit interferes. In the same run, raw ``argon2`` hashing with the same parameters on as
many threads as there are CPUs gives the ceiling; the ratio is what the rest of the service
costs. Target: at least 0.85.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any

import argon2
import sqlalchemy as sa
from twisted.internet import defer, task

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.synthetic import code, phone, rows
from commands.ports import Channel
from commands.reset import ResetRequest, ResetResult
from commands.secret import Secret
from gateway import config
from gateway.service import make_service
from store.db import create_engine
from store.importer import import_accounts, record_from_fields
from store.migrate import upgrade

WARM_UP = 16


def request(index: int) -> ResetRequest:
    return ResetRequest(phone(index), code(index), Channel.CLI, f"bench-{index}")


def raw_argon2_rate(settings: config.ResetSettings, hashes: int) -> float:
    hasher = argon2.PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        type=argon2.Type.ID,
    )
    workers = os.cpu_count() or 1
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(hasher.hash, ["12345678"] * workers))  # warm up
        started = time.perf_counter()
        list(pool.map(hasher.hash, [f"{i:08d}" for i in range(hashes)]))
        return hashes / (time.perf_counter() - started)


def prepare(url: str, count: int) -> None:
    engine = create_engine(url, pool_size=2)
    upgrade(engine)
    records = [record_from_fields(fields) for fields in rows(count)]
    import_accounts(engine, records, datetime.now(UTC))  # type: ignore[arg-type]
    engine.dispose()


async def service_rate(
    reactor: Any, settings: config.Settings, count: int, batch: int
) -> tuple[float, dict[str, int]]:
    """Resets/s as the IVR and CLI ask (one request at a time, ``batch`` 1) or as the SMS
    channel does (``batch`` requests decided together, passwords hashed on every core)."""
    gateway = make_service(settings, reactor)
    gateway.startService()
    outcomes: dict[str, int] = {}

    def decide(numbers: range) -> defer.Deferred[list[ResetResult]]:
        if batch == 1:
            return defer.gatherResults([gateway.reset(request(i)) for i in numbers])
        batches = [
            gateway.workers.run(
                gateway.store.reset_service.reset_batch,
                [request(i) for i in numbers[start : start + batch]],
            )
            for start in range(0, len(numbers), batch)
        ]
        return defer.gatherResults(batches).addCallback(lambda lists: list(chain(*lists)))

    try:
        await decide(range(count, count + WARM_UP))
        started = time.perf_counter()
        results = await decide(range(count))
        seconds = time.perf_counter() - started
        for result in results:
            outcomes[result.outcome.value] = outcomes.get(result.outcome.value, 0) + 1
    finally:
        await gateway.stopService()
    return count / seconds, outcomes


async def run(reactor: Any, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        admin = None
        name = f"vssid_bench_{uuid.uuid4().hex[:8]}"
        if args.database == "sqlite":
            url = f"sqlite:///{folder}/bench.db"
        else:
            admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
            url = (
                sa.make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
            )
        try:
            prepare(url, args.resets + WARM_UP)
            base = config.Settings()
            database = dataclasses.replace(
                base.database, url=Secret(url), pool_size=args.threads or base.database.pool_size
            )
            settings = dataclasses.replace(
                base,
                database=database,
                smpp=dataclasses.replace(base.smpp, enabled=False),
                http=dataclasses.replace(base.http, enabled=False),
            )
            service, outcomes = await service_rate(reactor, settings, args.resets, args.batch)
            raw = raw_argon2_rate(settings.reset, args.resets)
        finally:
            if admin is not None:
                with admin.connect() as connection:
                    connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                admin.dispose()
    reset = settings.reset
    print(
        json.dumps(
            {
                "benchmark": "reset_rate",
                "database": args.database,
                "cpus": os.cpu_count(),
                "worker_threads": settings.database.pool_size,
                "argon2": {
                    "memory_kib": reset.argon2_memory_kib,
                    "time_cost": reset.argon2_time_cost,
                    "parallelism": reset.argon2_parallelism,
                },
                "resets": args.resets,
                "batch": args.batch,
                "outcomes": outcomes,
                "service_resets_per_s": round(service, 1),
                "raw_argon2_hashes_per_s": round(raw, 1),
                "ratio": round(service / raw, 3),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resets", type=int, default=400)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--threads", type=int, default=0, help="worker threads (default: config)")
    parser.add_argument(
        "--batch", type=int, default=1, help="requests decided together (1: IVR/CLI; SMS: more)"
    )
    parser.add_argument(
        "--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    args = parser.parse_args()
    task.react(lambda reactor: defer.Deferred.fromCoroutine(run(reactor, args)))


if __name__ == "__main__":
    main()
