"""Crash safety with a real process: ``kill -9`` loses nothing acknowledged, resets nothing twice.

The gateway runs as ``vssid-gateway run`` in its own process. A telco binds a transmitter (to
send the citizens' messages) and a receiver that takes our deliver_sm but never answers them.
The mismatches go first; the valid resets go last, with an Argon2 cost that keeps them busy for
about a second after they are acknowledged. So at the moment of the kill a full window of
replies is in flight, the other mismatch replies are queued, the resets are stored but not yet
decided, and nothing has been confirmed delivered. After a restart and a new transceiver bind,
every acknowledged message must get its reply. The replies that were in flight may arrive a
second time (the telco never confirmed them), but they are the same reply; every valid account
is reset exactly once and the password in its reply is the one whose hash is stored.

The database tests take PostgreSQL away under a running gateway: no message may be
acknowledged while it is down (the peer gets ESME_RTHROTTLED and resends later, as telcos do),
and acknowledgements resume once it is back; and messages acknowledged just before it went
down, while their resets were being decided, are answered once it is back, each reset once.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import argon2
import pytest
import smpplib.client
import sqlalchemy as sa

from gateway.esme import Esme, ReceivedReply
from smpp.codec import Status
from store.db import create_engine
from store.models import AccountRow, InboundRow, OutboxEventRow, OutboxRow, ResetEventRow
from tests.support.processes import (
    PEER,
    PEER_PASSWORD,
    GatewayConfig,
    GatewayProcess,
    free_port,
    prepare_database,
    scratch_postgresql,
    wait_until,
)

pytestmark = pytest.mark.slow

WAIT = 20.0
WINDOW = 8
RESETS = 12
MESSAGES = 48
SLOW_ARGON2 = (8192, 40)  # about 0.16 s a hash: the resets are still being decided at the kill
MISMATCH = (
    "So dien thoai va ma so BHXH khong khop hoac chua dang ky giao dich dien tu voi co quan BHXH"
)
SUCCESS = re.compile(r"^Cap lai mat khau thanh cong\. Tai khoan: (\d{10})/Mat khau: (\d{8})$")


def code(index: int) -> str:
    return f"{7000000000 + index}"


def national(index: int) -> str:
    return f"0901{index:06d}"


def international(index: int) -> str:
    return f"84901{index:06d}"


def text(index: int) -> str:
    """The first RESETS citizens ask for their own account; the others name a neighbour's."""
    return f"BH MK {code(index if index < RESETS else (index + 1) % MESSAGES)}"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    prepare_database(url, [(code(i), national(i)) for i in range(MESSAGES)])
    config = GatewayConfig(
        url, free_port(), instance="crash-test", window=WINDOW, argon2=SLOW_ARGON2
    )
    process = GatewayProcess(config, tmp_path)
    try:
        yield process
    finally:
        process.close()


class SilentReceiver:
    """A receiver bind that takes deliver_sm and never answers: every one stays in flight."""

    def __init__(self, port: int) -> None:
        self.client: Any = smpplib.client.Client(
            "127.0.0.1", port, timeout=WAIT, allow_unknown_opt_params=True
        )
        self.client.connect()
        self.client.bind_receiver(system_id=PEER, password=PEER_PASSWORD)
        self.received: list[tuple[str, bytes]] = []

    def read(self, count: int) -> None:
        while len(self.received) < count:
            pdu = self.client.read_pdu()
            assert pdu.command == "deliver_sm", pdu.command
            self.received.append((pdu.destination_addr.decode(), bytes(pdu.short_message)))

    def close(self) -> None:
        self.client.disconnect()


