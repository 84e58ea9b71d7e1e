"""Test doubles around the SMPP adapter: an application that records and acknowledges
messages, a bind watcher, an observer, and StringTransport wiring."""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.testing import StringTransport

from smpp.codec import Pdu, Status, decode
from smpp.events import Event
from smpp.framing import Framer
from smpp.inbound import InboundMessage
from smpp.interfaces import Acknowledgement
from smpp.protocol import SmppListener, SmppProtocol
from smpp.registry import Bind
from smpp.session import Session


class RecordingHandler:
    """Stores messages in a list; acknowledges at once unless ``hold`` is set."""

    def __init__(self, hold: bool = False) -> None:
        self.hold = hold
        self.received: list[tuple[Bind, InboundMessage]] = []
        self.waiting: list[Deferred[Acknowledgement]] = []
        self.arrived: Deferred[None] | None = None
        self.expect = 0

    def message_received(self, bind: Bind, message: InboundMessage) -> Deferred[Acknowledgement]:
        self.received.append((bind, message))
        stored: Deferred[Acknowledgement] = Deferred()
        if self.hold:
            self.waiting.append(stored)
        else:
            stored.callback(Acknowledgement(Status.ESME_ROK, f"MO{len(self.received)}"))
        if self.arrived is not None and len(self.received) >= self.expect:
            arrived, self.arrived = self.arrived, None
            arrived.callback(None)
        return stored

    def when_received(self, count: int) -> Deferred[None]:
        """Fires once ``count`` messages in all have arrived."""
        self.expect = count
        self.arrived = Deferred()
        if len(self.received) >= count:
            arrived, self.arrived = self.arrived, None
            arrived.callback(None)
            return arrived
        return self.arrived


class RecordingWatcher:
    def __init__(self) -> None:
        self.changes: list[tuple[str, Bind]] = []

    def bind_up(self, bind: Bind) -> None:
        self.changes.append(("up", bind))

    def bind_down(self, bind: Bind) -> None:
        self.changes.append(("down", bind))


class RecordingObserver:
    def __init__(self) -> None:
        self.events: list[tuple[int, Event]] = []

    def observe(self, session: Session, event: Event) -> None:
        self.events.append((session.connection, event))


def connect(
    listener: SmppListener, host: str = "127.0.0.1"
) -> tuple[SmppProtocol, StringTransport]:
    protocol = listener.buildProtocol(IPv4Address("TCP", host, 40000))
    assert isinstance(protocol, SmppProtocol), f"{host} is in no peer's allowlist: refused"
    transport = StringTransport(peerAddress=IPv4Address("TCP", host, 40000))
    protocol.makeConnection(transport)
    return protocol, transport


def written(transport: StringTransport) -> list[Pdu]:
    """The PDUs written since the last call."""
    frames = Framer().feed(transport.value())
    transport.clear()
    return [decode(frame) for frame in frames]
