"""Synthetic accounts for tests (never real citizens' data)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from store.importer import AccountRecord, import_accounts, record_from_fields


def add_account(
    engine: Engine,
    code: str,
    phone: str,
    *,
    registered: bool = True,
    name: str = "Nguyễn Thị Thử",
    email: str = "",
) -> AccountRecord:
    record = record_from_fields([code, name, phone, email, "1" if registered else "0"])
    assert isinstance(record, AccountRecord), record
    import_accounts(engine, [record], datetime(2026, 1, 1, tzinfo=UTC))
    return record