def test_acknowledged_messages_get_their_reply_after_kill_9_and_no_reset_happens_twice(
    gateway: GatewayProcess,
) -> None:
    gateway.start()
    receiver = SilentReceiver(gateway.port)
    sender = Esme("127.0.0.1", gateway.port, PEER, PEER_PASSWORD, bind="transmitter", timeout=WAIT)
    try:
        for index in range(RESETS, MESSAGES):
            sender.submit(international(index), text(index))
        assert sender.wait(acks=MESSAGES - RESETS, timeout=WAIT)
        receiver.read(WINDOW)  # the window is now full: these replies are in flight
        for index in range(RESETS):
            sender.submit(international(index), text(index))
        assert sender.wait(acks=MESSAGES, timeout=WAIT)
        assert gateway.kill() == -9
    finally:
        sender.client.disconnect()
        receiver.close()
    acknowledged = {status for status, _, _ in sender.acks.values()}
    message_ids = {message_id for _, message_id, _ in sender.acks.values()}
    assert acknowledged == {Status.ESME_ROK} and len(message_ids) == MESSAGES

    engine = create_engine(gateway.config.database_url, pool_size=1)
    try:
        at_crash = _outbox_states(engine)
        assert at_crash == {"sending": WINDOW, "queued": MESSAGES - RESETS - WINDOW}
        assert _inbound_states(engine) == {"handled": MESSAGES - RESETS, "stored": RESETS}
        in_flight = {destination for destination, _ in receiver.received}
        assert len(in_flight) == WINDOW

        gateway.start()
        telco = Esme("127.0.0.1", gateway.port, PEER, PEER_PASSWORD, timeout=WAIT)
        try:
            _read_until_all_delivered(telco, engine)
        finally:
            telco.close()
        replies = telco.replies
        _check_database(engine, message_ids, replies)
        resent = _resent(engine)
    finally:
        engine.dispose()

    per_citizen = Counter(reply.destination for reply in replies)
    assert per_citizen == Counter(international(i) for i in range(MESSAGES))
    for index in range(MESSAGES):
        [reply] = [r for r in replies if r.destination == international(index)]
        if index < RESETS:
            match = SUCCESS.match(reply.text)
            assert match is not None and match.group(1) == code(index)
        else:
            assert reply.text == MISMATCH
    # What was in flight went out again, unchanged (same password: still the one reset).
    first_copy = {destination: body for destination, body in receiver.received}
    for reply in replies:
        if reply.destination in first_copy:
            assert reply.text.encode("ascii") == first_copy[reply.destination]
    duplicates = len(receiver.received) + len(replies) - MESSAGES
    assert duplicates <= WINDOW and set(resent) == in_flight


def _read_until_all_delivered(telco: Esme, engine: sa.Engine) -> None:
    """Answer deliver_sm until every reply is recorded as acknowledged: after that, nothing
    can be sent again, so whatever the gateway sent has been read here."""
    deadline = time.monotonic() + WAIT
    while _outbox_states(engine) != {"acknowledged": MESSAGES}:
        assert time.monotonic() < deadline, _outbox_states(engine)
        telco.wait(replies=len(telco.replies) + 1, timeout=0.2)


def _outbox_states(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(OutboxRow.state, sa.func.count()).group_by(OutboxRow.state)
        )
        return {state: count for state, count in rows}


