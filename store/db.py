"""Engines and transactions for SQLite (embedded) and PostgreSQL.

SQLite runs in WAL mode with ``synchronous=FULL`` (a commit is on disk before it returns, which
is what lets the SMPP listener acknowledge a message only after storing it) and a busy timeout.
Write transactions on SQLite start with ``BEGIN IMMEDIATE``: a transaction that reads and then
writes would otherwise fail instantly with "database is locked" whenever another writer got in
between, instead of waiting its turn. PostgreSQL needs none of this.

Both engines hide statement parameters from their error messages (``hide_parameters``): a
failing INSERT into the outbox would otherwise put the reply, new password and all, into the
exception text and from there into the logs.

All database work runs on worker threads (the gateway's thread pool), never on the reactor.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 15000


def _private_file(database: Path) -> None:
    """The database file (and a folder made for it) readable by its owner only, whatever the
    umask: it holds citizens' data, and replies not yet delivered hold new passwords. SQLite
    gives its -wal and -shm files the database file's permissions."""
    database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not database.exists():
        os.close(os.open(database, os.O_CREAT | os.O_WRONLY, 0o600))
        os.chmod(database, 0o600)  # os.open's mode is filtered by the umask
        return
    # Made before this rule (or by hand): others lose their access; the group, which an
    # administrator may have chosen (a backup user), keeps what it has.
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        try:
            status = path.stat()
        except FileNotFoundError:
            continue
        if status.st_mode & 0o007 and status.st_uid == os.getuid():
            os.chmod(path, stat.S_IMODE(status.st_mode) & ~0o007)


def create_engine(url: str, pool_size: int = 8) -> Engine:
    """An engine for ``url``; SQLite files get their folder created and the pragmas above."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            _private_file(Path(database))
        engine = sa.create_engine(
            url,
            pool_size=pool_size,
            max_overflow=0,
            hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=10,
        hide_parameters=True,
    )


def _sqlite_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, see _sqlite_begin
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: sa.Connection) -> None:
    mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, autoflush=False)


def begin_write(session: Session) -> None:
    """Start ``session``'s transaction as a write transaction (``BEGIN IMMEDIATE`` on SQLite)."""
    session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})


def begin_write_connection(connection: Connection) -> None:
    """The same for a Core ``connection``: call it before ``connection.begin()``."""
    connection.execution_options(sqlite_begin="IMMEDIATE")
