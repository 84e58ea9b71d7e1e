"""The listener on real TCP (127.0.0.1, port 0) with smpplib as the ESME.

Each test runs the blocking ESME in a thread and waits on Deferreds with bounded timeouts.
"""

from __future__ import annotations

import dataclasses
import socket
import ssl
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_twisted
from twisted.internet import reactor, threads
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IListeningPort
from twisted.logger import capturedLogs

from smpp.codec import Pdu, Status, encode
from smpp.interfaces import Acknowledgement, DeliveryResult
from smpp.outbound import outgoing_parts
from smpp.protocol import SmppListener
from smpp.reassembly import Assembled, Part, Reassembler
from tests.support.smpp_esme import RawEsme, smpplib_bind, smpplib_client, smpplib_send
from tests.support.smpp_fakes import RecordingHandler, RecordingWatcher
from tests.support.smpp_pdus import PEER, bind, header, message, settings
from tests.support.tls import make_certificate

T = TypeVar("T")
OK = Status.ESME_ROK
WAIT = 10.0


class Gateway:
    def __init__(self, listener: SmppListener, port: IListeningPort, handler: RecordingHandler):
        self.listener = listener
        self.port_number: int = port.getHost().port  # type: ignore[attr-defined]
        self.handler = handler


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    handler = RecordingHandler()
    listener = SmppListener(settings(listen="tcp:0:interface=127.0.0.1"), handler, reactor)  # type: ignore[arg-type]
    port = pytest_twisted.blockon(listener.listen(reactor))
    yield Gateway(listener, port, handler)
    closing = [p.closed for p in listener.connections.values()]
    for protocol in list(listener.connections.values()):
        protocol.transport.abortConnection()  # type: ignore[union-attr]
    pytest_twisted.blockon(port.stopListening())
    for closed in closing:
        pytest_twisted.blockon(closed)


def in_thread(function: Callable[..., T], *args: Any) -> Deferred[T]:
    return threads.deferToThread(function, *args).addTimeout(WAIT, reactor)


@pytest_twisted.inlineCallbacks
def test_each_bind_error_status_as_smpplib_sees_it() -> Iterator[Deferred[Any]]:
    smpp = settings(listen="tcp:0:interface=127.0.0.1", failed_binds_per_minute=2)
    listener = SmppListener(smpp, RecordingHandler(), reactor)  # type: ignore[arg-type]
    port = yield listener.listen(reactor)

    def attempt(client_kind: str = "transceiver", **credentials: str) -> tuple[Any, int]:
        client = smpplib_client(port.getHost().port)
        return client, smpplib_bind(client, client_kind, **credentials)

    def scenario() -> list[int]:
        held = []
        statuses = []
        for kind in ("transceiver", "transmitter", "receiver"):  # PEER's max_binds is 3
            client, status = attempt(kind)
            held.append(client)
            statuses.append(status)
        for credentials in ({}, {"password": "wrong"}, {"system_id": "nobody"}):
            client, status = attempt(**credentials)  # a 4th bind, then two failed binds
            statuses.append(status)
            client.disconnect()
        freed = held.pop()
        freed.unbind()
        freed.disconnect()
        client, status = attempt()  # a place is free, but this address is throttled now
        statuses.append(status)
        client.disconnect()
        for client in held:
            client.unbind()
            client.disconnect()
        return statuses

    try:
        statuses = yield in_thread(scenario)
    finally:
        yield port.stopListening()
    assert statuses == [
        OK, OK, OK,
        Status.ESME_RBINDFAIL,  # over max_binds
        Status.ESME_RINVPASWD,
        Status.ESME_RINVSYSID,
        Status.ESME_RBINDFAIL,  # two failed binds from this address in a minute: refused
    ]  # fmt: skip


@pytest_twisted.inlineCallbacks
def test_bind_statuses_and_already_bound(gateway: Gateway) -> Iterator[Deferred[Any]]:
    def scenario() -> list[tuple[str, int] | None]:
        seen: list[tuple[str, int] | None] = []
        for attempt in (bind(password="wrong"), bind(system_id="nobody"), bind()):
            esme = RawEsme(gateway.port_number)
            esme.send(attempt)
            response = esme.read()
            seen.append((response.command, response.status) if response else None)
            if response and response.status:
                seen.append(None if esme.read() is None else ("still open", 0))
            else:
                esme.send(bind(sequence=2))
                again = esme.read()
                seen.append((again.command, again.status) if again else None)
            esme.close()
        return seen

    seen = yield in_thread(scenario)
    assert seen == [
        ("bind_transceiver_resp", Status.ESME_RINVPASWD),
        None,
        ("bind_transceiver_resp", Status.ESME_RINVSYSID),
        None,
        ("bind_transceiver_resp", OK),
        ("bind_transceiver_resp", Status.ESME_RALYBND),
    ]


