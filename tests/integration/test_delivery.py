"""The outbox's claims, results, releases and expiry against real databases.

Several instances may share PostgreSQL, so each write must hold even when another instance
changes the same rows at the same moment: the race tests hold a conflicting transaction open,
let the function under test block on its row lock, then commit the conflicting change and
check that it is not overwritten.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from commands.ports import QueuedReply, SmsRoute
from store.db import session_factory
from store.delivery import (
    ACKNOWLEDGED,
    QUEUED,
    SENDING,
    DeliveryOutcome,
    claim_replies,
    expire_replies,
    finish_replies,
    release_claims,
)
from store.models import OutboxEventRow, OutboxRow
from store.repos import SqlOutbox
from tests.support.clock import FixedClock

PEER = "viettel"
LEASE = timedelta(seconds=60)


def queue(
    engine: Engine, count: int, at: datetime, expiry: timedelta = timedelta(hours=24)
) -> None:
    replies = [
        QueuedReply(
            SmsRoute(PEER, f"8491234{i:04d}", 1, 1, "8079", in_reply_to=str(i)),
            "Mat khau: 12345678",
            "Mat khau: ********",
            at,
        )
        for i in range(1, count + 1)
    ]
    with session_factory(engine)() as session:
        SqlOutbox(session, expiry).enqueue_many(replies)
        session.commit()


def states(engine: Engine) -> dict[int, tuple[str, str | None]]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(OutboxRow.id, OutboxRow.state, OutboxRow.claimed_by))
        return {row.id: (row.state, row.claimed_by) for row in rows}


def events(engine: Engine) -> list[tuple[int, str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                OutboxEventRow.outbox_id, OutboxEventRow.state, OutboxEventRow.detail
            ).order_by(OutboxEventRow.id)
        )
        return [(row.outbox_id, row.state, row.detail) for row in rows]


def test_only_claims_whose_lease_ran_out_go_back_to_the_queue(
    engine: Engine, clock: FixedClock
) -> None:
    queue(engine, 3, clock.now())
    [dead] = claim_replies(engine, PEER, "dead", 1, clock.now(), timedelta(seconds=5))
    [alive] = claim_replies(engine, PEER, "alive", 1, clock.now(), timedelta(minutes=5))
    clock.advance(seconds=6)

    released = release_claims(engine, clock.now())

    assert released == [(dead.id, PEER)]
    assert states(engine)[dead.id] == (QUEUED, None)
    assert states(engine)[alive.id] == (SENDING, "alive")
    assert (dead.id, QUEUED, "claim released") in events(engine)
    assert release_claims(engine, clock.now()) == []  # nothing twice
    claimed = claim_replies(engine, PEER, "survivor", 5, clock.now(), LEASE)
    assert dead.id in {reply.id for reply in claimed}


def test_a_restarting_instance_releases_all_its_own_claims(
    engine: Engine, clock: FixedClock
) -> None:
    queue(engine, 2, clock.now())
    [mine] = claim_replies(engine, PEER, "me", 1, clock.now(), LEASE)
    [other] = claim_replies(engine, PEER, "other", 1, clock.now(), LEASE)

    assert release_claims(engine, clock.now(), "me") == [(mine.id, PEER)]
    assert states(engine)[other.id] == (SENDING, "other")


def test_expired_claims_can_be_released_but_for_one_instances(
    engine: Engine, clock: FixedClock
) -> None:
    queue(engine, 2, clock.now())
    [mine] = claim_replies(engine, PEER, "me", 1, clock.now(), LEASE)
    [dead] = claim_replies(engine, PEER, "dead", 1, clock.now(), LEASE)
    clock.advance(seconds=90)

    assert release_claims(engine, clock.now(), keep="me") == [(dead.id, PEER)]
    assert states(engine)[mine.id] == (SENDING, "me")


def test_results_are_written_only_for_claims_still_ours(engine: Engine, clock: FixedClock) -> None:
    queue(engine, 3, clock.now())
    first, second, third = claim_replies(engine, PEER, "me", 3, clock.now(), LEASE)
    release_claims(engine, clock.now(), "me")
    claim_replies(engine, PEER, "other", 1, clock.now(), LEASE)  # takes over the first
    claim_replies(engine, PEER, "me", 2, clock.now(), LEASE)  # the other two are mine again
    retry = clock.now() + timedelta(seconds=30)
    outcomes = [
        DeliveryOutcome(first.id, ACKNOWLEDGED, 0, "delivered"),
        DeliveryOutcome(second.id, ACKNOWLEDGED, 0, "delivered"),
        DeliveryOutcome(third.id, QUEUED, 0x58, "status 0x58", retry_at=retry),
    ]

    written = finish_replies(engine, PEER, "me", outcomes, clock.now())

    assert written == [second.id, third.id]
    assert states(engine) == {
        first.id: (SENDING, "other"),
        second.id: (ACKNOWLEDGED, None),
        third.id: (QUEUED, None),
    }
    table = OutboxRow.__table__
    with engine.connect() as connection:
        row = connection.execute(sa.select(table).where(table.c.id == third.id)).one()
        done = connection.execute(sa.select(table).where(table.c.id == second.id)).one()
    assert row.last_status == 0x58 and row.next_attempt_at == retry
    assert done.body == "Mat khau: ********"


def test_an_acknowledgement_settles_a_reply_released_meanwhile_and_not_claimed_again(
    engine: Engine, clock: FixedClock
) -> None:
    queue(engine, 2, clock.now())
    first, second = claim_replies(engine, PEER, "me", 2, clock.now(), LEASE)
    clock.advance(seconds=90)  # the database was down past the lease: both are released ...
    assert len(release_claims(engine, clock.now())) == 2
    claim_replies(engine, PEER, "other", 1, clock.now(), LEASE)  # ... the first claimed again
    outcomes = [DeliveryOutcome(r.id, ACKNOWLEDGED, 0, "delivered") for r in (first, second)]

    written = finish_replies(engine, PEER, "me", outcomes, clock.now())

    assert written == [second.id]  # the second is not sent again; the first is the other's
    assert states(engine) == {first.id: (SENDING, "other"), second.id: (ACKNOWLEDGED, None)}
    assert claim_replies(engine, PEER, "other", 5, clock.now(), LEASE) == []


def test_only_queued_replies_past_their_expiry_expire(engine: Engine, clock: FixedClock) -> None:
    queue(engine, 2, clock.now(), expiry=timedelta(hours=1))
    [sending] = claim_replies(engine, PEER, "me", 1, clock.now(), LEASE)
    clock.advance(hours=1)

    expired = expire_replies(engine, clock.now())

    assert [(peer, kind) for _, peer, kind in expired] == [(PEER, "reply")]
    assert expired[0][0] != sending.id
    assert states(engine)[sending.id] == (SENDING, "me")


# -- races between instances (PostgreSQL: READ COMMITTED, row locks) ----------------------


@contextmanager
def held(engine: Engine, statement: str, **params: Any) -> Iterator[Callable[[], None]]:
    """A transaction of 'another instance' that changed rows and holds their locks until the
    ``commit`` it yields is called."""
    connection = engine.connect()
    transaction = connection.begin()
    connection.execute(sa.text(statement), params)
    try:
        yield transaction.commit
    finally:
        if transaction.is_active:
            transaction.rollback()
        connection.close()


def blocked_on_a_lock(engine: Engine, thread: threading.Thread) -> None:
    """Wait (bounded) until some backend waits for a row lock: the function under test."""
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with engine.connect() as connection:
        for _ in range(1000):
            waiting = connection.scalar(query)
            connection.rollback()  # the statistics are a snapshot per transaction
            if waiting:
                return
            assert thread.is_alive(), "finished without waiting for the lock"
            thread.join(0.01)
    raise AssertionError("the function under test never waited for the lock")


def race(engine: Engine, statement: str, function: Callable[[], Any], **params: Any) -> Any:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(function()), daemon=True)
    with held(engine, statement, **params) as commit:
        thread.start()
        blocked_on_a_lock(engine, thread)
        commit()
    thread.join(10.0)
    assert not thread.is_alive()
    return result[0]


ON_POSTGRESQL = pytest.mark.parametrize(
    "db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


@ON_POSTGRESQL
def test_releasing_an_expired_claim_does_not_undo_a_result_its_owner_commits_meanwhile(
    engine: Engine, clock: FixedClock
) -> None:
    queue(engine, 1, clock.now())
    [reply] = claim_replies(engine, PEER, "slow", 1, clock.now(), timedelta(seconds=5))
    clock.advance(seconds=6)
    owner_settles = (
        "UPDATE outbox SET state = 'acknowledged', claimed_by = NULL, claimed_until = NULL "
        "WHERE id = :id"
    )

    released = race(engine, owner_settles, lambda: release_claims(engine, clock.now()), id=reply.id)

    assert released == []
    assert states(engine)[reply.id] == (ACKNOWLEDGED, None)
    assert [e for e in events(engine) if e[1] == QUEUED] == []


@ON_POSTGRESQL
def test_expiry_does_not_take_a_reply_another_instance_claims_meanwhile(
    engine: Engine, clock: FixedClock
) -> None:
    queue(engine, 1, clock.now(), expiry=timedelta(seconds=10))
    clock.advance(seconds=10)
    other_claims = "UPDATE outbox SET state = 'sending', claimed_by = 'other' WHERE id = :id"
    with engine.connect() as connection:
        reply_id = connection.scalar(sa.select(OutboxRow.id))

    expired = race(engine, other_claims, lambda: expire_replies(engine, clock.now()), id=reply_id)

    assert expired == []
    assert states(engine)[reply_id] == (SENDING, "other")


@ON_POSTGRESQL
def test_a_late_result_does_not_overwrite_a_claim_another_instance_took_over_meanwhile(
    engine: Engine, clock: FixedClock
) -> None:
    queue(engine, 1, clock.now())
    [reply] = claim_replies(engine, PEER, "slow", 1, clock.now(), timedelta(seconds=5))
    other_takes_over = "UPDATE outbox SET claimed_by = 'other' WHERE id = :id"
    outcome = DeliveryOutcome(reply.id, ACKNOWLEDGED, 0, "delivered")

    written = race(
        engine,
        other_takes_over,
        lambda: finish_replies(engine, PEER, "slow", [outcome], clock.now()),
        id=reply.id,
    )

    assert written == []
    assert states(engine)[reply.id] == (SENDING, "other")
