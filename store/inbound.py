"""Inbound SMS: stored (and committed) before the peer is answered, handled exactly once.

The SMS channel stores every message part here in group commits and only then releases the
peer's ``*_resp``; after a crash, whatever was acknowledged is still here and still
``stored``, so it gets handled. Handling marks rows ``handled`` in the same transaction that
queues their help replies; reset replies are queued by the reset transaction itself, and a
re-run after a crash finds those resets already recorded (idempotent correlation ids).

Several instances may share a PostgreSQL database. Each handles the messages it stored, and
now and then reads every row still ``stored`` some seconds after it arrived (the orphan scan:
:func:`pending_messages` with ``received_before``). That is any such row, not only a dead
instance's: a slow or busy instance's, or the reader's own backlog, which the reader must skip.
:func:`handle_messages` makes sure that whichever instances see a row, one handles it: it
locks the rows (``FOR UPDATE SKIP LOCKED``, re-checking that they are still ``stored``) for
the whole decision and marks them ``handled`` in that same transaction, so a crash mid-way
leaves them ``stored`` and unlocked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from commands.ports import QueuedReply
from store.db import begin_write_connection
from store.delivery import RECEIPT
from store.models import InboundRow, OutboxRow
from store.repos import advisory_locks, db_time, one_writer, outbox_values

STORED = "stored"
HANDLED = "handled"
DUPLICATE = "duplicate"

_INBOUND = cast(sa.Table, InboundRow.__table__)
_OUTBOX = cast(sa.Table, OutboxRow.__table__)


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message part as received, ready to store (``fingerprint`` identifies resends)."""

    peer: str
    command: str
    source_addr: str
    source_ton: int
    source_npi: int
    destination_addr: str
    dest_ton: int
    dest_npi: int
    short_code: str
    coding: str
    payload: bytes
    concat_reference: int | None
    concat_total: int | None
    concat_sequence: int | None
    user_message_reference: int | None
    registered_delivery: int
    fingerprint: str
    received_at: datetime


MakeReceipt = Callable[[int, NewMessage], QueuedReply | None]
"""The delivery receipt to queue for a message just stored under an id, if it wants one."""


@dataclass(frozen=True, slots=True)
class Receipts:
    """Receipts are queued in the transaction that stores their messages: one that was
    acknowledged always gets its receipt, even after a crash."""

    make: MakeReceipt
    expiry: timedelta


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """Where a message went: its row id, and the first copy's id if it is a resend."""

    id: int
    duplicate_of: int | None

    @property
    def message_id(self) -> str:
        """The id we answer the peer with: a resend gets the first copy's id."""
        return str(self.duplicate_of or self.id)


@dataclass(frozen=True, slots=True)
class PendingMessage:
    """A stored part not yet handled, as the SMS processor needs it."""

    id: int
    peer: str
    source_addr: str
    source_ton: int
    source_npi: int
    short_code: str
    destination_addr: str
    dest_ton: int
    dest_npi: int
    coding: str
    payload: bytes
    concat_reference: int | None
    concat_total: int | None
    concat_sequence: int | None
    received_at: datetime


def store_messages(
    engine: Engine,
    messages: Sequence[NewMessage],
    duplicate_window: timedelta,
    now: datetime,
    receipts: Receipts | None = None,
) -> list[StoredMessage]:
    """Store ``messages`` in one transaction; a resend within the window is kept as a duplicate.

    A resend is recognised against what is stored (one set-based lookup) and within the batch
    itself (a peer may send the same message twice within a millisecond). On PostgreSQL, where
    another instance may store the same message at the same moment (the peer resent it over
    its other bind), each fingerprint is locked for the transaction first, so the second of
    two such commits waits for the first and then sees its row. (SQLite's writers take turns.)
    """
    with engine.connect() as connection, one_writer(engine):
        begin_write_connection(connection)
        with connection.begin():
            if connection.dialect.name == "postgresql":
                advisory_locks(connection, "inbound", (m.fingerprint for m in messages))
            first_seen = _first_copies(connection, messages, now - duplicate_window)
            originals: list[int] = []
            copies: list[int] = []
            for index, message in enumerate(messages):
                if message.fingerprint in first_seen:
                    copies.append(index)
                else:
                    first_seen[message.fingerprint] = -1  # stored in this batch; id comes below
                    originals.append(index)
            result: dict[int, StoredMessage] = {}
            ids = _insert(connection, [messages[i] for i in originals], [None] * len(originals))
            for index, new_id in zip(originals, ids, strict=True):
                result[index] = StoredMessage(new_id, None)
                first_seen[messages[index].fingerprint] = new_id
            if receipts is not None:  # a resend's receipt went with its first copy
                stored = [(new_id, messages[i]) for i, new_id in zip(originals, ids, strict=True)]
                _queue_receipts(connection, receipts, stored)
            first_ids = [first_seen[messages[i].fingerprint] for i in copies]
            ids = _insert(connection, [messages[i] for i in copies], first_ids)
            for index, new_id, first in zip(copies, ids, first_ids, strict=True):
                result[index] = StoredMessage(new_id, first)
    return [result[index] for index in range(len(messages))]


