"""The Twisted adapter on StringTransport and Clock: effects performed, timers, Deferreds."""

from __future__ import annotations

import struct

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import ITCPTransport
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from zope.interface import implementer

from smpp.codec import Pdu, Status, encode
from smpp.events import (
    ConnectionClosed,
    ConnectionOpened,
)
from smpp.interfaces import Acknowledgement, DeliveryFailed, DeliveryResult
from smpp.outbound import Outgoing
from smpp.protocol import ABORT_AFTER_SECONDS, SmppListener, SmppProtocol
from tests.support.smpp_fakes import (
    RecordingHandler,
    RecordingObserver,
    RecordingWatcher,
    connect,
    written,
)
from tests.support.smpp_pdus import bind, message, settings

OK = Status.ESME_ROK


def _listener(
    handler: RecordingHandler | None = None, observer: RecordingObserver | None = None
) -> tuple[SmppListener, Clock]:
    clock = Clock()
    return SmppListener(settings(), handler or RecordingHandler(), clock, observer), clock


def _reply(n: int = 1) -> Outgoing:
    return Outgoing(id=n, source_addr="8079", destination_addr="84912345678", short_message=b"ok")


def _result(deferred: Deferred[DeliveryResult]) -> DeliveryResult | Failure:
    box: list[DeliveryResult | Failure] = []
    deferred.addBoth(box.append)
    assert box, "the Deferred has not fired"
    return box[0]


def test_a_bind_is_answered_on_the_wire() -> None:
    listener, _ = _listener()
    protocol, transport = connect(listener)
    protocol.dataReceived(encode(bind(sequence=3)))
    (response,) = written(transport)
    assert (response.command, response.sequence, response.status) == (
        "bind_transceiver_resp",
        3,
        OK,
    )


def test_the_response_waits_for_the_handler_and_carries_its_message_id() -> None:
    handler = RecordingHandler(hold=True)
    listener, _ = _listener(handler)
    protocol, transport = connect(listener)
    protocol.dataReceived(encode(bind()) + encode(message(sequence=8)))
    written(transport)
    ((bind_info, received),) = handler.received
    assert (bind_info.peer, received.text) == ("viettel", "BH MK 0123456789")
    assert written(transport) == []
    handler.waiting[0].callback(Acknowledgement(OK, "MO-42"))
    (response,) = written(transport)
    assert (response.command, response.sequence, response.string("message_id")) == (
        "submit_sm_resp",
        8,
        "MO-42",
    )


def test_a_failing_handler_gets_the_peer_a_throttled_answer() -> None:
    handler = RecordingHandler(hold=True)
    listener, _ = _listener(handler)
    protocol, transport = connect(listener)
    protocol.dataReceived(encode(bind()) + encode(message(sequence=8)))
    written(transport)
    handler.waiting[0].errback(RuntimeError("database is down"))
    (response,) = written(transport)
    assert (response.sequence, response.status) == (8, Status.ESME_RTHROTTLED)


def test_many_pdus_in_one_write_and_one_pdu_split_over_writes() -> None:
    listener, _ = _listener()
    protocol, transport = connect(listener)
    stream = encode(bind()) + b"".join(encode(message(sequence=n)) for n in range(10, 20))
    protocol.dataReceived(stream[:7])
    protocol.dataReceived(stream[7:200])
    protocol.dataReceived(stream[200:])
    assert [p.sequence for p in written(transport)] == [1, *range(10, 20)]


def test_a_huge_command_length_closes_without_reading_the_rest() -> None:
    listener, _ = _listener()
    protocol, transport = connect(listener)
    protocol.dataReceived(struct.pack(">LLLL", 10_000_000, 4, 0, 9) + b"x" * 100)
    assert [(p.command, p.sequence, p.status) for p in written(transport)] == [
        ("generic_nack", 9, Status.ESME_RINVCMDLEN)
    ]
    assert transport.disconnecting


