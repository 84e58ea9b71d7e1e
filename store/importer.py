"""Bulk import of accounts from BHXH's CSV export, streaming and idempotent.

The file (UTF-8, header ``ma_so_bhxh,ho_ten,so_dien_thoai,email,da_dang_ky_gddt``) may hold
millions of rows, so it is read row by row and written in batches: one set-based lookup of the
batch's codes (to tell new accounts from updates) and one multi-row upsert per batch. Importing
the same file twice changes nothing but ``updated_at``; an import never touches passwords.
A bad row is rejected with its line number and a reason and the rest goes on. An account is
one physical line (no field may hold a line break), so a broken line never takes the
following lines with it.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, TextIO

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from commands.phone import normalise_phone
from store.models import AccountRow

COLUMNS: Final = ("ma_so_bhxh", "ho_ten", "so_dien_thoai", "email", "da_dang_ky_gddt")
BATCH_SIZE: Final = 5000
MAX_PENDING_BATCHES: Final = 2
MAX_NAME: Final = 200
MAX_EMAIL: Final = 254
MAX_FIELD: Final = 1000
UNCLOSED_QUOTE: Final = 'unclosed quote: a field opens with " and is not closed on this line'
TRUE_WORDS: Final = frozenset({"1", "true", "yes", "y", "x", "co", "có", "c", "t"})
FALSE_WORDS: Final = frozenset({"0", "false", "no", "n", "", "khong", "không", "k", "f"})
_CODE = re.compile(r"[0-9]{10}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # what errors="surrogateescape" makes of bad bytes


class UnreadableFileError(Exception):
    """The file cannot be imported at all (missing columns, not CSV); nothing was written."""


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """One valid row, normalised (E.164 phone, NFC name)."""

    line: int
    code: str
    name: str
    phone: str | None
    email: str | None
    registered: bool


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A row that was not imported, with the reason."""

    line: int
    reason: str
    fields: tuple[str, ...]


@dataclass(slots=True)
class ImportSummary:
    """Counts for the end-of-import report."""

    imported: int = 0
    updated: int = 0
    rejected: int = 0


def read_accounts(handle: TextIO) -> Iterator[AccountRecord | RejectedRow]:
    """Validate and normalise rows lazily; raises :class:`UnreadableFileError` on a bad header.

    Each physical line is parsed on its own: one CSV reader over the whole file would let a
    stray quote run on into the following lines, and thousands of accounts would be lost as
    one rejected "row" (up to csv's field size limit) instead of the one broken line.
    """
    lines = iter(handle)
    first = next(lines, None)
    if first is None:
        raise UnreadableFileError("the file is empty (expected a header row)")
    try:
        header, closed = _fields(first)
    except csv.Error as error:
        raise UnreadableFileError(f"not a CSV file: {error}") from None
    if not closed:
        raise UnreadableFileError("not a CSV file: unclosed quote in the header row")
    names = [name.strip().lstrip("\ufeff").lower() for name in header]
    missing = [column for column in COLUMNS if column not in names]
    if missing:
        raise UnreadableFileError(
            f"missing column(s) {', '.join(missing)}; expected header {','.join(COLUMNS)}"
        )
    positions = [names.index(column) for column in COLUMNS]
    width = len(names)
    for line, text in enumerate(lines, start=2):
        try:
            row, closed = _fields(text)
        except csv.Error as error:
            yield RejectedRow(line, f"malformed CSV: {error}", ())
            continue
        if not closed:
            row[-1] = row[-1].rstrip("\r\n")
            yield RejectedRow(line, UNCLOSED_QUOTE, tuple(value[:MAX_FIELD] for value in row))
            continue
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        yield _validate(line, row, positions, width)


def _fields(line: str) -> tuple[list[str], bool]:
    """The fields of one physical line, and whether every quoted field on it was closed.

    A line without a quote is split on commas, which is all the CSV reader would do with it at
    three times the cost (a reader per line would slow the whole import by about 5%). Otherwise
    the reader is given an empty second line, which it reads only when the first ends inside a
    quoted field: that tells an unclosed quote apart without csv's ``strict`` mode, which would
    also refuse lines such as ``"An" Binh`` that are imported today.
    """
    if '"' not in line:
        return line.rstrip("\r\n").split(","), True
    reader = csv.reader((line, ""))
    row = next(reader, [])
    return row, reader.line_num == 1


def record_from_fields(fields: list[str], line: int = 1) -> AccountRecord | RejectedRow:
    """Validate one account given as the five CSV fields in :data:`COLUMNS` order."""
    return _validate(line, fields, list(range(len(COLUMNS))), len(COLUMNS))


def _validate(
    line: int, row: list[str], positions: list[int], width: int
) -> AccountRecord | RejectedRow:
    def reject(reason: str) -> RejectedRow:
        return RejectedRow(line, reason, tuple(value[:MAX_FIELD] for value in row))

    if len(row) != width:
        return reject(f"expected {width} fields, found {len(row)}")
    if any(len(value) > MAX_FIELD for value in row) or _UNDECODABLE.search("".join(row)):
        return reject("field is not valid UTF-8 or is too long")
    code, name, phone_text, email, registered_text = (row[i].strip() for i in positions)
    if not _CODE.fullmatch(code):
        return reject("ma_so_bhxh must be exactly 10 digits")
    name = " ".join(unicodedata.normalize("NFC", name).split())
    if not name:
        return reject("ho_ten is empty")
    if len(name) > MAX_NAME:
        return reject(f"ho_ten is longer than {MAX_NAME} characters")
    phone = None
    if phone_text:
        normalised = normalise_phone(phone_text)
        if normalised is None:
            return reject("so_dien_thoai is not a valid phone number")
        phone = normalised.e164
    if email and (len(email) > MAX_EMAIL or not _EMAIL.fullmatch(email)):
        return reject("email is not a valid address")
    registered_word = unicodedata.normalize("NFC", registered_text).lower()
    if registered_word in TRUE_WORDS:
        registered = True
    elif registered_word in FALSE_WORDS:
        registered = False
    else:
        return reject("da_dang_ky_gddt must be 1/0 (or true/false, co/khong)")
    return AccountRecord(line, code, name, phone, email or None, registered)


