"""A gateway-shaped status source for the metrics, web and dashboard tests, and traffic for it.

:class:`Source` has what :class:`gateway.monitor.StatusSource` asks of the real gateway: the
settings, a real store (SQLite or PostgreSQL), a worker runner, the monitor, the SMPP listener
and the AMI factory. :func:`traffic` feeds a realistic mix of events through the same
observers the service wires (SMPP PDUs through a real listener on StringTransport, gateway
events, finished calls), all synthetic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.client import Agent
from twisted.web.http_headers import Headers

from commands.secret import Secret
from gateway.components import Store, open_store
from gateway.config import DatabaseSettings, HttpSettings, RetentionSettings, Settings
from gateway.events import CallFinished, MessagesStored, OutboxDepth, ReplyFinished, ResetDecided
from gateway.http import HttpServices
from gateway.monitor import Monitor
from ivr.client import AmiClientFactory
from ivr.records import CallOutcome, CallRecord
from ivr.settings import IvrSettings
from smpp.codec import Pdu, encode
from smpp.interfaces import Acknowledgement
from smpp.outbound import Outgoing
from smpp.protocol import SmppListener, SmppProtocol
from smpp.registry import Bind
from tests.support.smpp_fakes import connect, written
from tests.support.smpp_pdus import PEER, bind, message
from tests.support.smpp_pdus import settings as smpp_settings

T = TypeVar("T")
HTTP_WAIT = 10.0


class InlineWorkers:
    """Runs the 'blocking' function at once on this thread (adapter tests on a Clock)."""

    def run(self, function: Callable[..., T], *args: Any) -> Deferred[T]:
        try:
            return succeed(function(*args))
        except Exception as error:
            return fail(error)


class AckAll:
    """An SMPP inbound handler that acknowledges every message at once."""

    def __init__(self) -> None:
        self.count = 0

    def message_received(self, bind: Bind, message: object) -> Deferred[Acknowledgement]:
        self.count += 1
        return succeed(Acknowledgement(0, f"MO{self.count}"))


@dataclass
class Sms:
    """The SMS channel as the pages see it: its listener."""

    listener: SmppListener


@dataclass
class Source:
    """Stands in for :class:`gateway.service.Gateway` as a status source."""

    settings: Settings
    store: Store
    workers: Any
    monitor: Monitor
    sms: Sms | None = None
    ivr: AmiClientFactory | None = None
    protocols: list[tuple[SmppProtocol, StringTransport]] = field(default_factory=list)

    @property
    def smpp_listener(self) -> SmppListener:
        assert self.sms is not None
        return self.sms.listener


def make_source(
    db_url: str,
    clock: Clock | Any,
    *,
    token: str = "",
    ivr: bool = False,
    workers: Any = None,
    listen: str = "tcp:0:interface=127.0.0.1",
    retention: RetentionSettings | None = None,
) -> Source:
    settings = Settings(
        retention=retention or RetentionSettings(),
        database=DatabaseSettings(url=Secret(db_url), pool_size=2),
        smpp=smpp_settings(listen="tcp:0:interface=127.0.0.1"),
        ivr=dataclasses.replace(IvrSettings(), enabled=ivr),
        http=HttpSettings(listen=listen, token=Secret(token)),
    )
    monitor = Monitor(settings, process_metrics=False)
    listener = SmppListener(settings.smpp, AckAll(), clock, monitor.smpp_observer)
    ami = AmiClientFactory(settings.ivr, _no_dialog, clock) if ivr else None
    return Source(
        settings, open_store(settings), workers or InlineWorkers(), monitor, Sms(listener), ami
    )


async def _no_dialog(call: object) -> None:
    return None


def bind_peer(source: Source, kind: str = "bind_transceiver") -> SmppProtocol:
    """A real bind of the test peer over StringTransport."""
    protocol, transport = connect(source.smpp_listener)
    protocol.dataReceived(encode(bind(kind)))
    written(transport)
    source.protocols.append((protocol, transport))
    return protocol


def call_record(outcome: CallOutcome, seconds: float, start: datetime | None = None) -> CallRecord:
    started = start or datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    return CallRecord(
        unique_id=f"1790000000.{int(seconds * 10)}{outcome.value}",
        channel="PJSIP/trunk-00000001",
        caller_received="0912345678",
        caller_presentation=0,
        caller="+84912345678",
        started_at=started,
        answered_at=started + timedelta(seconds=1),
        ended_at=started + timedelta(seconds=seconds),
        keys="menu:8 code:********89",
        outcome=outcome,
    )


def traffic(source: Source, rounds: int = 1) -> None:
    """A round of every kind of event, as the running gateway would report them."""
    monitor = source.monitor
    peer = PEER.name
    for n in range(rounds):
        if source.protocols:
            protocol, transport = source.protocols[0]
            protocol.dataReceived(encode(message(sequence=100 + n)))
            written(transport)
            reply = Outgoing(id=("reply", n, id(source)), source_addr="8079",
                             destination_addr="84912345678", short_message=b"ok")  # fmt: skip
            source.smpp_listener.send(peer, reply)
            (deliver,) = [pdu for pdu in written(transport) if pdu.command == "deliver_sm"]
            protocol.dataReceived(encode(Pdu("deliver_sm_resp", deliver.sequence, 0, {})))
        monitor.observer.observe(MessagesStored(peer, 3, 1, (0.004, 0.012, 0.03, 0.2)))
        for outcome, carrier, phone in (
            ("reset", "Viettel", "+84961234567"),
            ("mismatch", "MobiFone", "+84701234567"),
        ):
            monitor.observer.observe(
                ResetDecided("sms", outcome, carrier, False, f"{outcome}{n}", phone, "0123456789")
            )
        monitor.observer.observe(ReplyFinished(peer, "acknowledged", 0, 1.5))
        monitor.observer.observe(ReplyFinished(peer, "acknowledged", 0, 0.7))
        monitor.observer.observe(ReplyFinished(peer, "failed", 0x45, None))
        monitor.observer.observe(OutboxDepth(queued=4 + n, oldest_age=12.5))
        monitor.observer.observe(CallFinished(call_record(CallOutcome.RESET, 47.0)))


def port_of(service: HttpServices) -> int:
    """The port the HTTP service listens on (it was told port 0)."""
    assert service.port is not None
    port: int = service.port.getHost().port  # type: ignore[attr-defined]
    return port


async def get(port: int, path: str, token: str | None = "scrape-token") -> tuple[int, bytes]:
    """GET over real TCP with Twisted's own client; bounded in time."""
    from twisted.internet import reactor  # noqa: PLC0415 - only e2e tests run the reactor

    headers = Headers({b"authorization": [f"Bearer {token}".encode()]} if token else {})
    url = f"http://127.0.0.1:{port}{path}".encode()
    response = await Agent(reactor).request(b"GET", url, headers).addTimeout(HTTP_WAIT, reactor)
    body = Body()
    response.deliverBody(body)
    return response.code, await body.done.addTimeout(HTTP_WAIT, reactor)


class Body(Protocol):
    """Collects a response body (readBody warns about the transport Agent gives it)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.done: Deferred[bytes] = Deferred()

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted's name
        self.parts.append(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:  # noqa: N802 - Twisted's name
        self.done.callback(b"".join(self.parts))