def test_an_address_in_no_peers_allowlist_is_refused_and_logged_at_most_once_a_minute() -> None:
    listener, clock = _listener()
    stranger = IPv4Address("TCP", "192.0.2.7", 40000)
    with capturedLogs() as events:
        for advance in (0, 59, 1):
            clock.advance(advance)
            transport = StringTransport(peerAddress=stranger)
            listener.buildProtocol(stranger).makeConnection(transport)
            assert transport.disconnected and transport.value() == b""
    assert listener.connections == {} and clock.getDelayedCalls() == []
    refused = [e["address"] for e in events if e.get("event") == "smpp_connection_refused"]
    assert refused == ["192.0.2.7", "192.0.2.7"]
    assert isinstance(listener.buildProtocol(IPv4Address("TCP", "10.1.2.3", 40000)), SmppProtocol)


def test_connections_over_the_caps_are_refused_until_one_closes() -> None:
    listener = SmppListener(
        settings(max_connections=3, max_connections_per_address=2), RecordingHandler(), Clock()
    )

    def refused(host: str) -> bool:
        address = IPv4Address("TCP", host, 40000)
        protocol = listener.buildProtocol(address)
        transport = StringTransport(peerAddress=address)
        protocol.makeConnection(transport)
        return isinstance(protocol, SmppProtocol) is False and transport.disconnected

    with capturedLogs() as events:
        first, _ = connect(listener, "10.1.0.1")
        connect(listener, "10.1.0.1")
        assert refused("10.1.0.1")  # a third from the same address
        connect(listener, "10.1.0.2")
        assert refused("10.1.0.3")  # a fourth in all
        assert listener.refusals == {
            "allowlist": 0, "max_connections": 1, "max_connections_per_address": 1
        }  # fmt: skip
        first.connectionLost(Failure(ConnectionDone()))
        assert isinstance(listener.buildProtocol(IPv4Address("TCP", "10.1.0.1", 1)), SmppProtocol)
    assert len(listener.connections) == 2  # the one built last was never made
    reasons = [e["reason"] for e in events if e.get("event") == "smpp_connection_refused"]
    assert reasons == ["max_connections_per_address", "max_connections"]


def test_a_closed_connection_that_does_not_drain_is_aborted() -> None:
    listener, clock = _listener()
    _, transport = connect(listener)
    clock.advance(120)  # no bind in time
    assert transport.disconnecting and transport.producer is None and not transport.disconnected
    clock.advance(ABORT_AFTER_SECONDS)
    assert transport.disconnected
    assert clock.getDelayedCalls() == []


def test_a_connection_that_closes_in_time_is_not_aborted() -> None:
    listener, clock = _listener()
    protocol, transport = connect(listener)
    protocol.dataReceived(encode(message(sequence=4)))  # before bind: refused and closed
    assert transport.disconnecting
    protocol.connectionLost(Failure(ConnectionError()))
    assert clock.getDelayedCalls() == [] and not transport.disconnected


def test_while_the_peer_does_not_read_our_writes_we_do_not_read_its_requests() -> None:
    listener, _ = _listener()
    protocol, transport = connect(listener)
    assert transport.producer is protocol and transport.streaming
    protocol.pauseProducing()  # what a transport does when its write buffer is full
    assert transport.producerState == "paused"
    protocol.resumeProducing()  # and once it has drained
    assert transport.producerState == "producing"


def test_one_timer_sends_enquire_link_and_then_closes_a_silent_peer() -> None:
    listener, clock = _listener()
    protocol, transport = connect(listener)
    protocol.dataReceived(encode(bind()))
    written(transport)
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(30)
    assert [p.command for p in written(transport)] == ["enquire_link"]
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(30)
    assert transport.disconnecting


def test_a_connection_that_does_not_bind_is_closed_by_the_clock() -> None:
    listener, clock = _listener()
    _, transport = connect(listener)
    clock.advance(119)
    assert not transport.disconnecting
    clock.advance(1)
    assert transport.disconnecting


def test_send_fires_with_the_peers_response_on_a_receiver_bind() -> None:
    listener, _ = _listener()
    protocol, transport = connect(listener)
    protocol.dataReceived(encode(bind("bind_receiver")))
    written(transport)
    sending = listener.send("viettel", _reply(5))
    (request,) = written(transport)
    assert request.command == "deliver_sm"
    protocol.dataReceived(encode(Pdu("deliver_sm_resp", request.sequence, 0, {"message_id": b""})))
    assert _result(sending) == DeliveryResult(OK, "")