def batched(items: Iterable[AccountRecord], size: int) -> Iterator[list[AccountRecord]]:
    batch: list[AccountRecord] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def import_accounts(
    engine: Engine,
    rows: Iterable[AccountRecord | RejectedRow],
    now: datetime,
    *,
    on_reject: Callable[[RejectedRow], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportSummary:
    """Upsert ``rows`` in batches; rejected rows are counted and passed to ``on_reject``.

    Validation runs on the calling thread while the previous batch is written on another, so
    parsing and database time overlap (both drivers release the GIL while the database works).
    """
    summary = ImportSummary()

    def valid_rows() -> Iterator[AccountRecord]:
        for row in rows:
            if isinstance(row, RejectedRow):
                summary.rejected += 1
                if on_reject is not None:
                    on_reject(row)
            else:
                yield row

    def collect(written: Future[tuple[int, int]]) -> None:
        imported, updated = written.result()
        summary.imported += imported
        summary.updated += updated
        if on_batch is not None:
            on_batch(imported + updated)

    upsert = _upsert_postgresql if engine.dialect.name == "postgresql" else _upsert_sqlite
    pending: deque[Future[tuple[int, int]]] = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-writer") as writer:
        for batch in batched(valid_rows(), batch_size):
            pending.append(writer.submit(upsert, engine, batch, now))
            while len(pending) > MAX_PENDING_BATCHES:
                collect(pending.popleft())
        while pending:
            collect(pending.popleft())
    return summary


def _latest(batch: list[AccountRecord]) -> dict[str, AccountRecord]:
    """The batch by code; a later line for the same code wins (an upsert may touch a row once)."""
    return {record.code: record for record in batch}


_SQLITE_UPSERT = """
INSERT INTO accounts (ma_so_bhxh, name, phone, email, registered, must_change_password,
                      created_at, updated_at)
VALUES (?, ?, ?, ?, ?, 0, ?, ?)
ON CONFLICT (ma_so_bhxh) DO UPDATE SET
    name = excluded.name, phone = excluded.phone, email = excluded.email,
    registered = excluded.registered, updated_at = excluded.updated_at
"""


def _upsert_sqlite(engine: Engine, batch: list[AccountRecord], now: datetime) -> tuple[int, int]:
    """One ``executemany`` on the driver: SQLAlchemy's per-row processing would halve the rate."""
    latest = _latest(batch)
    stamp = _sqlite_timestamp(engine, now)
    rows = [
        (record.code, record.name, record.phone, record.email, record.registered, stamp, stamp)
        for record in latest.values()
    ]
    with engine.connect() as connection:
        connection.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            existing = connection.scalar(
                sa.select(sa.func.count())
                .select_from(AccountRow)
                .where(AccountRow.ma_so_bhxh.in_(list(latest)))
            )
            driver = connection.connection.driver_connection
            assert driver is not None
            driver.executemany(_SQLITE_UPSERT, rows)
    imported = len(latest) - (existing or 0)
    return imported, len(batch) - imported


def _sqlite_timestamp(engine: Engine, now: datetime) -> object:
    """``now`` exactly as SQLAlchemy's SQLite DateTime stores it, so the models read it back."""
    process = sa.DateTime().dialect_impl(engine.dialect).bind_processor(engine.dialect)
    naive = now.astimezone(UTC).replace(tzinfo=None)
    return process(naive) if process else naive


_PG_STAGING = """
CREATE TEMPORARY TABLE IF NOT EXISTS import_accounts (
    ma_so_bhxh varchar(10), name varchar(200), phone varchar(16), email varchar(254),
    registered boolean
) ON COMMIT DELETE ROWS
"""
_PG_MERGE = """
INSERT INTO accounts (ma_so_bhxh, name, phone, email, registered, must_change_password,
                      created_at, updated_at)
SELECT ma_so_bhxh, name, phone, email, registered, false, %(now)s, %(now)s FROM import_accounts
ON CONFLICT (ma_so_bhxh) DO UPDATE SET
    name = excluded.name, phone = excluded.phone, email = excluded.email,
    registered = excluded.registered, updated_at = excluded.updated_at
RETURNING (xmax = 0)
"""


def _upsert_postgresql(
    engine: Engine, batch: list[AccountRecord], now: datetime
) -> tuple[int, int]:
    """COPY into a session-local staging table, then one INSERT ... ON CONFLICT from it.

    COPY is several times faster than parameterised inserts on PostgreSQL, and ``xmax = 0``
    in RETURNING tells inserted rows from updated ones in the same statement.
    """
    latest = _latest(batch)
    with engine.begin() as connection:
        driver = connection.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor:
            cursor.execute(_PG_STAGING)
            with cursor.copy("COPY import_accounts FROM STDIN") as copy:
                for record in latest.values():
                    copy.write_row(
                        (record.code, record.name, record.phone, record.email, record.registered)
                    )
            cursor.execute(_PG_MERGE, {"now": now.astimezone(UTC).replace(tzinfo=None)})
            imported = sum(1 for (inserted,) in cursor.fetchall() if inserted)
    return imported, len(batch) - imported
