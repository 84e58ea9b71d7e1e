"""Storing inbound messages against real databases: resends are recognised, also when two
instances store the same message at the same moment (PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.sms import receipt_for
from store.inbound import NewMessage, Receipts, StoredMessage, store_messages
from store.models import InboundRow, OutboxRow
from tests.support.clock import FixedClock

WINDOW = timedelta(seconds=120)


def new_message(
    clock: FixedClock, fingerprint: str = "f" * 64, registered_delivery: int = 0
) -> NewMessage:
    return NewMessage(
        peer="viettel", command="submit_sm", source_addr="84912345678", source_ton=1,
        source_npi=1, destination_addr="8079", dest_ton=2, dest_npi=1, short_code="8079",
        coding="gsm7", payload=b"BH MK 0123456789", concat_reference=None, concat_total=None,
        concat_sequence=None, user_message_reference=None,
        registered_delivery=registered_delivery, fingerprint=fingerprint,
        received_at=clock.now(),
    )  # fmt: skip


def states(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.execute(sa.select(InboundRow.state).order_by(InboundRow.id)).scalars()
        )


def test_a_receipt_asked_for_is_queued_with_its_message_and_not_again_for_a_resend(
    engine: Engine, clock: FixedClock
) -> None:
    receipts = Receipts(receipt_for, timedelta(hours=24))
    wanting = new_message(clock, registered_delivery=0x11)  # receipt + intermediate: as peers do
    [first, plain] = store_messages(
        engine, [wanting, new_message(clock, "e" * 64)], WINDOW, clock.now(), receipts
    )
    [again] = store_messages(engine, [wanting], WINDOW, clock.now(), receipts)

    with engine.connect() as connection:
        columns = ("kind", "in_reply_to", "to_address", "from_address", "body")
        rows = connection.execute(sa.select(*(OutboxRow.__table__.c[c] for c in columns))).all()
    assert again.duplicate_of == first.id and plain.id != first.id
    [(kind, in_reply_to, to_address, from_address, body)] = rows
    assert (kind, in_reply_to, to_address, from_address) == (
        "receipt",
        f"-{first.id}",
        "84912345678",
        "8079",
    )
    assert body.startswith(f"id:{first.id} sub:001 dlvrd:001 submit date:") and "DELIVRD" in body


def test_a_resend_within_the_window_is_stored_as_a_duplicate_of_the_first(
    engine: Engine, clock: FixedClock
) -> None:
    [first] = store_messages(engine, [new_message(clock)], WINDOW, clock.now())
    clock.advance(seconds=60)
    [again, other] = store_messages(
        engine, [new_message(clock), new_message(clock, "e" * 64)], WINDOW, clock.now()
    )

    assert again == StoredMessage(again.id, first.id) and again.message_id == first.message_id
    assert other.duplicate_of is None
    assert sorted(states(engine)) == ["duplicate", "stored", "stored"]


@pytest.mark.parametrize(
    "db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_the_same_message_stored_by_two_instances_at_once_is_stored_once(
    engine: Engine, clock: FixedClock
) -> None:
    results: list[StoredMessage] = []

    def instance() -> None:
        results.extend(store_messages(engine, [new_message(clock)], WINDOW, clock.now()))

    threads = [threading.Thread(target=instance, daemon=True) for _ in range(2)]
    # Inserts wait while the table is share-locked; lookups do not. So both instances get as
    # far as they can (each its lookup, unless something makes the second wait for the
    # first) before either may insert.
    with engine.connect() as blocker:
        with blocker.begin():
            blocker.exec_driver_sql("LOCK TABLE inbound IN SHARE MODE")
            for thread in threads:
                thread.start()
            waiting_for_locks(engine, 2)
        for thread in threads:
            thread.join(10.0)
            assert not thread.is_alive()

    assert sorted(r.duplicate_of is None for r in results) == [False, True]
    assert states(engine) == ["stored", "duplicate"]


def waiting_for_locks(engine: Engine, count: int) -> None:
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with engine.connect() as connection:
        for _ in range(1000):
            waiting = connection.scalar(query)
            connection.rollback()  # the statistics are a snapshot per transaction
            if waiting == count:
                return
            threading.Event().wait(0.01)
    raise AssertionError(f"{count} transactions never waited for locks")