def test_send_fails_on_timeout_and_on_a_lost_connection() -> None:
    listener, clock = _listener()
    protocol, _ = connect(listener)
    protocol.dataReceived(encode(bind()))
    first = listener.send("viettel", _reply(1))
    clock.advance(25)
    protocol.dataReceived(encode(Pdu("enquire_link", 99)))  # keeps the link alive
    second = listener.send("viettel", _reply(2))
    clock.advance(5)
    failure = _result(first)
    assert isinstance(failure, Failure) and failure.value.reason == "timeout"  # type: ignore[attr-defined]
    protocol.connectionLost(Failure(ConnectionError()))
    failure = _result(second)
    assert isinstance(failure, Failure) and failure.check(DeliveryFailed)
    assert failure.value.reason == "connection lost"  # type: ignore[attr-defined]


def test_send_without_a_receiver_bind_fails_at_once() -> None:
    listener, _ = _listener()
    protocol, _ = connect(listener)
    protocol.dataReceived(encode(bind("bind_transmitter")))
    failure = _result(listener.send("viettel", _reply()))
    assert isinstance(failure, Failure) and failure.value.reason == "no bind"  # type: ignore[attr-defined]


def test_replies_go_on_the_receiver_of_a_transmitter_receiver_pair() -> None:
    listener, _ = _listener()
    tx, tx_wire = connect(listener)
    rx, rx_wire = connect(listener)
    tx.dataReceived(encode(bind("bind_transmitter")))
    rx.dataReceived(encode(bind("bind_receiver")))
    written(tx_wire), written(rx_wire)
    assert listener.receivers("viettel") == [rx]
    listener.send("viettel", _reply())
    assert written(tx_wire) == [] and [p.command for p in written(rx_wire)] == ["deliver_sm"]
    assert listener.capacity("viettel") == 4  # window 5, one outstanding


def test_bind_watchers_hear_binds_come_and_go() -> None:
    listener, _ = _listener()
    watcher = RecordingWatcher()
    listener.watch(watcher)
    protocol, _ = connect(listener)
    protocol.dataReceived(encode(bind()))
    protocol.connectionLost(Failure(ConnectionError()))
    assert [change for change, _ in watcher.changes] == ["up", "down"]


def test_the_observer_sees_every_input_and_effect_in_order() -> None:
    observer = RecordingObserver()
    listener, _ = _listener(observer=observer)
    protocol, _ = connect(listener)
    protocol.dataReceived(encode(bind()) + encode(message()))
    protocol.connectionLost(Failure(ConnectionError("gone")))
    kinds = [type(event).__name__ for _, event in observer.events]
    assert kinds[:4] == ["ConnectionOpened", "PduReceived", "SendPdu", "Bound"]
    assert "MessageReceived" in kinds and kinds[-1] == "ConnectionClosed"
    assert isinstance(observer.events[0][1], ConnectionOpened)
    assert isinstance(observer.events[-1][1], ConnectionClosed)


@implementer(ITCPTransport)
class _TcpTransport(StringTransport):
    nodelay = False

    def setTcpNoDelay(self, enabled: bool) -> None:  # noqa: N802 - Twisted's name
        self.nodelay = enabled


def test_nagle_is_disabled_on_tcp_connections() -> None:
    listener, _ = _listener()
    protocol = listener.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    transport = _TcpTransport()
    protocol.makeConnection(transport)
    assert transport.nodelay


def test_unbind_all_unbinds_and_fires_when_connections_are_gone() -> None:
    listener, _ = _listener()
    protocol, transport = connect(listener)
    protocol.dataReceived(encode(bind()))
    written(transport)
    done = listener.unbind_all()
    (request,) = written(transport)
    assert request.command == "unbind" and not done.called
    protocol.dataReceived(encode(Pdu("unbind_resp", request.sequence)))
    assert transport.disconnecting
    protocol.connectionLost(Failure(ConnectionError()))
    assert done.called
