"""The inbound store on a ``Clock`` against real databases: whatever fails after a commit, every
stored message is answered, the failure is logged, and the next commits go on."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import capturedLogs

from gateway.events import GatewayEvent, MessagesStored
from gateway.sms import InboundStore
from smpp.codec import Status
from smpp.interfaces import Acknowledgement
from tests.support.clock import FixedClock
from tests.support.smpp_pdus import settings
from tests.support.sms_stages import BIND, Jobs, message


class FailingObserver:
    """Metrics or logs with a bug: fails on every MessagesStored."""

    def __init__(self) -> None:
        self.seen: list[GatewayEvent] = []

    def observe(self, event: GatewayEvent) -> None:
        self.seen.append(event)
        if isinstance(event, MessagesStored):
            raise RuntimeError("observer bug")


def answers(acks: list[Deferred[Acknowledgement]]) -> list[int | None]:
    results: list[int | None] = []
    for ack in acks:
        box: list[Any] = []
        ack.addBoth(box.append)
        results.append(box[0].status if box else None)
    return results


def failures(events: list[dict[str, Any]]) -> list[str]:
    return [event["log_format"] for event in events if "log_failure" in event]



def test_a_failing_observer_neither_stops_the_hand_over_nor_the_next_commit(
    engine: Engine, jobs: Jobs, clock: FixedClock
) -> None:
    handed: list[None] = []
    observer = FailingObserver()
    inbound = InboundStore(
        engine,
        jobs,
        settings(),
        clock,
        Clock(),
        observer,
        on_stored=lambda: handed.append(None),  # type: ignore[arg-type]
    )

    with capturedLogs() as logged:
        first = [inbound.message_received(BIND, message(b"xin chao"))]
        second = [
            inbound.message_received(BIND, message(b"chao", source=f"091200000{i}"))
            for i in range(3)
        ]  # arrive during the first commit: the next one
        jobs.run_all()

    assert answers(first + second) == [Status.ESME_ROK] * 4
    assert len(handed) == 2 and inbound.backlog == 4 and len(inbound.take_stored(10)) == 4
    assert failures(logged) == ["observing {event} failed"] * 2


def test_a_failing_hand_over_is_logged_and_the_next_commit_goes_on(
    engine: Engine, jobs: Jobs, clock: FixedClock
) -> None:
    def hand_over() -> None:
        raise RuntimeError("processor bug")

    inbound = InboundStore(
        engine,
        jobs,
        settings(),
        clock,
        Clock(),
        FailingObserver(),
        on_stored=hand_over,  # type: ignore[arg-type]
    )

    with capturedLogs() as logged:
        first = inbound.message_received(BIND, message(b"xin chao"))
        second = inbound.message_received(BIND, message(b"chao", source="0912000001"))
        jobs.run_all()

    assert answers([first, second]) == [Status.ESME_ROK] * 2
    assert "handing stored messages on failed" in failures(logged)
    assert inbound.backlog == 2
