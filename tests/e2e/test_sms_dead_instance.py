"""Replies claimed by an instance that died and never came back still reach the citizen.

An instance that claimed replies (``sending``, with its name and a lease) and died is not
necessarily restarted, or it restarts under another name; its claims must not stay stuck with
their plaintext passwords. Here the dead instance's claims are made exactly as it makes them
(:func:`store.delivery.claim_replies`, with a lease of a couple of seconds; the gateway's own
lease is twice the response time-out plus 30 s, too long for a test), then a live gateway with
another name delivers them once the lease has run out, and leaves alone the claims of an
instance whose lease still runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest_twisted
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from twisted.internet import reactor, threads

from commands.ports import QueuedReply, SmsRoute
from gateway.esme import Esme
from gateway.service import Gateway
from store.db import session_factory
from store.delivery import claim_replies
from store.models import OutboxEventRow, OutboxRow
from store.repos import SqlOutbox
from tests.support.gateway import PEER_PASSWORD, gateway_settings, smpp_port, start_gateway
from tests.support.waiting import until

WAIT = 20.0
DEAD_LEASE = timedelta(seconds=2)


def queue_replies(engine: Engine, count: int) -> None:
    now = datetime.now(UTC)
    replies = [
        QueuedReply(
            SmsRoute("viettel", f"8491200{i:04d}", 1, 1, "8079", in_reply_to=str(i)),
            f"Reply {i}",
            f"Reply {i}",
            now,
        )
        for i in range(count)
    ]
    with session_factory(engine)() as session:
        SqlOutbox(session, timedelta(hours=24)).enqueue_many(replies)
        session.commit()


@pytest_twisted.async_yield_fixture
async def claimed(engine: Engine, db_url: str) -> AsyncIterator[tuple[Gateway, list[int]]]:
    """Three replies claimed by an instance that then died, one by an instance still alive;
    and a running gateway under a third name."""
    queue_replies(engine, 4)
    dead = claim_replies(engine, "viettel", "dead", 3, datetime.now(UTC), DEAD_LEASE)
    claim_replies(engine, "viettel", "alive", 1, datetime.now(UTC), timedelta(hours=1))
    service = await start_gateway(gateway_settings(db_url, instance="survivor"))
    yield service, [reply.id for reply in dead]
    await service.stopService()


def receive(port: int, count: int) -> Esme:
    esme = Esme("127.0.0.1", port, "viettel", PEER_PASSWORD, bind="receiver")
    try:
        assert esme.wait(replies=count, timeout=WAIT)
        assert not esme.wait(replies=count + 1, timeout=0.5)
    finally:
        esme.close()
    return esme


@pytest_twisted.ensureDeferred
async def test_a_dead_instances_claims_are_delivered_by_another_once_their_lease_runs_out(
    claimed: tuple[Gateway, list[int]], engine: Engine
) -> None:
    gateway, dead_ids = claimed

    esme = await threads.deferToThread(receive, smpp_port(gateway), 3).addTimeout(WAIT + 5, reactor)

    assert sorted(reply.text for reply in esme.replies) == ["Reply 0", "Reply 1", "Reply 2"]
    outbox, events = OutboxRow.__table__, OutboxEventRow.__table__

    def acknowledged() -> bool:  # recorded just after the responses
        with engine.connect() as connection:
            states = connection.execute(sa.select(outbox.c.state)).scalars().all()
        return states.count("acknowledged") == 3

    await until(acknowledged, WAIT)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(outbox).order_by(outbox.c.id)).all()
        history = connection.execute(sa.select(events).order_by(events.c.id)).all()
    assert [(row.state, row.claimed_by) for row in rows] == [
        ("acknowledged", None),
        ("acknowledged", None),
        ("acknowledged", None),
        ("sending", "alive"),  # its lease still runs: not ours to take
    ]
    for row in rows[:3]:
        steps = [(e.state, e.detail) for e in history if e.outbox_id == row.id]
        assert steps == [
            ("sending", "dead"),
            ("queued", "claim released"),
            ("sending", "survivor"),
            ("acknowledged", "delivered"),
        ]
        released = next(e.at for e in history if e.outbox_id == row.id and e.state == "queued")
        claimed_at = next(e.at for e in history if e.outbox_id == row.id)
        assert released >= claimed_at + DEAD_LEASE  # not before the lease ran out
    assert {row.id for row in rows[:3]} == set(dead_ids)
