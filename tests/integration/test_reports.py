"""The reconciliation report on SQLite and PostgreSQL: local days, duplicates, billed minutes."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.cli import main
from store.models import CallRow, InboundRow, OutboxRow, ResetEventRow
from store.reports import ALL, Line, billing_report

_ids = count(1)


def utc(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def add_inbound(
    engine: Engine, at: datetime, peer: str = "viettel", state: str = "handled"
) -> None:
    n = next(_ids)
    row = {
        "peer": peer, "command": "deliver_sm", "source_addr": "84912345678", "source_ton": 1,
        "source_npi": 1, "destination_addr": "8079", "dest_ton": 0, "dest_npi": 0,
        "short_code": "8079", "coding": "gsm7", "payload": b"BH MK 0123456789",
        "fingerprint": f"f{n}", "received_at": at, "state": state,
    }  # fmt: skip
    with engine.begin() as connection:
        connection.execute(sa.insert(cast(sa.Table, InboundRow.__table__)), row)


def add_reply(engine: Engine, finished: datetime | None, state: str, peer: str = "viettel") -> None:
    n = next(_ids)
    created = (finished or utc(1, 0)) - timedelta(seconds=5)
    row = {
        "peer": peer, "to_address": "84912345678", "to_ton": 1, "to_npi": 1,
        "from_address": "8079", "in_reply_to": f"MO{n}", "body": None, "state": state,
        "attempts": 1, "created_at": created, "next_attempt_at": created,
        "expires_at": created + timedelta(days=1), "updated_at": created, "finished_at": finished,
        "body_masked": "Cap lai mat khau thanh cong. Tai khoan: 0123456789/Mat khau: ********",
    }  # fmt: skip
    with engine.begin() as connection:
        connection.execute(sa.insert(cast(sa.Table, OutboxRow.__table__)), row)


def add_reset(engine: Engine, at: datetime, channel: str, carrier: str, outcome: str) -> None:
    n = next(_ids)
    row = {
        "at": at, "channel": channel, "phone_received": "0912345678", "phone": "+84912345678",
        "code_received": "0123456789", "code": "0123456789", "outcome": outcome,
        "correlation_id": f"c{n}", "carrier": carrier,
    }  # fmt: skip
    with engine.begin() as connection:
        connection.execute(sa.insert(cast(sa.Table, ResetEventRow.__table__)), row)


def add_call(engine: Engine, start: datetime, seconds: float, answered: bool = True) -> None:
    n = next(_ids)
    answered_at = start + timedelta(seconds=2) if answered else None
    billed = 0 if answered_at is None else -(-int(seconds - 2) // 60)
    row = {
        "unique_id": f"1790000000.{n}", "channel": "PJSIP/trunk-1", "caller_received": "0912345678",
        "caller_presentation": 0, "caller": "+84912345678", "carrier": "Viettel",
        "started_at": start, "answered_at": answered_at,
        "ended_at": start + timedelta(seconds=seconds),
        "duration_seconds": seconds, "billed_minutes": billed, "keys": "menu:8",
        "outcome": "reset", "detail": "",
    }  # fmt: skip
    with engine.begin() as connection:
        connection.execute(sa.insert(cast(sa.Table, CallRow.__table__)), row)


def figures(lines: tuple[Line, ...]) -> dict[tuple[Any, ...], tuple[int, int | None]]:
    return {(line.day, *line.key): (line.quantity, line.amount_vnd) for line in lines}


def test_messages_count_on_the_local_day_they_arrived_without_duplicates(engine: Engine) -> None:
    add_inbound(engine, utc(1, 16, 59))  # 23:59 on 1 November in Hà Nội
    add_inbound(engine, utc(1, 17, 0))  # 00:00 on 2 November
    add_inbound(engine, utc(1, 17, 1), state="duplicate")
    add_inbound(engine, utc(31, 16, 59, month=10))  # 31 October, before the range
    add_inbound(engine, utc(2, 17, 0))  # 3 November, after it
    add_inbound(engine, utc(2, 9), peer="vina")
    report = billing_report(engine, date(2026, 11, 1), date(2026, 11, 2))
    got = figures(report.days)
    assert got == {
        (date(2026, 11, 1), "sms", "viettel", "sms", "", "received"): (1, 1000),
        (date(2026, 11, 2), "sms", "viettel", "sms", "", "received"): (1, 1000),
        (date(2026, 11, 2), "sms", "viettel", "sms", "", "duplicates"): (1, None),
        (date(2026, 11, 2), "sms", "vina", "sms", "", "received"): (1, 1000),
    }
    totals = figures(report.totals)
    assert totals[(None, "sms", "viettel", "sms", "", "received")] == (2, 2000)
    assert totals[(None, "sms", ALL, ALL, ALL, "received")] == (3, 3000)
    assert report.amount_vnd == {"sms": 3000, "call": 0, "all": 3000}


def test_replies_count_on_the_day_they_finished_and_queued_ones_not_at_all(
    engine: Engine,
) -> None:
    add_reply(engine, utc(3, 2), "acknowledged")
    add_reply(engine, utc(3, 3), "acknowledged")
    add_reply(engine, utc(3, 20), "failed")  # 4 November in Hà Nội
    add_reply(engine, utc(4, 1), "expired")
    add_reply(engine, None, "queued")
    report = billing_report(engine, date(2026, 11, 3), date(2026, 11, 4))
    assert figures(report.days) == {
        (date(2026, 11, 3), "sms", "viettel", "sms", "", "replies_acknowledged"): (2, None),
        (date(2026, 11, 4), "sms", "viettel", "sms", "", "replies_failed"): (1, None),
        (date(2026, 11, 4), "sms", "viettel", "sms", "", "replies_expired"): (1, None),
    }


def test_resets_by_channel_carrier_and_outcome(engine: Engine) -> None:
    add_reset(engine, utc(5, 1), "sms", "Viettel", "reset")
    add_reset(engine, utc(5, 2), "sms", "Viettel", "reset")
    add_reset(engine, utc(5, 3), "sms", "MobiFone", "mismatch")
    add_reset(engine, utc(5, 4), "ivr", "Viettel", "rate_limited")
    report = billing_report(engine, date(2026, 11, 5), date(2026, 11, 5))
    day = date(2026, 11, 5)
    assert figures(report.days) == {
        (day, "reset", "", "ivr", "Viettel", "rate_limited"): (1, None),
        (day, "reset", "", "sms", "MobiFone", "mismatch"): (1, None),
        (day, "reset", "", "sms", "Viettel", "reset"): (2, None),
    }
    assert figures(report.totals)[(None, "reset", ALL, ALL, ALL, "reset")] == (2, None)


def test_calls_are_billed_per_started_minute_from_the_answer(engine: Engine) -> None:
    add_call(engine, utc(6, 8), 62.0)  # 60 s answered: one minute
    add_call(engine, utc(6, 9), 63.0)  # 61 s answered: two minutes
    add_call(engine, utc(6, 10), 5.0, answered=False)
    report = billing_report(engine, date(2026, 11, 6), date(2026, 11, 6))
    day = date(2026, 11, 6)
    assert figures(report.days) == {
        (day, "call", "", "ivr", "Viettel", "answered"): (2, None),
        (day, "call", "", "ivr", "Viettel", "billed_minutes"): (3, 3000),
        (day, "call", "", "ivr", "Viettel", "calls"): (3, None),
    }
    assert report.amount_vnd == {"sms": 0, "call": 3000, "all": 3000}


def test_an_empty_range_is_an_empty_report(engine: Engine) -> None:
    report = billing_report(engine, date(2026, 12, 1), date(2026, 12, 31))
    assert (report.days, report.totals) == ((), ())
    with pytest.raises(ValueError, match="before the start"):
        billing_report(engine, date(2026, 12, 2), date(2026, 12, 1))


def test_the_command_prints_csv_and_json_with_totals(
    engine: Engine, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_inbound(engine, utc(1, 5))
    add_call(engine, utc(1, 6), 122.0)
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    period = ["--from", "2026-11-01", "--to", "2026-11-30"]
    assert main(["--config", str(config), "report", *period]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    received = [r for r in rows if r["measure"] == "received" and r["peer"] == "viettel"]
    assert [(r["day"], r["quantity"], r["amount_vnd"]) for r in received] == [
        ("2026-11-01", "1", "1000"),
        ("total", "1", "1000"),
    ]
    assert main(["--config", str(config), "report", *period, "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["amount_vnd"] == {"sms": 1000, "call": 2000, "all": 3000}
    assert document["utc_offset"] == "+07:00"
    assert (
        main(["--config", str(config), "report", "--from", "2026-11-30", "--to", "2026-11-01"]) == 2
    )
