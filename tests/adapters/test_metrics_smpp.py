"""The SMPP observer's metrics, driven through the real listener on StringTransport and a Clock."""

from __future__ import annotations

from prometheus_client import generate_latest
from twisted.internet.task import Clock

from gateway.metrics import Metrics, SmppMetrics
from smpp.codec import Pdu, Status, encode
from smpp.interfaces import Acknowledgement
from smpp.outbound import Outgoing
from smpp.protocol import SmppListener
from tests.support.smpp_fakes import RecordingHandler, connect, written
from tests.support.smpp_pdus import PASSWORD, bind, header, message, settings


def _listener(handler: RecordingHandler | None = None) -> tuple[SmppListener, Metrics, Clock]:
    clock = Clock()
    metrics = Metrics(["viettel", "vina"])
    listener = SmppListener(settings(), handler or RecordingHandler(), clock, SmppMetrics(metrics))
    return listener, metrics, clock


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def _reply(n: int) -> Outgoing:
    return Outgoing(id=n, source_addr="8079", destination_addr="84912345678", short_message=b"ok")


def test_binds_are_up_per_peer_and_type_while_they_last() -> None:
    listener, metrics, _ = _listener()
    rx, _ = connect(listener)
    rx.dataReceived(encode(bind("bind_receiver")))
    tx, _ = connect(listener)
    tx.dataReceived(encode(bind("bind_transmitter")))
    assert sample(metrics, "vssid_smpp_binds", peer="viettel", type="receiver") == 1
    assert sample(metrics, "vssid_smpp_binds", peer="viettel", type="transmitter") == 1
    assert sample(metrics, "vssid_smpp_connections") == 2
    rx.dataReceived(encode(Pdu("unbind", 7)))
    tx.transport.loseConnection()  # type: ignore[union-attr]
    tx.connectionLost()
    assert sample(metrics, "vssid_smpp_binds", peer="viettel", type="receiver") == 0
    assert sample(metrics, "vssid_smpp_binds", peer="viettel", type="transmitter") == 0
    assert sample(metrics, "vssid_smpp_connections") == 1


def test_pdus_are_counted_by_peer_command_status_and_direction() -> None:
    listener, metrics, _ = _listener()
    protocol, _ = connect(listener)
    two_messages = encode(message(sequence=2)) + encode(message(sequence=3))
    protocol.dataReceived(encode(bind()) + two_messages)
    inbound = {"peer": "viettel", "command": "submit_sm", "status": "ESME_ROK", "direction": "in"}
    assert sample(metrics, "vssid_smpp_pdus_total", **inbound) == 2
    answer = {"peer": "viettel", "command": "submit_sm_resp", "status": "ESME_ROK"}
    assert sample(metrics, "vssid_smpp_pdus_total", **answer, direction="out") == 2
    before_bind = {"peer": "unbound", "command": "bind_transceiver", "status": "ESME_ROK"}
    assert sample(metrics, "vssid_smpp_pdus_total", **before_bind, direction="in") == 1


def test_throttled_answers_and_throttled_responses_are_counted_apart() -> None:
    handler = RecordingHandler(hold=True)
    listener, metrics, _ = _listener(handler)
    protocol, transport = connect(listener)
    protocol.dataReceived(encode(bind()) + encode(message(sequence=2)))
    handler.waiting[0].callback(Acknowledgement(Status.ESME_RTHROTTLED, ""))
    assert sample(metrics, "vssid_smpp_throttled_total", peer="viettel", direction="out") == 1
    listener.send("viettel", _reply(1))
    (deliver,) = [p for p in written(transport) if p.command == "deliver_sm"]
    protocol.dataReceived(encode(Pdu("deliver_sm_resp", deliver.sequence, 0x58, {})))
    assert sample(metrics, "vssid_smpp_throttled_total", peer="viettel", direction="in") == 1
    labels = {"peer": "viettel", "command": "deliver_sm_resp", "status": "ESME_RTHROTTLED"}
    assert sample(metrics, "vssid_smpp_pdus_total", **labels, direction="in") == 1


def test_window_in_use_follows_outstanding_deliver_sm_and_their_timeouts() -> None:
    listener, metrics, clock = _listener()
    protocol, transport = connect(listener)
    protocol.dataReceived(encode(bind()))
    assert sample(metrics, "vssid_smpp_window_size", peer="viettel") == 5
    for n in range(3):
        listener.send("viettel", _reply(n))
    assert sample(metrics, "vssid_smpp_window_in_use", peer="viettel") == 3
    assert sample(metrics, "vssid_sms_replies_total", peer="viettel", state="sent") == 3
    first = next(p for p in written(transport) if p.command == "deliver_sm")
    protocol.dataReceived(encode(Pdu("deliver_sm_resp", first.sequence, 0, {})))
    assert sample(metrics, "vssid_smpp_window_in_use", peer="viettel") == 2
    clock.advance(settings().response_timeout_seconds)
    assert sample(metrics, "vssid_smpp_window_in_use", peer="viettel") == 0
    timeouts = {"peer": "viettel", "reason": "timeout"}
    assert sample(metrics, "vssid_smpp_requests_failed_total", **timeouts) == 2


def test_a_lost_connection_frees_its_window_and_its_capacity() -> None:
    listener, metrics, _ = _listener()
    protocol, _ = connect(listener)
    protocol.dataReceived(encode(bind()))
    listener.send("viettel", _reply(1))
    protocol.connectionLost()
    assert sample(metrics, "vssid_smpp_window_in_use", peer="viettel") == 0
    assert sample(metrics, "vssid_smpp_window_size", peer="viettel") == 0
    lost = {"peer": "viettel", "reason": "connection_lost"}
    assert sample(metrics, "vssid_smpp_requests_failed_total", **lost) == 1


def test_refused_binds_and_peer_errors_carry_no_credentials() -> None:
    listener, metrics, _ = _listener()
    stranger, _ = connect(listener)
    stranger.dataReceived(encode(bind(system_id="intruder", password="guess")))
    wrong, _ = connect(listener)
    wrong.dataReceived(encode(bind(password="nope")))
    assert sample(metrics, "vssid_smpp_bind_refusals_total", status="ESME_RINVSYSID") == 1
    assert sample(metrics, "vssid_smpp_bind_refusals_total", status="ESME_RINVPASWD") == 1
    bound, _ = connect(listener)
    bound.dataReceived(encode(bind()) + header(0x00000777, sequence=9))
    unknown_command = {"peer": "viettel", "status": "ESME_RINVCMDID"}
    assert sample(metrics, "vssid_smpp_peer_errors_total", **unknown_command) == 1
    text = generate_latest(metrics.registry).decode()
    assert "intruder" not in text
    assert "guess" not in text
    assert PASSWORD not in text
