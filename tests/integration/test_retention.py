"""Retention on SQLite and PostgreSQL: old texts go, rows and counts stay, pending texts stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from twisted.internet.task import Clock

from gateway.cli import main
from gateway.config import RetentionSettings
from gateway.retention import retention_service
from store.models import InboundRow, OutboxRow
from store.reports import billing_report
from store.retention import prune_message_bodies
from tests.integration.test_reports import add_inbound, add_reply, utc
from tests.support.monitoring import make_source

INBOUND = cast(sa.Table, InboundRow.__table__)
OUTBOX = cast(sa.Table, OutboxRow.__table__)


def payloads(engine: Engine) -> list[tuple[str, bool]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(INBOUND.c.state, INBOUND.c.payload.is_not(None)).order_by(INBOUND.c.id)
        )
        return [(state, bool(kept)) for state, kept in rows]


def bodies(engine: Engine) -> list[tuple[str, bool, bool]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(OUTBOX.c.state, OUTBOX.c.body.is_not(None), OUTBOX.c.body_masked.is_not(None))
            .order_by(OUTBOX.c.id)
        )  # fmt: skip
        return [(state, bool(body), bool(masked)) for state, body, masked in rows]


def test_old_texts_are_deleted_and_recent_or_pending_ones_kept(engine: Engine) -> None:
    add_inbound(engine, utc(1, 8))  # handled, old
    add_inbound(engine, utc(1, 9), state="duplicate")  # old
    add_inbound(engine, utc(1, 10), state="stored")  # old but never handled: keep its text
    add_inbound(engine, utc(20, 8))  # recent
    add_reply(engine, utc(1, 8), "acknowledged")
    add_reply(engine, utc(1, 9), "expired")
    add_reply(engine, utc(20, 9), "failed")  # recent
    add_reply(engine, None, "queued")  # still to deliver
    before = billing_report(engine, utc(1, 0).date(), utc(30, 0).date())

    pruned = prune_message_bodies(engine, utc(10, 0))

    assert (pruned.inbound_payloads, pruned.reply_bodies) == (2, 2)
    assert payloads(engine) == [
        ("handled", False),
        ("duplicate", False),
        ("stored", True),
        ("handled", True),
    ]
    assert bodies(engine) == [
        ("acknowledged", False, False),
        ("expired", False, False),
        ("failed", False, True),
        ("queued", False, True),
    ]
    assert billing_report(engine, utc(1, 0).date(), utc(30, 0).date()) == before
    assert prune_message_bodies(engine, utc(10, 0)).inbound_payloads == 0  # idempotent


def test_a_large_backlog_goes_in_small_transactions(engine: Engine) -> None:
    for minute in range(7):
        add_inbound(engine, utc(1, 8, minute))
    pruned = prune_message_bodies(engine, utc(10, 0), batch=3)
    assert pruned.inbound_payloads == 7
    assert payloads(engine) == [("handled", False)] * 7


def test_db_prune_uses_the_configured_age(
    engine: Engine, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    add_inbound(engine, now - timedelta(days=40))
    add_inbound(engine, now - timedelta(days=20))
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n[retention]\nmessage_body_days = 30\n', encoding="utf-8"
    )
    assert main(["--config", str(config), "db", "prune"]) == 0
    assert "text of 1 received message(s)" in capsys.readouterr().out
    assert payloads(engine) == [("handled", False), ("handled", True)]
    assert main(["--config", str(config), "db", "prune", "--days", "10"]) == 0
    assert payloads(engine) == [("handled", False), ("handled", False)]
    assert main(["--config", str(config), "db", "prune", "--days", "0"]) == 0
    assert "retention is off" in capsys.readouterr().out.splitlines()[-1]


def test_the_service_prunes_at_start_and_then_every_interval(engine: Engine, db_url: str) -> None:
    clock = Clock()
    clock.advance(utc(15, 0).timestamp())
    source = make_source(db_url, clock, retention=RetentionSettings(10, 24.0))
    add_inbound(engine, utc(1, 8))  # 14 days old at start
    add_inbound(engine, utc(10, 8))  # 10 days old on 20 November at 08:00
    service = retention_service(source, clock)
    service.startService()
    assert payloads(engine) == [("handled", False), ("handled", True)]
    for _ in range(5):  # the run on 20 November at 00:00 is too early for it
        clock.advance(24 * 3600)
    assert payloads(engine) == [("handled", False), ("handled", True)]
    clock.advance(24 * 3600)
    assert payloads(engine) == [("handled", False), ("handled", False)]
    service.stopService()
    source.store.engine.dispose()


def test_retention_zero_schedules_nothing(sqlite_url: str) -> None:
    clock = Clock()
    source = make_source(sqlite_url, clock, retention=RetentionSettings(0, 24.0))
    retention_service(source, clock).startService()
    assert clock.getDelayedCalls() == []
    source.store.engine.dispose()
