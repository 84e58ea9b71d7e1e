"""The SMS channel end to end: smpplib binds as a telco on 127.0.0.1 and texts 8079."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_twisted
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from twisted.internet import reactor, threads
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from gateway.cli import main
from gateway.esme import Esme
from gateway.service import Gateway
from store.models import InboundRow, OutboxRow, ResetEventRow
from tests.support.accounts import add_account
from tests.support.gateway import PEER_PASSWORD, gateway_settings, smpp_port, start_gateway
from tests.support.tls import make_certificate
from tests.support.waiting import until

T = TypeVar("T")
WAIT = 20.0
CODE = "0123456789"
PHONE = "0912345678"
SUCCESS = re.compile(r"^Cap lai mat khau thanh cong\. Tai khoan: 0123456789/Mat khau: (\d{8})$")
MISMATCH = (
    "So dien thoai va ma so BHXH khong khop hoac chua dang ky giao dich dien tu voi co quan BHXH"
)


def in_thread(function: Callable[..., T], *args: Any) -> Deferred[T]:
    return threads.deferToThread(function, *args).addTimeout(WAIT, reactor)


@pytest_twisted.async_yield_fixture
async def gateway(engine: Engine, db_url: str) -> AsyncIterator[Gateway]:
    add_account(engine, CODE, PHONE)
    add_account(engine, "0000000001", "0987654321", registered=False)
    service = await start_gateway(gateway_settings(db_url))
    yield service
    await service.stopService()


def converse(port: int, messages: list[tuple[str, str]], replies: int) -> Esme:
    esme = Esme("127.0.0.1", port, "viettel", PEER_PASSWORD)
    try:
        for source, text in messages:
            esme.submit(source, text)
        assert esme.wait(acks=len(messages), replies=replies, timeout=WAIT)
    finally:
        esme.close()
    return esme


@pytest_twisted.ensureDeferred
async def test_a_matching_message_resets_and_the_reply_carries_the_new_password(
    gateway: Gateway, engine: Engine
) -> None:
    esme = await in_thread(converse, smpp_port(gateway), [("84912345678", "BH MK 0123456789")], 1)

    [(status, message_id, _)] = esme.acks.values()
    assert status == 0 and message_id
    [reply] = esme.replies
    assert reply.source == "8079" and reply.destination == "84912345678"
    match = SUCCESS.match(reply.text)
    assert match is not None
    with engine.connect() as connection:
        stored = connection.execute(sa.select(InboundRow.__table__)).one()
        event = connection.execute(sa.select(ResetEventRow.__table__)).one()
    assert str(stored.id) == message_id and stored.state == "handled"
    assert event.correlation_id == message_id and event.outcome == "reset"


@pytest_twisted.ensureDeferred
async def test_the_password_does_not_rest_in_the_database_after_delivery(
    gateway: Gateway, engine: Engine
) -> None:
    esme = await in_thread(converse, smpp_port(gateway), [("0912345678", "bh mk 0123456789")], 1)
    match = SUCCESS.match(esme.replies[0].text)
    assert match is not None

    async def delivered() -> Any:
        with engine.connect() as connection:
            return connection.execute(sa.select(OutboxRow.__table__)).one()

    row = await delivered()
    for _ in range(100):  # the acknowledgement is recorded just after the deliver_sm_resp
        if row.state == "acknowledged":
            break
        await deferred_later(0.05)
        row = await delivered()
    assert row.state == "acknowledged"
    assert match.group(1) not in (row.body or "") and "Mat khau: ********" in row.body


def deferred_later(seconds: float) -> Deferred[None]:
    return deferLater(reactor, seconds, lambda: None)


@pytest.mark.parametrize(
    ("source", "text", "expected"),
    [
        ("0987654321", "BH MK 0123456789", MISMATCH),
        ("0987654321", "BH MK 0000000001", MISMATCH),
        (
            "0912345678",
            "xin chao",
            "Sai cu phap. Soan: BH MK <Ma so BHXH> gui 8079. VD: BH MK 0123456789",
        ),
        (
            "0912345678",
            "BH MK 12345",
            "Sai cu phap (ma so BHXH gom 10 chu so). Soan: BH MK <Ma so BHXH> gui 8079. "
            "VD: BH MK 0123456789",
        ),
    ],
    ids=["other-phone", "not-registered", "help", "wrong-length"],
)
@pytest_twisted.ensureDeferred
async def test_every_message_gets_a_useful_answer(
    gateway: Gateway, source: str, text: str, expected: str
) -> None:
    esme = await in_thread(converse, smpp_port(gateway), [(source, text)], 1)

    assert [reply.text for reply in esme.replies] == [expected]


@pytest_twisted.ensureDeferred
async def test_the_sixth_reset_in_a_day_gets_the_rate_limit_reply(gateway: Gateway) -> None:
    messages = [("0912345678", f"BH MK 0123456789 lan {i}") for i in range(6)]

    esme = await in_thread(converse, smpp_port(gateway), messages, 6)

    texts = sorted(reply.text for reply in esme.replies)
    assert sum(1 for t in texts if SUCCESS.match(t)) == 5
    assert sum(1 for t in texts if t.startswith("Ban da yeu cau cap lai mat khau qua 5 lan")) == 1


@pytest_twisted.ensureDeferred
async def test_a_resent_message_is_acknowledged_but_answered_once(
    gateway: Gateway, engine: Engine
) -> None:
    def resend(port: int) -> Esme:
        esme = Esme("127.0.0.1", port, "viettel", PEER_PASSWORD)
        try:
            esme.submit("0912345678", "BH MK 0123456789")
            assert esme.wait(acks=1, replies=1, timeout=WAIT)
            esme.submit("0912345678", "BH MK 0123456789")  # the peer lost our response
            assert esme.wait(acks=2, timeout=WAIT)
            assert not esme.wait(replies=2, timeout=1.0)
        finally:
            esme.close()
        return esme

    esme = await in_thread(resend, smpp_port(gateway))

    first, second = (esme.acks[s] for s in sorted(esme.acks))
    assert first[0] == second[0] == 0 and first[1] == second[1]
    with engine.connect() as connection:
        states = sorted(connection.execute(sa.select(InboundRow.state)).scalars())
        assert states == ["duplicate", "handled"]
        assert connection.scalar(sa.select(sa.func.count()).select_from(ResetEventRow)) == 1


@pytest_twisted.ensureDeferred
async def test_send_test_prints_the_acknowledgement_and_the_reply(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "send-test", "--port", str(smpp_port(gateway)), "--system-id", "viettel",
        "--password", PEER_PASSWORD, "--from", "0987654321", "BH MK 0123456789",
    ]  # fmt: skip

    status = await in_thread(main, argv)

    out = capsys.readouterr().out
    assert status == 0
    assert "submit_sm_resp: status 0x00000000, message_id " in out
    assert out.rstrip().endswith(MISMATCH)


@pytest_twisted.ensureDeferred
async def test_send_test_asks_for_a_receipt_and_prints_it(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "send-test", "--port", str(smpp_port(gateway)), "--system-id", "viettel",
        "--password", PEER_PASSWORD, "--from", "0987654321", "--receipt", "BH MK 0123456789",
    ]  # fmt: skip

    status = await in_thread(main, argv)

    out = capsys.readouterr().out
    message_id = re.search(r"message_id (\d+)", out)
    assert status == 0 and message_id is not None and MISMATCH in out
    assert f"delivery receipt for {message_id.group(1)} (message_state 2)" in out
    assert out.rstrip().splitlines()[-1].startswith(f"id:{message_id.group(1)} sub:001")


@pytest.mark.parametrize("how", ["env", "prompt"])
@pytest_twisted.ensureDeferred
async def test_send_test_takes_the_password_from_the_environment_or_a_prompt(
    gateway: Gateway, how: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts: list[str] = []
    monkeypatch.setenv("VSSID_PEER_PASSWORD", PEER_PASSWORD)
    monkeypatch.setattr("getpass.getpass", lambda prompt: prompts.append(prompt) or PEER_PASSWORD)
    password = ["--password", "env:VSSID_PEER_PASSWORD"] if how == "env" else []
    argv = [
        "send-test", "--port", str(smpp_port(gateway)), "--system-id", "viettel", *password,
        "--from", "0987654321", "BH MK 0123456789",
    ]  # fmt: skip

    status = await in_thread(main, argv)

    assert status == 0 and capsys.readouterr().out.rstrip().endswith(MISMATCH)
    assert prompts == ([] if how == "env" else ["bind password for viettel: "])


def test_send_test_with_an_unset_password_variable_says_so_before_connecting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VSSID_NO_SUCH_VARIABLE", raising=False)
    argv = [
        "send-test", "--port", "1", "--system-id", "viettel",
        "--password", "env:VSSID_NO_SUCH_VARIABLE", "--from", "0987654321", "BH MK 0123456789",
    ]  # fmt: skip

    assert main(argv) == 2
    assert "environment variable VSSID_NO_SUCH_VARIABLE is not set" in capsys.readouterr().err


@pytest_twisted.ensureDeferred
async def test_send_test_declines_other_citizens_replies_which_stay_queued_and_unseen(
    gateway: Gateway, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    def queue_a_citizens_reply(port: int) -> None:  # a transmitter only: the reply must wait
        esme = Esme("127.0.0.1", port, "viettel", PEER_PASSWORD, bind="transmitter")
        try:
            esme.submit(PHONE, f"BH MK {CODE}")
            assert esme.wait(acks=1, timeout=WAIT)
        finally:
            esme.close()

    def citizens_reply() -> Any:
        with engine.connect() as connection:
            query = sa.select(OutboxRow.__table__).where(OutboxRow.to_address == PHONE)
            return connection.execute(query).one_or_none()

    def receive(port: int) -> Esme:
        receiver = Esme("127.0.0.1", port, "viettel", PEER_PASSWORD, bind="receiver")
        try:
            assert receiver.wait(replies=1, timeout=WAIT)
        finally:
            receiver.close()
        return receiver

    await in_thread(queue_a_citizens_reply, smpp_port(gateway))
    await until(lambda: citizens_reply() is not None)
    argv = [
        "send-test", "--port", str(smpp_port(gateway)), "--system-id", "viettel",
        "--password", PEER_PASSWORD, "--from", "0987654321", "BH MK 0123456789",
    ]  # fmt: skip

    status = await in_thread(main, argv)

    out = capsys.readouterr().out
    assert status == 0 and out.rstrip().endswith(MISMATCH)
    assert "Mat khau" not in out and PHONE not in out
    await until(lambda: citizens_reply().last_status == 0x64)  # ESME_RX_T_APPN: try again
    assert citizens_reply().state == "queued"
    receiver = await in_thread(receive, smpp_port(gateway))
    assert receiver.replies[0].destination == PHONE and SUCCESS.match(receiver.replies[0].text)


def part_fields(source: str, text: str, **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "source_addr_ton": 2, "source_addr_npi": 1, "source_addr": source,
        "dest_addr_ton": 2, "dest_addr_npi": 1, "destination_addr": "8079",
        "data_coding": 0, "esm_class": 0x03, "short_message": text.encode("ascii"),
    }  # fmt: skip
    fields.update(extra)
    return fields


def send_parts(port: int, parts: list[dict[str, Any]]) -> Esme:
    esme = Esme("127.0.0.1", port, "viettel", PEER_PASSWORD)
    try:
        for fields in parts:
            esme.submit_fields(**fields)
        assert esme.wait(acks=len(parts), replies=1, timeout=WAIT)
        assert not esme.wait(replies=2, timeout=0.5)
    finally:
        esme.close()
    return esme


@pytest_twisted.ensureDeferred
async def test_a_reply_comes_from_the_short_code_as_the_peer_addressed_it(gateway: Gateway) -> None:
    fields = part_fields(
        "84987654321", "BH MK 0123456789", destination_addr="848079", dest_addr_ton=1
    )

    esme = await in_thread(send_parts, smpp_port(gateway), [fields])

    # "848079" with the TON 1 it came with, not "8079" with a TON that says international
    assert (esme.replies[0].source, esme.replies[0].text) == ("848079", MISMATCH)


@pytest_twisted.ensureDeferred
async def test_a_receipt_asked_for_comes_back_naming_the_acknowledged_message(
    gateway: Gateway,
) -> None:
    def scenario() -> tuple[Esme, int]:
        esme = Esme("127.0.0.1", smpp_port(gateway), "viettel", PEER_PASSWORD)
        try:
            asked = esme.submit("84987654321", "BH MK 0123456789", registered_delivery=0x11)
            esme.submit("84987654322", "BH MK 0123456789")  # no receipt asked for
            assert esme.wait(acks=2, replies=2, receipts=1, timeout=WAIT)
            assert not esme.wait(receipts=2, timeout=0.5)
        finally:
            esme.close()
        return esme, asked

    esme, asked = await in_thread(scenario)

    (receipt,) = esme.receipts
    status, message_id, _ = esme.acks[asked]
    assert (status, receipt.message_id, receipt.state) == (0, message_id, 2)  # DELIVERED
    assert receipt.text.startswith(f"id:{message_id} sub:001 dlvrd:001 submit date:")
    assert [reply.text for reply in esme.replies] == [MISMATCH, MISMATCH]


@pytest_twisted.ensureDeferred
async def test_a_long_message_in_udh_parts_is_joined_and_answered_once(gateway: Gateway) -> None:
    udh = [b"\x05\x00\x03\x2a\x02\x01", b"\x05\x00\x03\x2a\x02\x02"]
    parts = [
        part_fields("0912345678", "", esm_class=0x43, short_message=udh[1] + b"56789 cam on"),
        part_fields("0912345678", "", esm_class=0x43, short_message=udh[0] + b"BH MK 01234"),
    ]  # second part first: peers do not promise order

    esme = await in_thread(send_parts, smpp_port(gateway), parts)

    assert SUCCESS.match(esme.replies[0].text)


@pytest_twisted.ensureDeferred
async def test_a_long_message_in_sar_parts_is_joined_and_answered_once(gateway: Gateway) -> None:
    sar = {"sar_msg_ref_num": 513, "sar_total_segments": 2}
    parts = [
        part_fields("0987654321", "BH MK 01234", sar_segment_seqnum=1, **sar),
        part_fields("0987654321", "56789", sar_segment_seqnum=2, **sar),
    ]

    esme = await in_thread(send_parts, smpp_port(gateway), parts)

    assert esme.replies[0].text == MISMATCH


@pytest_twisted.ensureDeferred
async def test_a_ucs2_message_with_vietnamese_diacritics_is_understood(gateway: Gateway) -> None:
    esme = await in_thread(
        converse, smpp_port(gateway), [("0912345678", "Bh Mk 0123456789 cảm ơn ạ")], 1
    )

    assert SUCCESS.match(esme.replies[0].text)


@pytest_twisted.ensureDeferred
async def test_with_a_transmitter_and_a_receiver_the_reply_comes_on_the_receiver(
    gateway: Gateway,
) -> None:
    def scenario(port: int) -> tuple[Esme, Esme]:
        receiver = Esme("127.0.0.1", port, "viettel", PEER_PASSWORD, bind="receiver")
        transmitter = Esme("127.0.0.1", port, "viettel", PEER_PASSWORD, bind="transmitter")
        try:
            transmitter.submit("0912345678", "BH MK 0123456789")
            assert transmitter.wait(acks=1, timeout=WAIT)
            assert receiver.wait(replies=1, timeout=WAIT)
        finally:
            transmitter.close()
            receiver.close()
        return transmitter, receiver

    transmitter, receiver = await in_thread(scenario, smpp_port(gateway))

    assert transmitter.replies == [] and SUCCESS.match(receiver.replies[0].text)


@pytest_twisted.ensureDeferred
async def test_when_too_many_messages_wait_the_peer_is_told_the_queue_is_full(
    gateway: Gateway, engine: Engine
) -> None:
    assert gateway.sms is not None
    gateway.sms.inbound.backlog = gateway.settings.smpp.inbound_queue_limit

    def scenario(port: int) -> Esme:
        esme = Esme("127.0.0.1", port, "viettel", PEER_PASSWORD)
        try:
            esme.submit("0912345678", "BH MK 0123456789")
            assert esme.wait(acks=1, timeout=WAIT)
        finally:
            esme.close()
        return esme

    esme = await in_thread(scenario, smpp_port(gateway))

    assert [status for status, _, _ in esme.acks.values()] == [0x14]  # ESME_RMSGQFUL
    with engine.connect() as connection:
        assert connection.scalar(sa.select(sa.func.count()).select_from(InboundRow)) == 0


@pytest_twisted.ensureDeferred
async def test_tls_is_configuration_only(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, cert = make_certificate(tmp_path)
    listen = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    service = await start_gateway(gateway_settings(sqlite_url, listen=listen))
    try:
        argv = [
            "send-test", "--tls", "--cafile", str(cert), "--port", str(smpp_port(service)),
            "--system-id", "viettel", "--password", PEER_PASSWORD, "--from", "0987654321",
            "BH MK 0123456789 qua TLS",
        ]  # fmt: skip
        status = await in_thread(main, argv)
    finally:
        await service.stopService()

    assert status == 0 and capsys.readouterr().out.rstrip().endswith(MISMATCH)
