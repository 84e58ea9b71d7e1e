"""The SMS stages (inbound store, message processor) on a ``Clock`` for adapter tests: the
worker pool's part without threads, an observer that keeps every event, and messages as the
SMPP listener hands them over."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from sqlalchemy.engine import Engine
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from commands.reset import ResetService
from gateway.events import GatewayEvent
from gateway.sms import InboundStore, MessageProcessor
from smpp.inbound import InboundMessage, read_message
from smpp.registry import Bind, BindKind
from tests.support import smpp_pdus as pdus
from tests.support.clock import FixedClock
from tests.support.smpp_pdus import settings

BIND = Bind(1, "viettel", "viettel", BindKind.TRANSCEIVER, "127.0.0.1", 0.0)


def message(text: bytes = b"xin chao", **params: int | bytes) -> InboundMessage:
    """A submit_sm to 8079 as the listener reads it (``params``: the PDU's fields)."""
    read = read_message(pdus.message(text, **params), short_codes=("8079",), packed=False, now=0)
    assert isinstance(read, InboundMessage)
    return read


class Jobs:
    """The worker pool's part, without threads: a job waits until the test settles it."""

    def __init__(self) -> None:
        self.pending: list[tuple[partial[Any], Deferred[Any]]] = []

    def run(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        done: Deferred[Any] = Deferred()
        self.pending.append((partial(function, *args, **kwargs), done))
        return done

    @property
    def names(self) -> list[str]:
        return [job.func.__name__ for job, _ in self.pending]

    def run_all(self) -> None:
        """Run every pending job for real (and the jobs their results start)."""
        while self.pending:
            job, done = self.pending.pop(0)
            try:
                result = job()
            except Exception as error:
                done.errback(error)
            else:
                done.callback(result)

    def answer(self, result: Any) -> None:
        """The next job returns ``result`` without running."""
        self.pending.pop(0)[1].callback(result)

    def fail(self, error: Exception | None = None) -> None:
        """The next job fails (the database is down, say)."""
        self.pending.pop(0)[1].errback(error or ConnectionError("database down"))


class Events:
    """Keeps every event it observes."""

    def __init__(self) -> None:
        self.seen: list[GatewayEvent] = []

    def observe(self, event: GatewayEvent) -> None:
        self.seen.append(event)


def sms_stages(
    engine: Engine, jobs: Jobs, reset_service: ResetService, clock: FixedClock, reactor: Clock
) -> tuple[InboundStore, MessageProcessor, Events]:
    """The inbound store and the message processor wired as the gateway wires them, on
    ``jobs`` and ``reactor``; the processor is not woken by commits (the test wakes it)."""
    smpp = settings()
    events = Events()
    inbound = InboundStore(engine, jobs, smpp, clock, reactor, events, on_stored=lambda: None)  # type: ignore[arg-type]
    processor = MessageProcessor(
        engine,
        jobs,
        reset_service,
        smpp,
        clock,
        reactor,
        events,
        inbound,
        lambda: None,  # type: ignore[arg-type]
    )
    return inbound, processor, events
