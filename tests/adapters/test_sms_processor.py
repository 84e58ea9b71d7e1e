"""The message processor on a ``Clock``, against real databases: each stored message is decided
once, whatever the orphan scan and other instances do.

The orphan scan (PostgreSQL only: other instances may share the database) reads every row
still ``stored`` after a while, this instance's own backlog included; long messages may be
split across instances. Database calls are real; :class:`tests.support.jobs.Jobs` decides when
they run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from commands.reset import ResetService
from gateway import sms
from gateway.events import HelpReplied, ResetDecided
from gateway.sms import (
    MAX_SUSPECT_DELAY,
    ORPHAN_AGE_SECONDS,
    ORPHAN_SCAN_SECONDS,
    InboundStore,
    MessageProcessor,
    new_message,
)
from smpp.inbound import InboundMessage
from smpp.interfaces import Acknowledgement
from store.inbound import store_messages
from store.models import InboundRow, OutboxRow
from tests.support.clock import FixedClock
from tests.support.sms_stages import BIND, Events, Jobs, message, sms_stages

ON_POSTGRESQL = pytest.mark.parametrize(
    "db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


def store(inbound: InboundStore, jobs: Jobs, *messages: InboundMessage) -> None:
    acks: list[Deferred[Acknowledgement]] = [inbound.message_received(BIND, m) for m in messages]
    jobs.run_all()
    assert all(ack.called for ack in acks)


def decisions(events: Events) -> int:
    """Messages decided (a reset decision or a help reply), as reported to metrics and logs."""
    return sum(isinstance(event, HelpReplied | ResetDecided) for event in events.seen)


def inbound_states(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.execute(sa.select(InboundRow.state).order_by(InboundRow.id)).scalars()
        )


def replies(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(sa.select(sa.func.count()).select_from(OutboxRow)) or 0)




@pytest.fixture
def stages(
    engine: Engine, jobs: Jobs, reset_service: ResetService, clock: FixedClock, reactor: Clock
) -> tuple[InboundStore, MessageProcessor, Events]:
    inbound, processor, events = sms_stages(engine, jobs, reset_service, clock, reactor)
    processor.wake()
    jobs.run_all()  # the backlog from before the start: none
    return inbound, processor, events


def scan_for_orphans(clock: FixedClock, reactor: Clock) -> None:
    """Let the stored rows grow old enough for the orphan scan, and let it run."""
    clock.advance(seconds=ORPHAN_AGE_SECONDS + 1)
    reactor.advance(ORPHAN_SCAN_SECONDS)


@ON_POSTGRESQL
def test_the_orphan_scan_does_not_decide_this_instances_own_messages_a_second_time(
    stages: tuple[InboundStore, MessageProcessor, Events],
    engine: Engine,
    jobs: Jobs,
    clock: FixedClock,
    reactor: Clock,
) -> None:
    inbound, _, events = stages
    store(inbound, jobs, message(b"xin chao"), message(b"chao ban", source="0912000001"))

    scan_for_orphans(clock, reactor)  # the scan reads both rows; they are in memory too
    jobs.run_all()

    assert decisions(events) == 2  # one each, not two each
    assert inbound.backlog == 0 and inbound_states(engine) == ["handled", "handled"]
    assert replies(engine) == 2


@ON_POSTGRESQL
def test_messages_in_memory_survive_an_orphan_scan_that_fails(
    stages: tuple[InboundStore, MessageProcessor, Events],
    engine: Engine,
    jobs: Jobs,
    clock: FixedClock,
    reactor: Clock,
) -> None:
    inbound, _, events = stages
    store(inbound, jobs, message())
    scan_for_orphans(clock, reactor)
    assert jobs.names == ["pending_messages"]
    jobs.fail()  # the database is down for the scan

    reactor.advance(1.0)  # the retry, long before the next scan
    jobs.run_all()

    assert decisions(events) == 1 and inbound_states(engine) == ["handled"]


@ON_POSTGRESQL
def test_the_orphan_scan_skips_messages_waiting_for_a_retry(
    stages: tuple[InboundStore, MessageProcessor, Events],
    engine: Engine,
    jobs: Jobs,
    clock: FixedClock,
    reactor: Clock,
) -> None:
    inbound, processor, events = stages
    store(inbound, jobs, message())
    clock.advance(seconds=ORPHAN_AGE_SECONDS + 1)
    reactor.advance(ORPHAN_SCAN_SECONDS - 0.5)
    processor.wake()
    assert jobs.names == ["_decide"]
    jobs.fail()  # deciding failed: the item waits for the retry, a second from now
    reactor.advance(0.5)  # the orphan scan comes first, and finds the row
    jobs.run_all()

    reactor.advance(1.0)
    jobs.run_all()

    assert decisions(events) == 1 and inbound_states(engine) == ["handled"]


# -- a long message whose parts two instances hold -----------------------------------------

UDH = [b"\x05\x00\x03\x2a\x02\x01", b"\x05\x00\x03\x2a\x02\x02"]


def long_message() -> tuple[InboundMessage, InboundMessage]:
    return (
        message(UDH[0] + b"BH MK 01234", esm_class=0x43),
        message(UDH[1] + b"56789 xin", esm_class=0x43),
    )


@contextmanager
def another_instance_deciding(engine: Engine, part_id: int) -> Iterator[Connection]:
    """Another instance's handle_messages: the row locked for its whole decision."""
    with engine.connect() as connection:
        transaction = connection.begin()
        connection.execute(
            sa.select(InboundRow.id).where(InboundRow.id == part_id).with_for_update()
        ).all()
        try:
            yield connection
        finally:
            if transaction.is_active:
                transaction.rollback()


