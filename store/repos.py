"""The SQL implementations of :mod:`commands.ports`.

:class:`SqlUnitOfWork` is one session and one transaction; the repositories it exposes share
it, so an account update, its audit row and the SMS reply commit together or not at all.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from functools import cache
from types import TracebackType
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from commands.ports import (
    Account,
    Channel,
    DuplicateCorrelationError,
    Outcome,
    PasswordChange,
    QueuedReply,
    ResetCounts,
    ResetEvent,
)
from store.db import begin_write
from store.models import AccountRow, OutboxRow, ResetEventRow

RESET_CORRELATION_CONSTRAINT = "uq_reset_events_channel_correlation_id"


_ACCOUNT_COLUMNS = [
    AccountRow.ma_so_bhxh,
    AccountRow.name,
    AccountRow.phone,
    AccountRow.email,
    AccountRow.registered,
    AccountRow.password_set_at,
    AccountRow.must_change_password,
    AccountRow.temporary_password_expires_at,
    AccountRow.created_at,
    AccountRow.updated_at,
]
# Core statements, built once: constructing SQLAlchemy statements per call costs more CPU than
# running them, and the ORM's per-object bookkeeping is not needed here.
_SELECT_ACCOUNTS = sa.select(*_ACCOUNT_COLUMNS).where(
    AccountRow.ma_so_bhxh.in_(sa.bindparam("codes", expanding=True))
)
_ACCOUNTS = cast(sa.Table, AccountRow.__table__)
_SET_PASSWORD = (
    sa.update(_ACCOUNTS)
    .where(_ACCOUNTS.c.ma_so_bhxh == sa.bindparam("b_code"))
    .values(
        password_hash=sa.bindparam("b_hash"),
        password_set_at=sa.bindparam("b_at"),
        must_change_password=True,
        temporary_password_expires_at=sa.bindparam("b_expires"),
        updated_at=sa.bindparam("b_at"),
    )
)
_FIND_EVENTS = sa.select(ResetEventRow.__table__).where(
    ResetEventRow.channel == sa.bindparam("channel"),
    ResetEventRow.correlation_id.in_(sa.bindparam("ids", expanding=True)),
)
# Both rate-limit counts in one round trip: ("c", code, n) and ("p", phone, n) rows.
_RESET_COUNTS = sa.union_all(
    sa.select(sa.literal("c"), ResetEventRow.code, sa.func.count())
    .where(
        ResetEventRow.code.in_(sa.bindparam("codes", expanding=True)),
        ResetEventRow.at >= sa.bindparam("since"),
        ResetEventRow.outcome == Outcome.RESET.value,
    )
    .group_by(ResetEventRow.code),
    sa.select(sa.literal("p"), ResetEventRow.phone, sa.func.count())
    .where(
        ResetEventRow.phone.in_(sa.bindparam("phones", expanding=True)),
        ResetEventRow.at >= sa.bindparam("since"),
        ResetEventRow.outcome == Outcome.RESET.value,
    )
    .group_by(ResetEventRow.phone),
)
_LOCK_ACCOUNTS = (
    sa.select(_ACCOUNTS.c.ma_so_bhxh)
    .where(_ACCOUNTS.c.ma_so_bhxh.in_(sa.bindparam("codes", expanding=True)))
    .order_by(_ACCOUNTS.c.ma_so_bhxh)
    .with_for_update()
)
_ADVISORY_LOCKS = sa.text(
    "SELECT pg_advisory_xact_lock(key) FROM unnest(CAST(:keys AS bigint[])) AS key"
)  # unnest yields the keys in array order: the locks are taken in that order
_OUTBOX = cast(sa.Table, OutboxRow.__table__)
_RESET_EVENTS = cast(sa.Table, ResetEventRow.__table__)
_OUTBOX_COLUMNS = (
    "peer", "to_address", "to_ton", "to_npi", "from_address", "from_ton", "from_npi",
    "in_reply_to", "body", "body_masked", "state", "attempts", "created_at",
    "next_attempt_at", "expires_at", "updated_at",
)  # fmt: skip
_EVENT_COLUMNS = (
    "at", "channel", "phone_received", "phone", "code_received", "code", "outcome",
    "correlation_id", "carrier",
)  # fmt: skip


def insert_rows(
    connection: Connection, table: sa.Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """INSERT ``rows`` (values in ``columns`` order) with one ``executemany`` on the driver.

    For the tables written for every message, SQLAlchemy's per-row parameter processing costs
    more than the insert itself (6-column rows: 9.5 us through Core, 3.7 us this way, on
    SQLite). Values go to the driver as they are, so times must already be converted with
    :func:`db_time`; everything else here is text, integers or bytes.
    """
    sql = _insert_sql(connection.dialect, table.name, tuple(columns))
    connection.exec_driver_sql(sql, list(rows))


@cache
def _insert_sql(dialect: Dialect, table: str, columns: tuple[str, ...]) -> str:
    quote = dialect.identifier_preparer.quote
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    names = ", ".join(quote(name) for name in columns)
    markers = ", ".join([marker] * len(columns))
    # Only our own table and column names (quoted) go into the text; every value is bound.
    return f"INSERT INTO {quote(table)} ({names}) VALUES ({markers})"  # noqa: S608


def advisory_locks(connection: Connection, kind: str, values: Iterable[str]) -> None:
    """PostgreSQL: take a transaction-scoped advisory lock for each of ``values`` (in the
    ``kind`` namespace), released at commit or rollback. Taken in the order of their keys, the
    same in every transaction, so two transactions locking overlapping sets cannot deadlock."""
    keys = sorted({_advisory_key(kind, value) for value in values})
    if keys:
        connection.execute(_ADVISORY_LOCKS, {"keys": keys})


def _advisory_key(kind: str, value: str) -> int:
    digest = hashlib.blake2b(f"{kind}\x1f{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)  # PostgreSQL's bigint


def db_time(dialect: Dialect) -> Callable[[datetime], Any]:
    """A UTC time as the ``UtcDateTime`` columns store it on ``dialect``, for the driver."""
    return _time_converter(dialect.name, dialect)


@cache
def _time_converter(_name: str, dialect: Dialect) -> Callable[[datetime], Any]:
    process = sa.DateTime().dialect_impl(dialect).bind_processor(dialect)
    # A batch's rows share a few times (its 'now', 'now' + expiry): formatting each once
    # saves most of the work (SQLite's text format costs ~2.4 us a value).
    recent: dict[datetime, Any] = {}

    def convert(value: datetime) -> Any:
        converted = recent.get(value)
        if converted is None:
            naive = value.astimezone(UTC).replace(tzinfo=None)
            converted = process(naive) if process is not None else naive
            if len(recent) >= 64:
                recent.clear()
            recent[value] = converted
        return converted

    return convert


class SqlAccounts:
    """Accounts by code; the only writer of password hashes."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def get_many(self, codes: Collection[str]) -> dict[str, Account]:
        if not codes:
            return {}
        rows = self._session.execute(_SELECT_ACCOUNTS, {"codes": list(codes)})
        return {row.ma_so_bhxh: _account(row) for row in rows}

    def set_temporary_passwords(self, changes: Sequence[PasswordChange]) -> None:
        if changes:
            self._session.execute(
                _SET_PASSWORD,
                [
                    {
                        "b_code": c.code,
                        "b_hash": c.password_hash,
                        "b_at": c.at,
                        "b_expires": c.expires_at,
                    }
                    for c in changes
                ],
            )