@pytest_twisted.inlineCallbacks
def test_smpplib_binds_exchanges_enquire_link_and_unbinds(
    gateway: Gateway,
) -> Iterator[Deferred[Any]]:
    def scenario() -> tuple[int, str, str, bytes]:
        client = smpplib_client(gateway.port_number)
        status = smpplib_bind(client, "transceiver")
        sequence = smpplib_send(client, "enquire_link")
        link = client.read_pdu()
        unbound = client.unbind()
        leftover = client._socket.recv(1)  # the listener closes after unbind_resp
        client.disconnect()
        assert link.sequence == sequence
        return status, link.command, unbound.command, leftover

    assert (yield in_thread(scenario)) == (0, "enquire_link_resp", "unbind_resp", b"")


@pytest_twisted.inlineCallbacks
def test_pdus_before_bind_and_unknown_commands(gateway: Gateway) -> Iterator[Deferred[Any]]:
    def scenario() -> tuple[list[Pdu], list[Pdu]]:
        early = RawEsme(gateway.port_number)
        early.send(message(sequence=5))
        refused = early.read_all()
        early.close()
        esme = RawEsme(gateway.port_number)
        esme.send(header(0x00000099, sequence=6), Pdu("enquire_link", 7))
        answers = [esme.read(), esme.read()]
        esme.close()
        return refused, [a for a in answers if a]

    refused, answers = yield in_thread(scenario)
    assert [(p.command, p.sequence, p.status) for p in refused] == [
        ("submit_sm_resp", 5, Status.ESME_RINVBNDSTS)
    ]
    assert [(p.command, p.sequence, p.status) for p in answers] == [
        ("generic_nack", 6, Status.ESME_RINVCMDID),
        ("enquire_link_resp", 7, OK),
    ]


@pytest_twisted.inlineCallbacks
def test_requests_we_do_not_support_are_nacked_on_a_transceiver_bind(
    gateway: Gateway,
) -> Iterator[Deferred[Any]]:
    alert = b"\x01\x01" + b"0912345678\0" + b"\x00\x00" + b"8079\0"
    replace = b"1\0" + b"\x01\x01" + b"0912345678\0" + b"\0\0" + b"\x00\x00\x02hi"

    def scenario() -> list[Pdu]:
        esme = RawEsme(gateway.port_number)
        esme.send(bind())
        esme.read()
        esme.send(
            header("replace_sm", replace, sequence=2),
            header("outbind", b"sys\0pw\0", sequence=3),
            header("alert_notification", alert, sequence=4),
            Pdu("enquire_link", 5),
        )
        answers = [esme.read() for _ in range(4)]
        esme.close()
        return [a for a in answers if a]

    answers = yield in_thread(scenario)
    assert [(p.command, p.sequence, p.status) for p in answers] == [
        ("generic_nack", 2, Status.ESME_RINVCMDID),
        ("generic_nack", 3, Status.ESME_RINVCMDID),
        ("generic_nack", 4, Status.ESME_RINVCMDID),
        ("enquire_link_resp", 5, OK),
    ]


@pytest.mark.parametrize(
    "frame",
    [
        struct.pack(">LLLL", 12, 0x15, 0, 8),  # under a header
        struct.pack(">LLLL", 0x7FFFFFFF, 4, 0, 8) + b"x" * 64,  # 2 GiB announced
        struct.pack(">LLLL", 70_000, 4, 0, 8),  # just over the 64 KiB maximum
    ],
)
@pytest_twisted.inlineCallbacks
def test_bad_and_huge_command_lengths_close_the_connection(
    gateway: Gateway, frame: bytes
) -> Iterator[Deferred[Any]]:
    def scenario() -> list[Pdu]:
        esme = RawEsme(gateway.port_number)
        esme.send(bind(), frame)
        pdus = esme.read_all()
        esme.close()
        return pdus

    pdus = yield in_thread(scenario)
    assert [(p.command, p.status) for p in pdus] == [
        ("bind_transceiver_resp", OK),
        ("generic_nack", Status.ESME_RINVCMDLEN),
    ]


