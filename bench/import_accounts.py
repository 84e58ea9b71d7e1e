"""Benchmark: import N synthetic accounts into SQLite and PostgreSQL; prints one JSON line.

    .venv/bin/python bench/import_accounts.py [--rows 1000000] [--postgres URL]

Each backend gets a fresh database; the figure is rows per second for the whole import
(CSV parsing, validation, phone normalisation and the upserts), as `accounts import` runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.synthetic import write_csv
from store.db import create_engine
from store.importer import import_accounts, read_accounts
from store.migrate import upgrade


def timed_import(url: str, csv_path: Path) -> dict[str, float | int]:
    engine = create_engine(url, pool_size=2)
    upgrade(engine)
    started = time.perf_counter()
    with csv_path.open(encoding="utf-8", newline="", errors="surrogateescape") as handle:
        summary = import_accounts(engine, read_accounts(handle), datetime.now(UTC))
    seconds = time.perf_counter() - started
    engine.dispose()
    rows = summary.imported + summary.updated
    return {
        "rows": rows,
        "rejected": summary.rejected,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--postgres",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="admin URL; a scratch database is created and dropped",
    )
    args = parser.parse_args()
    result: dict[str, object] = {
        "benchmark": "import_accounts",
        "rows": args.rows,
        "cpus": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory() as folder:
        csv_path = Path(folder) / "accounts.csv"
        write_csv(csv_path, args.rows)
        result["sqlite"] = timed_import(f"sqlite:///{folder}/bench.db", csv_path)
        admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        name = f"vssid_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            url = (
                sa.make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
            )
            result["postgresql"] = timed_import(url, csv_path)
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
