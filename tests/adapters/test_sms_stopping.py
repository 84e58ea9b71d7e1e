"""Stopping the SMS stages leaves nothing behind: no timer, no loop, no work started later.

The message processor and the outbox dispatcher run on a ``Clock``; their blocking work goes
to :class:`Jobs`, which stands in for the worker pool so that each test decides when (and how)
a database call returns. The database calls themselves are the real ones, on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from twisted.internet.task import Clock

from commands.reset import ResetService
from gateway.outbox import OutboxDispatcher
from gateway.sms import MessageProcessor
from smpp.codec import Pdu, encode
from smpp.protocol import SmppListener
from store.delivery import ClaimedReply
from tests.support.clock import FixedClock
from tests.support.smpp_fakes import RecordingHandler, connect, written
from tests.support.smpp_pdus import bind, settings
from tests.support.sms_stages import Events, Jobs, sms_stages


@pytest.fixture
def processor(
    engine: Engine, jobs: Jobs, reset_service: ResetService, clock: FixedClock, reactor: Clock
) -> MessageProcessor:
    return sms_stages(engine, jobs, reset_service, clock, reactor)[1]


def test_a_stopped_processor_does_not_start_again_when_woken(
    processor: MessageProcessor, jobs: Jobs, reactor: Clock
) -> None:
    processor.wake()
    jobs.run_all()  # the backlog at start-up: none
    stopped = processor.stop()

    processor.wake()  # a commit that ends after the stop wakes it, as every commit does

    assert stopped.called
    assert jobs.names == [] and reactor.getDelayedCalls() == []


def test_a_failed_batch_is_retried_a_second_later_but_not_after_a_stop(
    processor: MessageProcessor, jobs: Jobs, reactor: Clock
) -> None:
    processor.wake()
    jobs.fail()
    assert any(call.getTime() == 1.0 for call in reactor.getDelayedCalls())

    processor.stop()

    assert reactor.getDelayedCalls() == []
    reactor.advance(5.0)
    assert jobs.names == []


def test_stop_waits_for_the_batch_in_progress_and_nothing_is_armed_after_it(
    processor: MessageProcessor, jobs: Jobs, reactor: Clock
) -> None:
    processor.wake()
    stopped = processor.stop()
    assert not stopped.called

    jobs.run_all()

    assert stopped.called
    assert jobs.names == [] and reactor.getDelayedCalls() == []


# -- the outbox dispatcher ---------------------------------------------------------------


def claimed(reply_id: int) -> ClaimedReply:
    return ClaimedReply(reply_id, "viettel", "84912345678", 1, 1, "8079", 0, 0, "Reply", 1, None)


def test_a_result_write_that_failed_gets_one_last_try_at_stop_and_no_timer_after(
    engine: Engine, jobs: Jobs, clock: FixedClock, reactor: Clock
) -> None:
    smpp = settings()
    listener = SmppListener(smpp, RecordingHandler(), reactor)
    dispatcher = OutboxDispatcher(listener, engine, jobs, smpp, "me", clock, reactor, Events())  # type: ignore[arg-type]
    listener.watch(dispatcher)
    protocol, transport = connect(listener)
    protocol.dataReceived(encode(bind()))  # a transceiver bind: the dispatcher pumps
    written(transport)
    assert jobs.names == ["claim_replies"]
    jobs.answer([claimed(7)])
    (deliver,) = written(transport)
    protocol.dataReceived(encode(Pdu("deliver_sm_resp", deliver.sequence, 0, {"message_id": b""})))
    assert jobs.names == ["finish_replies"]
    jobs.fail()  # the database is down: tried again in a second
    assert any(call.func == dispatcher._retry_finish for call in reactor.getDelayedCalls())

    dispatcher.stop()
    settled = dispatcher.settled()

    assert jobs.names == ["finish_replies"]  # at once, not after the shutdown
    assert not any(call.func == dispatcher._retry_finish for call in reactor.getDelayedCalls())
    jobs.fail()
    assert settled.called and jobs.names == []  # left claimed: released at the next start
    late, late_transport = connect(listener)
    late.dataReceived(encode(bind(sequence=9)))  # a bind after the stop claims nothing
    assert written(late_transport)[0].status == 0
    assert jobs.names == []


def test_housekeeping_releases_no_claims_while_results_of_ours_wait_to_be_written(
    engine: Engine, jobs: Jobs, clock: FixedClock, reactor: Clock
) -> None:
    smpp = settings()
    listener = SmppListener(smpp, RecordingHandler(), reactor)
    dispatcher = OutboxDispatcher(listener, engine, jobs, smpp, "me", clock, reactor, Events())  # type: ignore[arg-type]
    listener.watch(dispatcher)
    protocol, transport = connect(listener)
    protocol.dataReceived(encode(bind()))
    written(transport)
    jobs.answer([claimed(7)])
    (deliver,) = written(transport)
    dispatcher._tick()
    assert jobs.names == ["release_claims"] and jobs.pending[0][0].keywords == {"keep": None}
    jobs.answer([])
    jobs.pending.clear()  # the rest of that round of housekeeping
    protocol.dataReceived(encode(Pdu("deliver_sm_resp", deliver.sequence, 0, {"message_id": b""})))
    jobs.fail()  # writing the acknowledgement fails: the database is down

    dispatcher._tick()  # it is back, and our lease ran out meanwhile

    # a dead instance's claims are still released, ours are kept to be written
    assert jobs.names == ["release_claims"] and jobs.pending[0][0].keywords == {"keep": "me"}