def stored_ids(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(InboundRow.id).order_by(InboundRow.id)).scalars())


@ON_POSTGRESQL
def test_a_long_message_claimed_only_in_part_waits_for_the_rest_and_is_answered_once(
    stages: tuple[InboundStore, MessageProcessor, Events],
    engine: Engine,
    jobs: Jobs,
    clock: FixedClock,
    reactor: Clock,
) -> None:
    inbound, processor, events = stages
    store(inbound, jobs, *long_message())
    _, second = stored_ids(engine)
    processor.wake()
    assert jobs.names == ["_decide"]
    with another_instance_deciding(engine, second):  # ... and then it dies: rolled back
        jobs.run_all()
    assert inbound_states(engine) == ["stored", "stored"] and replies(engine) == 0

    reactor.advance(1.0)  # the retry
    jobs.run_all()
    scan_for_orphans(clock, reactor)  # nothing comes back as a "late" part either
    jobs.run_all()

    assert inbound_states(engine) == ["handled", "handled"]
    assert decisions(events) == 1 and replies(engine) == 1
    assert inbound.backlog == 0 and jobs.names == []


@ON_POSTGRESQL
def test_when_another_instance_handled_part_of_a_message_the_rest_is_decided_here(
    stages: tuple[InboundStore, MessageProcessor, Events],
    engine: Engine,
    jobs: Jobs,
    clock: FixedClock,
    reactor: Clock,
) -> None:
    inbound, processor, events = stages
    store(inbound, jobs, *long_message())
    _, second = stored_ids(engine)
    processor.wake()
    with another_instance_deciding(engine, second) as other:
        jobs.run_all()  # waits: the other instance is deciding the second part
        other.execute(sa.update(InboundRow).where(InboundRow.id == second).values(state="handled"))
        other.commit()

    reactor.advance(1.0)
    jobs.run_all()
    reactor.advance(5.0)
    jobs.run_all()

    assert inbound_states(engine) == ["handled", "handled"]
    assert decisions(events) == 1 and replies(engine) == 1  # the first part's message, once
    assert inbound.backlog == 0 and jobs.names == []


@ON_POSTGRESQL
def test_when_another_instance_decided_the_first_part_the_rest_is_marked_done_here(
    stages: tuple[InboundStore, MessageProcessor, Events],
    engine: Engine,
    jobs: Jobs,
    reactor: Clock,
) -> None:
    inbound, processor, events = stages
    store(inbound, jobs, *long_message())
    first, _ = stored_ids(engine)
    processor.wake()
    with another_instance_deciding(engine, first) as other:
        jobs.run_all()  # waits: the other instance is deciding the first part
        # ... which it answers alone (its reassembly timed out) under the first part's id
        other.execute(sa.update(InboundRow).where(InboundRow.id == first).values(state="handled"))
        queue_reply(other, in_reply_to=first)
        other.commit()

    reactor.advance(1.0)
    jobs.run_all()

    assert inbound_states(engine) == ["handled", "handled"]
    assert decisions(events) == 0 and replies(engine) == 1  # the other instance's, alone
    assert inbound.backlog == 0 and jobs.names == []


