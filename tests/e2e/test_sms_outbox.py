"""The outbox dispatcher keeps going when one reply, or one peer, is wrong.

Replies are put in the outbox directly (as a reset or help decision queues them), and an
smpplib receiver bound to the gateway on 127.0.0.1 takes them.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest_twisted
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from twisted.internet import reactor, threads
from twisted.internet.defer import Deferred

from commands.ports import QueuedReply, SmsRoute
from gateway.esme import Esme
from gateway.service import Gateway
from smpp.codec import Pdu
from store.db import session_factory
from store.models import OutboxEventRow, OutboxRow
from store.repos import SqlOutbox
from tests.support import smpp_pdus as pdus
from tests.support.gateway import PEER_PASSWORD, gateway_settings, smpp_port, start_gateway
from tests.support.smpp_esme import RawEsme
from tests.support.waiting import until

WAIT = 20.0


def queue(engine: Engine, *replies: tuple[str, str, str, datetime]) -> None:
    """(peer, from_address, text, at) each; ``at`` in the future delays the first try."""
    rows = [
        QueuedReply(
            SmsRoute(peer, f"8491200{i:04d}", 1, 1, source, in_reply_to=str(i)), text, text, at
        )
        for i, (peer, source, text, at) in enumerate(replies)
    ]
    with session_factory(engine)() as session:
        SqlOutbox(session, timedelta(hours=24)).enqueue_many(rows)
        session.commit()


def outbox(engine: Engine) -> list[tuple[str, str]]:
    table = OutboxRow.__table__
    with engine.connect() as connection:
        rows = connection.execute(sa.select(table.c.in_reply_to, table.c.state)).all()
    return sorted((row.in_reply_to, row.state) for row in rows)


def receive(port: int, count: int) -> Esme:
    esme = Esme("127.0.0.1", port, "viettel", PEER_PASSWORD, bind="receiver")
    try:
        assert esme.wait(replies=count, timeout=WAIT)
        assert not esme.wait(replies=count + 1, timeout=0.5)
    finally:
        esme.close()
    return esme


def received(gateway: Gateway, count: int) -> Deferred[Esme]:
    return threads.deferToThread(receive, smpp_port(gateway), count).addTimeout(WAIT + 5, reactor)


@pytest_twisted.async_yield_fixture
async def gateway(db_url: str) -> AsyncIterator[Gateway]:
    service = await start_gateway(gateway_settings(db_url))
    yield service
    await service.stopService()


@pytest_twisted.ensureDeferred
async def test_a_reply_that_cannot_be_encoded_fails_alone_and_the_rest_go_out(
    gateway: Gateway, engine: Engine
) -> None:
    now = datetime.now(UTC)
    queue(
        engine,
        ("viettel", "8079", "first", now),
        ("viettel", "80\u00e979", "from an address that is not ASCII", now),
        ("viettel", "8079", "third", now),
    )

    esme = await received(gateway, 2)

    assert sorted(reply.text for reply in esme.replies) == ["first", "third"]
    final = [("0", "acknowledged"), ("1", "failed"), ("2", "acknowledged")]
    await until(lambda: outbox(engine) == final, WAIT)
    events, replies = OutboxEventRow.__table__, OutboxRow.__table__
    with engine.connect() as connection:
        history = (
            connection.execute(
                sa.select(events.c.state)
                .join(replies, replies.c.id == events.c.outbox_id)
                .where(replies.c.in_reply_to == "1")
                .order_by(events.c.id)
            )
            .scalars()
            .all()
        )
    assert history == ["sending", "failed"]  # tried once, not again and again


@pytest_twisted.ensureDeferred
async def test_replies_for_a_peer_no_longer_configured_do_not_stop_the_others(
    gateway: Gateway, engine: Engine
) -> None:
    now = datetime.now(UTC)
    later = now + timedelta(seconds=1.5)  # due only after the bind: housekeeping sends it
    queue(engine, ("gone", "8079", "for a removed peer", now), ("viettel", "8079", "due", later))
    assert gateway.sms is not None
    gateway.sms.dispatcher.pump("gone")  # what housekeeping does for every peer with replies

    esme = await received(gateway, 1)

    assert [reply.text for reply in esme.replies] == ["due"]
    await until(lambda: outbox(engine) == [("0", "queued"), ("1", "acknowledged")], WAIT)


class HoldingReceiver:
    """A receiver bind that holds its deliver_sm_resp until the gateway unbinds, then answers
    the deliver_sm and the unbind, as a peer whose responses cross our shutdown does."""

    def __init__(self, port: int) -> None:
        self.esme = RawEsme(port)
        self.delivered = threading.Event()

    def run(self) -> list[str]:
        try:
            self.esme.send(pdus.bind("bind_receiver", password=PEER_PASSWORD))
            assert (bound := self.esme.read()) is not None and bound.status == 0
            deliver = self.esme.read()
            assert deliver is not None and deliver.command == "deliver_sm"
            self.delivered.set()
            unbind = self.esme.read()
            assert unbind is not None and unbind.command == "unbind"
            self.esme.send(
                Pdu("deliver_sm_resp", deliver.sequence, 0, {"message_id": b""}),
                Pdu("unbind_resp", unbind.sequence),
            )
            return [pdu.command for pdu in self.esme.read_all()]
        finally:
            self.esme.close()


@pytest_twisted.ensureDeferred
async def test_a_response_that_arrives_while_shutting_down_is_recorded(
    engine: Engine, db_url: str
) -> None:
    queue(engine, ("viettel", "8079", "answered during shutdown", datetime.now(UTC)))
    service = await start_gateway(gateway_settings(db_url))
    receiver = HoldingReceiver(smpp_port(service))
    after_close = threads.deferToThread(receiver.run).addTimeout(WAIT, reactor)
    await until(receiver.delivered.is_set, WAIT)

    await service.stopService()
    await after_close

    assert outbox(engine) == [("0", "acknowledged")]  # not sent again after a restart
