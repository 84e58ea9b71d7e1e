"""``vssid-gateway db upgrade``: create or migrate the schema (SQLite or PostgreSQL);
``vssid-gateway db prune``: delete message texts past their retention (see store.retention)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from gateway.config import Settings
from gateway.retention import cutoff
from store.db import create_engine
from store.migrate import current_revision, upgrade
from store.retention import prune_message_bodies


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    db = subparsers.add_parser("db", parents=parents, help="database schema")
    commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = commands.add_parser(
        "upgrade", parents=parents, help="create the schema or migrate it to the latest revision"
    )
    up.set_defaults(handler=run_upgrade)
    prune = commands.add_parser(
        "prune",
        parents=parents,
        help="delete message texts older than [retention] message_body_days (rows stay)",
    )
    prune.add_argument(
        "--days", type=int, default=None, help="override [retention] message_body_days"
    )
    prune.set_defaults(handler=run_prune)


def run_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    engine = create_engine(settings.database.url.reveal(), pool_size=1)
    try:
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
    finally:
        engine.dispose()
    if before == after:
        print(f"database schema is up to date (revision {after})")
    else:
        print(f"database schema upgraded from {before or 'empty'} to {after}")
    return 0


def run_prune(args: argparse.Namespace, settings: Settings) -> int:
    days = settings.retention.message_body_days if args.days is None else args.days
    if days < 0:
        print("vssid-gateway db prune: --days must be 0 or more", file=sys.stderr)
        return 2
    if days == 0:
        print("retention is off (message_body_days = 0): nothing deleted")
        return 0
    engine = create_engine(settings.database.url.reveal(), pool_size=1)
    try:
        pruned = prune_message_bodies(engine, cutoff(days, datetime.now(UTC)))
    finally:
        engine.dispose()
    print(
        f"deleted the text of {pruned.inbound_payloads} received message(s) and "
        f"{pruned.reply_bodies} finished reply(ies) older than {days} days"
    )
    return 0