def _inbound_states(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return Counter(connection.execute(sa.select(InboundRow.state)).scalars())


def _check_database(engine: sa.Engine, message_ids: set[str], replies: list[ReceivedReply]) -> None:
    hasher = argon2.PasswordHasher()
    passwords = {}
    for reply in replies:
        match = SUCCESS.match(reply.text)
        if match:
            passwords[match.group(1)] = match.group(2)
    with engine.connect() as connection:
        events = connection.execute(
            sa.select(ResetEventRow.correlation_id, ResetEventRow.outcome, ResetEventRow.code)
        ).all()
        hashes = dict(
            connection.execute(
                sa.select(AccountRow.ma_so_bhxh, AccountRow.password_hash).where(
                    AccountRow.password_hash.is_not(None)
                )
            ).all()
        )
    assert _inbound_states(engine) == {"handled": MESSAGES}
    assert sorted(e.correlation_id for e in events) == sorted(message_ids)  # one decision each
    resets = Counter(e.code for e in events if e.outcome == "reset")
    assert resets == Counter(code(i) for i in range(RESETS))  # each valid account reset once
    assert set(hashes) == set(passwords) == {code(i) for i in range(RESETS)}
    for account, password_hash in hashes.items():  # the password we sent is the one stored
        assert password_hash is not None and hasher.verify(password_hash, passwords[account])


def _resent(engine: sa.Engine) -> list[str]:
    """Destinations of replies claimed (sent) more than once."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(OutboxRow.to_address)
            .join(OutboxEventRow, OutboxEventRow.outbox_id == OutboxRow.id)
            .where(OutboxEventRow.state == "sending")
            .group_by(OutboxRow.to_address)
            .having(sa.func.count() > 1)
        )
        return list(rows.scalars())


# -- the database goes away -------------------------------------------------------------------


@pytest.fixture
def postgres_gateway(tmp_path: Path) -> Iterator[tuple[GatewayProcess, str]]:
    with scratch_postgresql() as url:
        prepare_database(url, [(code(i), national(i)) for i in range(RESETS)])
        config = GatewayConfig(
            url, free_port(), instance="db-down-test", window=WINDOW, argon2=SLOW_ARGON2
        )
        process = GatewayProcess(config, tmp_path)
        try:
            yield process, url
        finally:
            process.close()


def _database_available(url: str, available: bool) -> None:
    """Take the gateway's database away the way a server shutdown does, or give it back.

    ``ALLOW_CONNECTIONS false`` refuses every new connection to that database (superusers
    included) and ``pg_terminate_backend`` cuts the open ones, exactly what the gateway's
    sessions see when PostgreSQL stops; the shared server and its other databases stay up.
    """
    name = sa.make_url(url).database
    admin = sa.create_engine(
        sa.make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect() as connection:
            flag = "true" if available else "false"
            connection.exec_driver_sql(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {flag}')
            if not available:
                connection.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
    finally:
        admin.dispose()


@pytest.mark.postgres
def test_no_acknowledgement_while_the_database_is_down_and_acknowledgements_once_it_is_back(
    postgres_gateway: tuple[GatewayProcess, str],
) -> None:
    gateway, url = postgres_gateway
    gateway.start()
    telco = Esme("127.0.0.1", gateway.port, PEER, PEER_PASSWORD, timeout=WAIT)
    try:
        first = telco.submit(international(0), text(0))
        assert telco.wait(acks=1, replies=1, timeout=WAIT)
        assert telco.acks[first][0] == Status.ESME_ROK

        _database_available(url, False)
        refused = [telco.submit(international(1), text(1)) for _ in range(3)]
        assert telco.wait(acks=4, timeout=WAIT)
        assert [telco.acks[s][0] for s in refused] == [Status.ESME_RTHROTTLED] * 3

        _database_available(url, True)

        def resend() -> int | None:  # a telco pauses after ESME_RTHROTTLED, then resends
            sequence = telco.submit(international(1), text(1))
            assert telco.wait(acks=len(telco.acks) + 1, timeout=WAIT)
            status = telco.acks[sequence][0]
            assert status in (Status.ESME_ROK, Status.ESME_RTHROTTLED)
            return sequence if status == Status.ESME_ROK else None

        accepted = wait_until(resend, WAIT, "an acknowledgement after the database is back", 0.5)
        assert telco.wait(replies=2, timeout=WAIT)
    finally:
        telco.close()

    assert [reply.destination for reply in telco.replies] == [international(0), international(1)]
    engine = create_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            stored = connection.execute(
                sa.select(InboundRow.id, InboundRow.source_addr).order_by(InboundRow.id)
            ).all()
    finally:
        engine.dispose()
    # Only what was acknowledged is stored: nothing was written for the refused attempts.
    assert [row.source_addr for row in stored] == [international(0), international(1)]
    assert str(stored[1].id) == telco.acks[accepted][1]


@pytest.mark.postgres
def test_messages_stored_before_the_database_went_down_are_answered_once_it_is_back(
    postgres_gateway: tuple[GatewayProcess, str],
) -> None:
    gateway, url = postgres_gateway
    gateway.start()
    telco = Esme("127.0.0.1", gateway.port, PEER, PEER_PASSWORD, timeout=WAIT)
    try:
        for index in range(RESETS):  # valid resets: Argon2 keeps them ~1 s in the deciding
            telco.submit(international(index), text(index))
        assert telco.wait(acks=RESETS, timeout=WAIT)
        _database_available(url, False)  # the decisions cannot be recorded now
        assert {status for status, _, _ in telco.acks.values()} == {Status.ESME_ROK}
        assert not telco.wait(replies=1, timeout=2.0)  # nothing can be answered meanwhile
        _database_available(url, True)
        assert telco.wait(replies=RESETS, timeout=WAIT)
        assert not telco.wait(replies=RESETS + 1, timeout=1.0)
    finally:
        telco.close()

    assert sorted(reply.destination for reply in telco.replies) == sorted(
        international(i) for i in range(RESETS)
    )
    assert all(SUCCESS.match(reply.text) for reply in telco.replies)
    engine = create_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            resets = Counter(
                connection.execute(
                    sa.select(ResetEventRow.code).where(ResetEventRow.outcome == "reset")
                ).scalars()
            )
    finally:
        engine.dispose()
    assert resets == Counter(code(i) for i in range(RESETS))