def _account(row: Any) -> Account:
    return Account(
        code=row.ma_so_bhxh,
        name=row.name,
        phone=row.phone,
        email=row.email,
        registered=row.registered,
        password_set_at=row.password_set_at,
        must_change_password=row.must_change_password,
        temporary_password_expires_at=row.temporary_password_expires_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlAuditLog:
    """The append-only reset audit; also answers the rate-limit counts."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def find_many(
        self, keys: Collection[tuple[Channel, str]]
    ) -> dict[tuple[Channel, str], ResetEvent]:
        found: dict[tuple[Channel, str], ResetEvent] = {}
        by_channel: dict[Channel, list[str]] = {}
        for channel, correlation_id in keys:
            by_channel.setdefault(channel, []).append(correlation_id)
        for channel, ids in by_channel.items():
            rows = self._session.execute(_FIND_EVENTS, {"channel": channel.value, "ids": ids})
            for row in rows:
                found[(channel, row.correlation_id)] = ResetEvent(
                    at=row.at,
                    channel=channel,
                    phone_received=row.phone_received,
                    phone=row.phone,
                    code_received=row.code_received,
                    code=row.code,
                    outcome=Outcome(row.outcome),
                    correlation_id=row.correlation_id,
                    carrier=row.carrier,
                )
        return found

    def append_many(self, events: Sequence[ResetEvent]) -> None:
        if events:
            connection = self._session.connection()
            time = db_time(connection.dialect)
            with _correlation_is_unique():
                insert_rows(
                    connection,
                    _RESET_EVENTS,
                    _EVENT_COLUMNS,
                    (
                        (
                            time(e.at),
                            e.channel.value,
                            e.phone_received,
                            e.phone,
                            e.code_received,
                            e.code,
                            e.outcome.value,
                            e.correlation_id,
                            e.carrier,
                        )
                        for e in events
                    ),
                )

    def lock(self, codes: Collection[str], phones: Collection[str]) -> None:
        """On PostgreSQL, lock the accounts' rows (a reset of a code writes its row anyway)
        and take a transaction-scoped advisory lock per phone (a phone may be registered for
        several accounts), each in a fixed order so that two batches cannot deadlock.
        Under READ COMMITTED the counts read after this see every reset committed before.
        SQLite needs nothing: its write transactions already run one at a time."""
        connection = self._session.connection()
        if connection.dialect.name != "postgresql":
            return
        if codes:
            connection.execute(_LOCK_ACCOUNTS, {"codes": sorted(codes)})
        advisory_locks(connection, "phone", phones)

    def resets_since(
        self, since: datetime, codes: Collection[str], phones: Collection[str]
    ) -> ResetCounts:
        counts = ResetCounts({}, {})
        if not codes and not phones:
            return counts
        rows = self._session.execute(
            _RESET_COUNTS, {"codes": list(codes), "phones": list(phones), "since": since}
        )
        for kind, key, number in rows:
            if key is not None:
                (counts.by_code if kind == "c" else counts.by_phone)[key] = number
        return counts


class SqlOutbox:
    """Queues SMS replies; delivery and its state changes belong to the SMS dispatcher."""

    def __init__(self, session: Session, expiry: timedelta) -> None:
        self._session = session
        self._expiry = expiry

    def enqueue_many(self, replies: Sequence[QueuedReply]) -> None:
        if replies:
            connection = self._session.connection()
            time = db_time(connection.dialect)
            rows = [_outbox_row(reply, self._expiry, time) for reply in replies]
            insert_rows(connection, _OUTBOX, _OUTBOX_COLUMNS, rows)


def _outbox_row(
    reply: QueuedReply, expiry: timedelta, time: Callable[[datetime], Any]
) -> tuple[Any, ...]:
    """A newly queued reply's outbox row, in ``_OUTBOX_COLUMNS`` order, its times through
    ``time`` (:func:`db_time` for the driver, unchanged for SQLAlchemy)."""
    route, at = reply.route, time(reply.at)
    return (
        route.peer,
        route.to_address,
        route.to_ton,
        route.to_npi,
        route.from_address,
        route.from_ton,
        route.from_npi,
        route.in_reply_to,
        reply.text,
        reply.masked_text,
        "queued",
        0,
        at,
        at,
        time(reply.at + expiry),
        at,
    )


def _unchanged(value: datetime) -> datetime:
    return value


def outbox_values(reply: QueuedReply, expiry: timedelta) -> dict[str, Any]:
    """The outbox row for a newly queued reply, by column name (for SQLAlchemy inserts)."""
    return dict(zip(_OUTBOX_COLUMNS, _outbox_row(reply, expiry, _unchanged), strict=True))


_WRITERS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_WRITERS_GUARD = threading.Lock()


def one_writer(engine: Engine) -> AbstractContextManager[object]:
    """Hold this around a write transaction: on SQLite, one at a time per engine, in turn.

    SQLite has a single writer. When several worker threads begin write transactions at once,
    all but one get SQLITE_BUSY, and SQLite's busy handler retries after sleeping 1, 2, 5, 10,
    ... up to 100 ms, however soon the lock is free; under load every commit queues behind
    those sleeps. Waiting on a lock in this process instead hands the database over the moment
    the previous commit returns. (Another process, a CLI import say, still meets the busy
    handler.) Whoever holds it must not wait for a pooled connection that a waiter holds:
    take it after checking out the connection. A unit of work takes it just before, since its
    session checks out and begins at once; that is safe because every thread holds at most
    one connection and the worker pool has no more threads than the engine has connections.
    PostgreSQL locks rows, not the database: there it is a no-op.
    """
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _WRITERS_GUARD:
        lock = _WRITERS.get(engine)
        if lock is None:
            lock = _WRITERS[engine] = threading.Lock()
    return lock


class SqlUnitOfWork:
    """One transaction across the repositories (``commands.ports.UnitOfWork``)."""

    def __init__(self, sessions: sessionmaker[Session], *, write: bool, outbox_expiry: timedelta):
        self.session = sessions()
        self._write = write
        self._writer: AbstractContextManager[object] | None = None
        self.accounts = SqlAccounts(self.session)
        self.audit = SqlAuditLog(self.session)
        self.rate_limits = self.audit
        self.outbox = SqlOutbox(self.session, outbox_expiry)

    def __enter__(self) -> SqlUnitOfWork:
        if not self._write and self.session.get_bind().dialect.name == "postgresql":
            # Reads before a decision need no transaction (the write transaction re-checks):
            # no BEGIN and ROLLBACK round trips.
            self.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        if self._write:
            self._writer = one_writer(cast(Engine, self.session.get_bind()))
            self._writer.__enter__()
            try:
                begin_write(self.session)
            except BaseException:
                self._writer.__exit__(None, None, None)
                raise
        return self

    def commit(self) -> None:
        with _correlation_is_unique():
            self.session.commit()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.session.rollback()
            self.session.close()
        finally:
            if self._writer is not None:
                self._writer.__exit__(None, None, None)
                self._writer = None


@contextmanager
def _correlation_is_unique() -> Iterator[None]:
    """Turn the violation of the reset-correlation unique index into the port's exception."""
    try:
        yield
    except IntegrityError as error:
        if _violates(error, RESET_CORRELATION_CONSTRAINT, "reset_events.correlation_id"):
            raise DuplicateCorrelationError(str(error.orig)) from None
        raise


def _violates(error: IntegrityError, constraint: str, sqlite_column: str) -> bool:
    """Whether ``error`` is the violation of ``constraint`` (PostgreSQL) or on ``sqlite_column``."""
    diag = getattr(error.orig, "diag", None)
    if diag is not None:
        return getattr(diag, "constraint_name", None) == constraint
    return sqlite_column in str(error.orig)


class UnitOfWorkFactory:
    """Makes :class:`SqlUnitOfWork` instances (``commands.ports.UnitOfWorkFactory``)."""

    def __init__(self, sessions: sessionmaker[Session], outbox_expiry: timedelta) -> None:
        self._sessions = sessions
        self._outbox_expiry = outbox_expiry

    def __call__(self, *, write: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._sessions, write=write, outbox_expiry=self._outbox_expiry)