def test_a_message_that_cannot_be_decided_does_not_hold_back_the_others(
    stages: tuple[InboundStore, MessageProcessor, Events],
    engine: Engine,
    jobs: Jobs,
    reactor: Clock,
) -> None:
    inbound, processor, events = stages
    store(inbound, jobs, message(b"BH MK 0123456789"), message(b"hello", source="0987654321"))
    poisoned, fine = stored_ids(engine)
    with engine.begin() as connection:  # a reply already queued for it: its own insert fails
        queue_reply(connection, in_reply_to=poisoned)
    processor.wake()
    jobs.run_all()  # the batch of both fails ...
    reactor.advance(1.0)
    jobs.run_all()  # ... and fails again as a batch: now each is tried alone
    assert inbound_states(engine) == ["stored", "stored"]

    tries = 0
    while fine not in handled_ids(engine) and tries < 5:
        reactor.advance(1.0)
        jobs.run_all()
        tries += 1
    store(inbound, jobs, message(b"BH MK", source="0911111111"))
    processor.wake()
    jobs.run_all()  # a new message is decided in its own batch at once

    assert inbound_states(engine) == ["stored", "handled", "handled"]
    assert replies(engine) == 3 and decisions(events) == 2
    for _ in range(6):  # still tried now and then, alone, less and less often ...
        reactor.advance(MAX_SUSPECT_DELAY)
        jobs.run_all()
    tries = 0
    for _ in range(int(MAX_SUSPECT_DELAY) - 1):  # ... at last once a MAX_SUSPECT_DELAY
        reactor.advance(1.0)
        tries += jobs.names.count("_decide")
        jobs.run_all()
    assert tries <= 1 and inbound_states(engine)[0] == "stored"


def queue_reply(connection: Connection, *, in_reply_to: int) -> None:
    now = datetime.now(UTC)
    row = {
        "peer": "viettel", "to_address": "84912345678", "to_ton": 1, "to_npi": 1,
        "from_address": "8079", "in_reply_to": str(in_reply_to), "body": "help",
        "body_masked": "help", "state": "queued", "created_at": now,
        "next_attempt_at": now, "expires_at": now + timedelta(hours=1), "updated_at": now,
    }  # fmt: skip
    connection.execute(sa.insert(OutboxRow.__table__), row)


def handled_ids(engine: Engine) -> set[int]:
    with engine.connect() as connection:
        return set(
            connection.execute(
                sa.select(InboundRow.id).where(InboundRow.state == "handled")
            ).scalars()
        )


@ON_POSTGRESQL
def test_the_orphan_scan_reaches_rows_behind_a_page_of_this_instances_own(
    stages: tuple[InboundStore, MessageProcessor, Events],
    engine: Engine,
    jobs: Jobs,
    clock: FixedClock,
    reactor: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sms, "MAX_HANDLING_BATCH", 2)
    inbound, processor, events = stages
    waiting = [
        message(b"\x05\x00\x03" + bytes([ref]) + b"\x02\x01BH MK 01234", esm_class=0x43)
        for ref in (1, 2)
    ]  # first parts of two long messages: held here, waiting for their second parts
    store(inbound, jobs, *waiting)
    processor.wake()
    jobs.run_all()
    orphan = new_message("viettel", message(b"xin chao", source="0912000009"), clock.now())
    store_messages(engine, [orphan], timedelta(seconds=120), clock.now())  # another instance's

    for _ in range(2):  # the first scan's page is this instance's own two rows
        scan_for_orphans(clock, reactor)
        jobs.run_all()

    assert decisions(events) == 1 and inbound_states(engine)[2] == "handled"


def test_after_a_long_restart_a_message_spread_over_backlog_pages_is_joined(
    engine: Engine,
    jobs: Jobs,
    reset_service: ResetService,
    clock: FixedClock,
    reactor: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before, _, _ = sms_stages(engine, jobs, reset_service, clock, reactor)
    udh = [b"\x05\x00\x03\x2b\x03" + bytes([n]) for n in (1, 2, 3)]
    store(before, jobs, *(message(h + t, esm_class=0x43) for h, t in
                          zip(udh, (b"BH MK 012", b"345", b"6789"), strict=True)))  # fmt: skip
    clock.advance(seconds=3600)  # down for an hour: every part is long past its time
    reactor.advance(clock.now().timestamp() - reactor.seconds())  # one time, as in the gateway
    monkeypatch.setattr(sms, "MAX_HANDLING_BATCH", 2)  # the backlog comes in two pages

    inbound, processor, events = sms_stages(engine, jobs, reset_service, clock, reactor)
    inbound.load_backlog()
    jobs.run_all()
    processor.wake()
    jobs.run_all()

    assert decisions(events) == 1 and inbound_states(engine) == ["handled"] * 3
    (decided,) = [e for e in events.seen if isinstance(e, ResetDecided)]
    assert decided.code == "0123456789"  # the whole text, not its first page