@pytest_twisted.inlineCallbacks
def test_pdus_split_across_writes_and_many_in_one_write(
    gateway: Gateway,
) -> Iterator[Deferred[Any]]:
    def scenario() -> list[int]:
        esme = RawEsme(gateway.port_number)
        data = encode(bind(sequence=1)) + b"".join(
            encode(message(sequence=n)) for n in range(2, 12)
        )
        esme.send(data)
        split = encode(message(sequence=12))
        for i in range(0, len(split), 5):
            esme.send(split[i : i + 5])
        sequences = []
        for _ in range(12):
            pdu = esme.read()
            assert pdu is not None
            sequences.append(pdu.sequence)
        esme.close()
        return sequences

    assert (yield in_thread(scenario)) == list(range(1, 13))
    assert len(gateway.handler.received) == 11


@pytest_twisted.inlineCallbacks
def test_fifty_outstanding_submits_answered_out_of_order(
    gateway: Gateway,
) -> Iterator[Deferred[Any]]:
    gateway.handler.hold = True
    arrived = gateway.handler.when_received(50)

    def release(_: None) -> None:
        for number, waiting in reversed(list(enumerate(gateway.handler.waiting))):
            waiting.callback(Acknowledgement(OK, f"MO{number}"))

    arrived.addCallback(lambda _: reactor.callLater(0, release, None))  # after the 50th returns

    def scenario() -> tuple[list[int], list[int], set[bytes]]:
        client = smpplib_client(gateway.port_number)
        smpplib_bind(client)
        sent = [
            smpplib_send(
                client,
                "submit_sm",
                source_addr_ton=1,
                source_addr_npi=1,
                source_addr=f"8491234{n:04d}",
                dest_addr_ton=2,
                dest_addr_npi=1,
                destination_addr="8079",
                short_message=b"BH MK 0123456789",
            )
            for n in range(50)
        ]
        responses = [client.read_pdu() for _ in range(50)]
        client.unbind()
        client.disconnect()
        return sent, [r.sequence for r in responses], {r.message_id for r in responses}

    sent, answered, ids = yield in_thread(scenario)
    yield arrived
    assert answered == list(reversed(sent))
    assert len(ids) == 50


@pytest_twisted.inlineCallbacks
def test_ucs2_and_gsm7_with_extension_characters(gateway: Gateway) -> Iterator[Deferred[Any]]:
    gsm = b"BH MK 0123456789 " + bytes([0x1B, 0x65, 0x1B, 0x28, 0x1B, 0x29, 0x1B, 0x3C])
    ucs2 = "BH MK 0123456789 Mã số 😀".encode("utf-16-be")

    def scenario() -> None:
        client = smpplib_client(gateway.port_number)
        smpplib_bind(client)
        smpplib_send(
            client,
            "submit_sm",
            source_addr="0912345678",
            destination_addr="8079",
            data_coding=0,
            short_message=gsm,
        )
        smpplib_send(
            client,
            "submit_sm",
            source_addr="0912345678",
            destination_addr="8079",
            data_coding=8,
            short_message=ucs2,
        )
        assert [client.read_pdu().status for _ in range(2)] == [0, 0]
        client.unbind()
        client.disconnect()

    yield in_thread(scenario)
    assert [m.text for _, m in gateway.handler.received] == [
        "BH MK 0123456789 €{}[",
        "BH MK 0123456789 Mã số 😀",
    ]


@pytest_twisted.inlineCallbacks
def test_concatenated_messages_with_udh_and_with_sar_tlvs(
    gateway: Gateway,
) -> Iterator[Deferred[Any]]:
    text = "BH MK 0123456789 " + "Xin cấp lại mật khẩu 😀 " * 4
    encoded = text.encode("utf-16-be")
    cut = 134 + 1  # splits inside a character, and later inside a surrogate pair
    chunks = [encoded[i : i + cut] for i in range(0, len(encoded), cut)]

    def scenario() -> None:
        client = smpplib_client(gateway.port_number)
        smpplib_bind(client)
        for number, chunk in enumerate(chunks, start=1):
            udh = bytes([5, 0, 3, 0xA7, len(chunks), number])
            smpplib_send(
                client,
                "submit_sm",
                source_addr="0912345678",
                destination_addr="8079",
                esm_class=0x43,
                data_coding=8,
                short_message=udh + chunk,
            )
        for number, chunk in enumerate(chunks, start=1):
            smpplib_send(
                client,
                "submit_sm",
                source_addr="0987654321",
                destination_addr="8079",
                data_coding=8,
                short_message=chunk,
                sar_msg_ref_num=0x1234,
                sar_total_segments=len(chunks),
                sar_segment_seqnum=number,
                more_messages_to_send=int(number < len(chunks)),
            )
        assert all(client.read_pdu().status == 0 for _ in range(2 * len(chunks)))
        client.unbind()
        client.disconnect()

    yield in_thread(scenario)
    reassembler = Reassembler(timeout=60)
    texts = {}
    for number, (bind_info, msg) in enumerate(gateway.handler.received):
        for outcome in reassembler.add(
            Part(number, bind_info.peer, msg.source_addr, msg.user_data, 0.0), 0.0
        ):
            assert isinstance(outcome, Assembled) and outcome.complete
            texts[outcome.source] = outcome.text
    assert texts == {"0912345678": text, "0987654321": text}