def _queue_receipts(
    connection: Connection, receipts: Receipts, stored: Sequence[tuple[int, NewMessage]]
) -> None:
    rows = []
    for new_id, message in stored:
        receipt = receipts.make(new_id, message)
        if receipt is not None:
            rows.append({**outbox_values(receipt, receipts.expiry), "kind": RECEIPT})
    if rows:
        connection.execute(sa.insert(_OUTBOX), rows)


_FIRST_COPIES = (
    sa.select(_INBOUND.c.fingerprint, sa.func.min(_INBOUND.c.id))
    .where(
        _INBOUND.c.fingerprint.in_(sa.bindparam("fingerprints", expanding=True)),
        _INBOUND.c.received_at >= sa.bindparam("since"),
        _INBOUND.c.state != DUPLICATE,
    )
    .group_by(_INBOUND.c.fingerprint)
)  # built once: constructing the statement cost more than running it


def _first_copies(
    connection: Connection, messages: Sequence[NewMessage], since: datetime
) -> dict[str, int]:
    fingerprints = list({message.fingerprint for message in messages})
    rows = connection.execute(_FIRST_COPIES, {"fingerprints": fingerprints, "since": since})
    return {fingerprint: first for fingerprint, first in rows}


_NEW_FIELDS = tuple(f.name for f in fields(NewMessage))
_ROW_COLUMNS = (*_NEW_FIELDS, "state", "duplicate_of")
_RECEIVED_AT = _NEW_FIELDS.index("received_at")
_MAX_ROWS_PER_INSERT = 500


def _insert(
    connection: Connection, messages: Sequence[NewMessage], duplicate_of: Sequence[int | None]
) -> list[int]:
    if not messages:
        return []
    if connection.dialect.name == "sqlite":
        return _insert_sqlite(connection, messages, duplicate_of)
    # Not dataclasses.asdict: it deep-copies every value, the payload included.
    rows = []
    for message, first in zip(messages, duplicate_of, strict=True):
        row = {name: getattr(message, name) for name in _NEW_FIELDS}
        row["state"] = STORED if first is None else DUPLICATE
        row["duplicate_of"] = first
        rows.append(row)
    statement = sa.insert(_INBOUND).returning(_INBOUND.c.id, sort_by_parameter_order=True)
    return list(connection.execute(statement, rows).scalars())


def _insert_sqlite(
    connection: Connection, messages: Sequence[NewMessage], duplicate_of: Sequence[int | None]
) -> list[int]:
    """Multi-row INSERTs straight to the driver; the ids follow from the last one.

    SQLAlchemy's per-row parameter processing cost more than the insert (and a RETURNING
    row, or an ``executemany`` row, is one more round through the GIL for a worker thread
    that competes with a busy reactor). SQLite gives a row without an explicit id the
    largest id in the table plus one, and this runs in a write transaction (``BEGIN
    IMMEDIATE``, one writer), so a statement's rows get consecutive ids ending at its
    ``lastrowid``, in VALUES order.
    """
    time = db_time(connection.dialect)
    width = len(_ROW_COLUMNS)
    ids: list[int] = []
    for start in range(0, len(messages), _MAX_ROWS_PER_INSERT):
        chunk = range(start, min(start + _MAX_ROWS_PER_INSERT, len(messages)))
        values: list[object] = []
        for index in chunk:
            row = [getattr(messages[index], name) for name in _NEW_FIELDS]
            row[_RECEIVED_AT] = time(row[_RECEIVED_AT])
            first = duplicate_of[index]
            values += row
            values += (STORED if first is None else DUPLICATE, first)
        sql = _insert_sql(len(chunk), width)
        result = connection.exec_driver_sql(sql, tuple(values))
        last = result.lastrowid
        if result.rowcount != len(chunk) or last is None:  # pragma: no cover - the driver's bug
            raise RuntimeError("inbound insert reported an unexpected row count")
        ids.extend(range(last - len(chunk) + 1, last + 1))
    return ids


def _insert_sql(rows: int, width: int) -> str:
    names = ", ".join(_ROW_COLUMNS)
    row = "(" + ", ".join(["?"] * width) + ")"
    # Only our own column names go into the text; every value is bound.
    return f"INSERT INTO inbound ({names}) VALUES " + ", ".join([row] * rows)  # noqa: S608


