"""Two gateway processes on one PostgreSQL database: every citizen gets exactly one reply.

This is how the service scales past one machine: several ``vssid-gateway run`` processes share
the database, and a telco binds to each of them. Messages arrive on either bind; a reply may go
out on either (any live bind of the peer, on any instance), but only through the instance that
claimed it in the outbox (``FOR UPDATE SKIP LOCKED``). Real processes, because the claims,
leases and the handling of stored messages are only meaningful between separate processes with
separate connection pools.

1,000 messages, half on each bind, each from its own number; most are mismatches (so Argon2
does not dominate the run), every twentieth a valid reset.

The second test kills one instance with ``kill -9`` while the messages it acknowledged are
still being decided: the other instance finds them (rows stored more than a few seconds ago
that nobody handled) and answers them, once each, over its own bind.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.esme import Esme
from gateway.sms import ORPHAN_AGE_SECONDS, ORPHAN_SCAN_SECONDS
from smpp.codec import Status
from store.db import create_engine
from store.models import InboundRow, OutboxEventRow, OutboxRow, ResetEventRow
from tests.support.processes import (
    PEER,
    PEER_PASSWORD,
    GatewayConfig,
    GatewayProcess,
    free_port,
    gateway_processes,
    prepare_database,
    scratch_postgresql,
    wait_until,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

MESSAGES = 1000
RESET_EVERY = 20
WAIT = 40.0
INSTANCES = ("instance-a", "instance-b")
MISMATCH = (
    "So dien thoai va ma so BHXH khong khop hoac chua dang ky giao dich dien tu voi co quan BHXH"
)
SUCCESS = re.compile(r"^Cap lai mat khau thanh cong\. Tai khoan: (\d{10})/Mat khau: \d{8}$")


def code(index: int) -> str:
    return f"{6000000000 + index}"


def national(index: int) -> str:
    return f"0912{index:06d}"


def international(index: int) -> str:
    return f"84912{index:06d}"


def is_reset(index: int) -> bool:
    return index % RESET_EVERY == 0


def text(index: int) -> str:
    return f"BH MK {code(index if is_reset(index) else (index + 1) % MESSAGES)}"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[str, tuple[GatewayProcess, ...]]]:
    with scratch_postgresql() as url:
        prepare_database(url, [(code(i), national(i)) for i in range(MESSAGES)])
        _record_handling(url)
        gateways = [
            GatewayProcess(
                GatewayConfig(url, free_port(), instance=name, window=50, pool_size=4),
                tmp_path,
                name,
            )
            for name in INSTANCES
        ]
        with gateway_processes(*gateways) as running:
            for gateway in running:
                gateway.launch()
            for gateway in running:
                gateway.wait_ready()
            yield url, running


class Telco(threading.Thread):
    """One transceiver bind: sends its share of the messages, then answers deliver_sm until told
    to stop. Runs in its own thread because replies may arrive on either bind."""

    def __init__(self, port: int, indices: list[int]) -> None:
        super().__init__(daemon=True)
        self.esme = Esme("127.0.0.1", port, PEER, PEER_PASSWORD, timeout=WAIT)
        self.indices = indices
        self.sequences: dict[int, int] = {}
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for index in self.indices:
                self.sequences[self.esme.submit(international(index), text(index))] = index
            while not self.stop.is_set():
                self.esme.wait(replies=len(self.esme.replies) + 1, timeout=0.1)
        except BaseException as error:  # reported by the test thread
            self.error = error

    def finish(self) -> None:
        self.stop.set()
        self.join(WAIT)
        assert not self.is_alive()
        self.esme.close()
        if self.error is not None:
            raise self.error


def test_two_instances_sharing_postgresql_give_every_citizen_exactly_one_reply(
    cluster: tuple[str, tuple[GatewayProcess, ...]],
) -> None:
    url, gateways = cluster
    telcos = [
        Telco(gateway.port, list(range(number, MESSAGES, len(gateways))))
        for number, gateway in enumerate(gateways)
    ]
    engine = create_engine(url, pool_size=1)
    try:
        for telco in telcos:
            telco.start()
        try:
            wait_until(lambda: _all_acknowledged(engine), WAIT, "every reply acknowledged", 0.2)
        finally:
            for telco in telcos:
                telco.finish()
        stored_per_instance, sent_per_instance = _check_database(engine, telcos)
    finally:
        engine.dispose()

    replies = [reply for telco in telcos for reply in telco.esme.replies]
    assert Counter(reply.destination for reply in replies) == Counter(
        international(i) for i in range(MESSAGES)
    )
    for reply in replies:
        index = int(reply.destination[-6:])
        if is_reset(index):
            match = SUCCESS.match(reply.text)
            assert match is not None and match.group(1) == code(index)
        else:
            assert reply.text == MISMATCH
    # Both binds carried messages in and both instances delivered replies out.
    assert all(len(telco.esme.replies) > 0 for telco in telcos)
    assert set(sent_per_instance) == set(INSTANCES)
    assert stored_per_instance == [MESSAGES // len(gateways)] * len(gateways)


def _record_handling(url: str) -> None:
    """Instrument the scratch database: a trigger logs every time a stored message is marked
    handled, so that handling a message twice (even with the same outcome) shows."""
    engine = create_engine(url, pool_size=1)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE handling_log (inbound_id bigint)")
            connection.exec_driver_sql(
                "CREATE FUNCTION log_handling() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN INSERT INTO handling_log VALUES (NEW.id); RETURN NEW; END $$"
            )
            connection.exec_driver_sql(
                "CREATE TRIGGER inbound_handled AFTER UPDATE OF state ON inbound FOR EACH ROW "
                "WHEN (NEW.state = 'handled') EXECUTE FUNCTION log_handling()"
            )
    finally:
        engine.dispose()


def _all_acknowledged(engine: sa.Engine) -> bool:
    with engine.connect() as connection:
        states = dict(
            connection.execute(
                sa.select(OutboxRow.state, sa.func.count()).group_by(OutboxRow.state)
            ).all()
        )
    return states == {"acknowledged": MESSAGES}


def _check_database(engine: sa.Engine, telcos: list[Telco]) -> tuple[list[int], Counter[str]]:
    acks = {
        telco.sequences[sequence]: (status, message_id)
        for telco in telcos
        for sequence, (status, message_id, _) in telco.esme.acks.items()
    }
    assert len(acks) == MESSAGES
    assert {status for status, _ in acks.values()} == {Status.ESME_ROK}
    message_ids = {message_id for _, message_id in acks.values()}
    with engine.connect() as connection:
        inbound = connection.execute(sa.select(InboundRow.id, InboundRow.state)).all()
        decisions = connection.execute(
            sa.select(ResetEventRow.correlation_id, ResetEventRow.outcome)
        ).all()
        replies = connection.execute(sa.select(OutboxRow.id, OutboxRow.in_reply_to)).all()
        events = connection.execute(
            sa.select(OutboxEventRow.outbox_id, OutboxEventRow.state, OutboxEventRow.detail)
        ).all()
        handled = Counter(
            connection.exec_driver_sql("SELECT inbound_id FROM handling_log").scalars()
        )
    assert {str(row.id) for row in inbound} == message_ids
    assert Counter(row.state for row in inbound) == {"handled": MESSAGES}
    assert Counter(handled.values()) == {1: MESSAGES}  # each message was handled once
    # One decision and one reply per message (the unique indexes make more impossible; these
    # say none is missing).
    assert sorted(d.correlation_id for d in decisions) == sorted(message_ids)
    assert Counter(d.outcome for d in decisions) == {
        "reset": MESSAGES // RESET_EVERY,
        "mismatch": MESSAGES - MESSAGES // RESET_EVERY,
    }
    assert sorted(r.in_reply_to for r in replies) == sorted(message_ids)
    # Each reply was claimed (sent) once, by one instance, and acknowledged once.
    transitions = Counter((e.outbox_id, e.state) for e in events)
    assert set(transitions.values()) == {1}
    assert Counter(state for _, state in transitions) == {
        "sending": MESSAGES,
        "acknowledged": MESSAGES,
    }
    sent_by = Counter(e.detail for e in events if e.state == "sending")
    per_bind = [len(telco.indices) for telco in telcos]
    return per_bind, sent_by


# -- an instance dies ------------------------------------------------------------------------

SURVIVOR_WAIT = ORPHAN_AGE_SECONDS + 2 * ORPHAN_SCAN_SECONDS + WAIT / 4
FAILOVER_RESETS = 10
FAILOVER_MESSAGES = 30


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[str, GatewayProcess, GatewayProcess]]:
    with scratch_postgresql() as url:
        prepare_database(url, [(code(i), national(i)) for i in range(FAILOVER_MESSAGES)])
        _record_handling(url)
        doomed = GatewayProcess(
            GatewayConfig(url, free_port(), instance="doomed", argon2=(8192, 40)),
            tmp_path,
            "doomed",
        )
        survivor = GatewayProcess(GatewayConfig(url, free_port(), instance="survivor"), tmp_path)
        with gateway_processes(doomed, survivor):
            doomed.launch()
            survivor.launch()
            doomed.wait_ready()
            survivor.wait_ready()
            yield url, doomed, survivor


def test_messages_an_instance_acknowledged_before_kill_9_are_answered_by_the_other(
    pair: tuple[str, GatewayProcess, GatewayProcess],
) -> None:
    url, doomed, survivor = pair
    # The telco sends through the doomed instance and takes replies from the survivor.
    sender = Esme("127.0.0.1", doomed.port, PEER, PEER_PASSWORD, bind="transmitter", timeout=WAIT)
    receiver = Esme("127.0.0.1", survivor.port, PEER, PEER_PASSWORD, bind="receiver")
    engine = create_engine(url, pool_size=1)
    try:
        for index in range(FAILOVER_RESETS, FAILOVER_MESSAGES):  # mismatches: decided at once
            sender.submit(international(index), _failover_text(index))
        for index in range(FAILOVER_RESETS):  # then resets, ~0.16 s of Argon2 each
            sender.submit(international(index), _failover_text(index))
        assert sender.wait(acks=FAILOVER_MESSAGES, timeout=WAIT)
        assert doomed.kill() == -9
        sender.client.disconnect()
        assert {status for status, _, _ in sender.acks.values()} == {Status.ESME_ROK}
        with engine.connect() as connection:
            left = connection.scalar(sa.select(sa.func.count()).where(InboundRow.state == "stored"))
        assert left  # acknowledged, stored, and not decided when the instance died

        assert receiver.wait(replies=FAILOVER_MESSAGES, timeout=SURVIVOR_WAIT)
        wait_until(lambda: _all_final(engine, FAILOVER_MESSAGES), WAIT, "every reply recorded")
        assert not receiver.wait(replies=FAILOVER_MESSAGES + 1, timeout=0.5)
        with engine.connect() as connection:
            handled = Counter(
                connection.exec_driver_sql("SELECT inbound_id FROM handling_log").scalars()
            )
            resets = Counter(
                connection.execute(
                    sa.select(ResetEventRow.code).where(ResetEventRow.outcome == "reset")
                ).scalars()
            )
    finally:
        receiver.close()
        engine.dispose()

    assert Counter(reply.destination for reply in receiver.replies) == Counter(
        international(i) for i in range(FAILOVER_MESSAGES)
    )
    for reply in receiver.replies:
        index = int(reply.destination[-6:])
        if index < FAILOVER_RESETS:
            match = SUCCESS.match(reply.text)
            assert match is not None and match.group(1) == code(index)
        else:
            assert reply.text == MISMATCH
    assert Counter(handled.values()) == {1: FAILOVER_MESSAGES}
    assert resets == Counter(code(i) for i in range(FAILOVER_RESETS))


def _failover_text(index: int) -> str:
    own = index if index < FAILOVER_RESETS else (index + 1) % FAILOVER_MESSAGES
    return f"BH MK {code(own)}"


def _all_final(engine: sa.Engine, count: int) -> bool:
    with engine.connect() as connection:
        states = dict(
            connection.execute(
                sa.select(OutboxRow.state, sa.func.count()).group_by(OutboxRow.state)
            ).all()
        )
    return states == {"acknowledged": count}