@pytest_twisted.inlineCallbacks
def test_replies_go_on_the_receiver_of_a_transmitter_receiver_pair(
    gateway: Gateway,
) -> Iterator[Deferred[Any]]:
    watcher = RecordingWatcher()
    gateway.listener.watch(watcher)
    receiver_up: Deferred[None] = Deferred()
    watcher.bind_up = lambda b: receiver_up.callback(None) if b.kind.can_receive else None  # type: ignore[method-assign]

    def receiver() -> tuple[str, bytes, int]:
        client = smpplib_client(gateway.port_number)
        smpplib_bind(client, "receiver")
        got: list[Any] = []
        client.set_message_received_handler(lambda pdu: got.append(pdu))  # noqa: PLW0108 - called with pdu=
        client.read_once()  # reads the deliver_sm and answers deliver_sm_resp
        client.unbind()
        client.disconnect()
        return got[0].destination_addr.decode(), got[0].short_message, got[0].data_coding

    transmitter = yield in_thread(smpplib_client, gateway.port_number)
    assert (yield in_thread(smpplib_bind, transmitter, "transmitter")) == 0
    receiving = in_thread(receiver)
    yield receiver_up.addTimeout(WAIT, reactor)
    (part,) = outgoing_parts(
        "r1",
        "Cap lai mat khau thanh cong",
        source_addr="8079",
        destination_addr="84912345678",
        reference=1,
    )
    result = yield gateway.listener.send("viettel", part).addTimeout(WAIT, reactor)
    assert result == DeliveryResult(OK, "")
    assert (yield receiving) == ("84912345678", b"Cap lai mat khau thanh cong", 0)
    yield in_thread(transmitter.unbind)
    yield in_thread(transmitter.disconnect)


def _tls_connect(port: int, cert: Path) -> str:
    """Connect over TLS and say whether the listener closed the connection.

    TLS runs over memory buffers rather than ``wrap_socket``: when the listener's reset arrives
    before the handshake starts, CPython's ``SSLSocket`` raises without closing its descriptor.
    """
    context = ssl.create_default_context(cafile=str(cert))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    try:
        # The listener's reset can even beat connect() back to this thread.
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as raw:
            while True:
                try:
                    if tls.version() is None:
                        tls.do_handshake()
                        continue
                    tls.read(1)
                    return "open"
                except ssl.SSLWantReadError:
                    raw.sendall(outgoing.read())
                    data = raw.recv(65536)
                    if not data:
                        return "closed"
                    incoming.write(data)
    except TimeoutError:
        return "open"
    except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, ssl.SSLError):
        return "closed"


@pytest_twisted.inlineCallbacks
def test_an_address_in_no_allowlist_is_cut_off_at_connect_over_tls_too(
    tmp_path: Path,
) -> Iterator[Deferred[Any]]:
    key, cert = make_certificate(tmp_path)
    peers = (dataclasses.replace(PEER, allow=("10.0.0.0/8",)),)  # not 127.0.0.1
    listen = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    listener = SmppListener(settings(peers=peers, listen=listen), RecordingHandler(), reactor)  # type: ignore[arg-type]
    with capturedLogs() as events:
        port = yield listener.listen(reactor)
        try:
            outcome = yield in_thread(_tls_connect, port.getHost().port, cert)
        finally:
            yield port.stopListening()

    assert outcome == "closed" and listener.connections == {}
    assert listener.refusals["allowlist"] == 1
    assert [e for e in events if e.get("log_failure") or e.get("isError")] == []
    refused = [e["address"] for e in events if e.get("event") == "smpp_connection_refused"]
    assert refused == ["127.0.0.1"]