def pending_from(new_id: int, message: NewMessage) -> PendingMessage:
    """The pending row for a message just stored as ``new_id`` (no need to read it back)."""
    return PendingMessage(
        new_id,
        message.peer,
        message.source_addr,
        message.source_ton,
        message.source_npi,
        message.short_code,
        message.destination_addr,
        message.dest_ton,
        message.dest_npi,
        message.coding,
        message.payload,
        message.concat_reference,
        message.concat_total,
        message.concat_sequence,
        message.received_at,
    )


def pending_messages(
    engine: Engine,
    after_id: int,
    limit: int,
    *,
    up_to: int | None = None,
    received_before: datetime | None = None,
) -> list[PendingMessage]:
    """Stored, unhandled parts with ids above ``after_id`` (and at most ``up_to``, received
    before ``received_before``), oldest first."""
    columns = [_INBOUND.c[name] for name in PendingMessage.__dataclass_fields__]
    conditions = [_INBOUND.c.state == STORED, _INBOUND.c.id > after_id]
    if up_to is not None:
        conditions.append(_INBOUND.c.id <= up_to)
    if received_before is not None:
        conditions.append(_INBOUND.c.received_at < received_before)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(*columns).where(*conditions).order_by(_INBOUND.c.id).limit(limit)
        )
        return [PendingMessage(**row._mapping) for row in rows]


def pending_summary(engine: Engine) -> tuple[int, int]:
    """How many parts are stored and not handled, and the highest id among them (0 if none)."""
    with engine.connect() as connection:
        count, highest = connection.execute(
            sa.select(sa.func.count(), sa.func.max(_INBOUND.c.id)).where(_INBOUND.c.state == STORED)
        ).one()
    return int(count or 0), int(highest or 0)


Decide = Callable[[set[int], set[int]], tuple[Sequence[int], Sequence[QueuedReply]]]
"""Given the ids this instance may handle, and those of the others that another instance is
deciding right now (locked, still ``stored``), decide; returns the ids handled (of the first
set only) and the help replies to queue with them."""


def handle_messages(
    engine: Engine, ids: Sequence[int], decide: Decide, expiry: timedelta, now: datetime
) -> set[int]:
    """Decide the messages among ``ids`` that no other instance handles, then mark them.

    On PostgreSQL the rows that are still ``stored`` and not locked by another instance are
    locked for the whole of ``decide`` (which runs its resets in transactions of its own) and
    marked ``handled``, with their help replies, in the locking transaction; ``decide`` also
    learns which of the other ids are still ``stored`` (so locked by another instance: a long
    message split across instances waits for them rather than being dropped). Elsewhere
    (SQLite serves one instance) every id is this instance's. Returns the ids that were ours.
    """
    if engine.dialect.name != "postgresql":
        claimed = set(ids)
        handled, replies = decide(claimed, set())
        finish_messages(engine, handled, replies, expiry, now)
        return claimed
    with engine.connect() as connection, connection.begin():
        claimed = set(
            connection.execute(
                sa.select(_INBOUND.c.id)
                .where(_INBOUND.c.id.in_(list(ids)), _INBOUND.c.state == STORED)
                .with_for_update(skip_locked=True)
            ).scalars()
        )
        others = [part_id for part_id in ids if part_id not in claimed]
        busy: set[int] = set()
        if others:
            busy = set(
                connection.execute(
                    sa.select(_INBOUND.c.id).where(
                        _INBOUND.c.id.in_(others), _INBOUND.c.state == STORED
                    )
                ).scalars()
            )
        handled, replies = decide(claimed, busy)
        _finish(connection, handled, replies, expiry, now)
    return claimed


def finish_messages(
    engine: Engine,
    handled: Sequence[int],
    replies: Sequence[QueuedReply],
    expiry: timedelta,
    now: datetime,
) -> None:
    """Mark parts handled and queue their help replies in one transaction.

    A reply for a message that already has one (a re-run after a crash) is skipped: the
    outbox holds at most one reply per inbound message.
    """
    if not handled and not replies:
        return
    with engine.connect() as connection, one_writer(engine):
        begin_write_connection(connection)
        with connection.begin():
            _finish(connection, handled, replies, expiry, now)


def _finish(
    connection: Connection,
    handled: Sequence[int],
    replies: Sequence[QueuedReply],
    expiry: timedelta,
    now: datetime,
) -> None:
    if replies:
        postgres = connection.dialect.name == "postgresql"
        insert = postgresql.insert if postgres else sqlite.insert
        connection.execute(
            insert(_OUTBOX).on_conflict_do_nothing(index_elements=["in_reply_to"]),
            [outbox_values(reply, expiry) for reply in replies],
        )
    if handled:
        connection.execute(
            sa.update(_INBOUND)
            .where(_INBOUND.c.id.in_(list(handled)))
            .values(state=HANDLED, handled_at=now),
        )
