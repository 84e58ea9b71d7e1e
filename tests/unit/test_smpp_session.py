"""The pure session: binds, state rules, messages and acknowledgements, our requests, time."""

from __future__ import annotations

import dataclasses

import pytest
from smpplib import command_codes

from smpp.codec import DecodeError, Pdu, Status
from smpp.events import (
    BindRefused,
    Bound,
    CloseConnection,
    MessageReceived,
    PeerError,
    RequestFailed,
    ResponseReceived,
    Unbound,
)
from smpp.framing import FramingError
from smpp.outbound import Outgoing
from smpp.receipts import receipt_part
from smpp.registry import BindKind, Registry
from smpp.session import ALLOWED, MAX_SEQUENCE, State, SubmitError
from tests.support.smpp_pdus import PEER, bind, message, settings
from tests.support.smpp_sessions import bound, new_session, only, sent

OK = Status.ESME_ROK


def _reply(n: int = 1) -> Outgoing:
    return Outgoing(id=n, source_addr="8079", destination_addr="84912345678", short_message=b"hi")


# The table.


def test_the_state_table_has_one_line_for_every_v34_command() -> None:
    assert set(ALLOWED) == set(command_codes.commands)


def test_responses_only_the_smsc_issues_are_never_allowed_from_a_peer() -> None:
    for command in ("submit_sm_resp", "bind_receiver_resp", "query_sm_resp"):
        assert not ALLOWED[command]


def test_requests_only_the_smsc_issues_are_unsupported_commands_once_bound() -> None:
    # No bind state makes them valid from a peer, so "invalid bind status" would mislead it.
    for command in ("outbind", "alert_notification"):
        assert ALLOWED[command] == {State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX}


# Binding.


def test_a_good_bind_is_answered_ok_with_our_system_id_and_version() -> None:
    session = new_session()
    effects = session.receive(bind("bind_transceiver", sequence=9), 1.0)
    (response,) = sent(effects)
    assert (response.command, response.sequence, response.status) == (
        "bind_transceiver_resp",
        9,
        OK,
    )
    assert response.string("system_id") == "VSSID"
    assert response.integer("sc_interface_version") == 0x34
    (up,) = only(Bound, effects)
    assert (up.bind.peer, up.bind.kind, up.bind.address) == (
        "viettel",
        BindKind.TRANSCEIVER,
        "127.0.0.1",
    )
    assert session.state is State.BOUND_TRX


def test_a_v33_peer_gets_no_tlv_in_its_bind_response() -> None:
    effects = new_session().receive(bind(interface_version=0x33), 0.0)
    assert sent(effects)[0].integer("sc_interface_version") is None


@pytest.mark.parametrize(
    ("pdu", "address", "status"),
    [
        (bind(system_id="nobody"), "127.0.0.1", Status.ESME_RINVSYSID),
        (bind(password="wrong"), "127.0.0.1", Status.ESME_RINVPASWD),
        (bind(), "192.0.2.7", Status.ESME_RBINDFAIL),  # not in the peer's allowlist
    ],
)
def test_a_refused_bind_gets_its_status_and_the_connection_closes(
    pdu: Pdu, address: str, status: Status
) -> None:
    session = new_session(address=address)
    effects = session.receive(pdu, 0.0)
    assert [(p.command, p.status) for p in sent(effects)] == [("bind_transceiver_resp", status)]
    assert only(BindRefused, effects)[0].status == status
    assert isinstance(effects[-1], CloseConnection)
    assert session.state is State.CLOSED


def test_an_ipv4_mapped_ipv6_address_is_matched_against_ipv4_networks() -> None:
    session = new_session(address="::ffff:10.1.2.3")
    session.receive(bind(), 0.0)
    assert session.state is State.BOUND_TRX


def test_max_binds_counts_binds_on_every_connection_of_the_peer() -> None:
    registry = Registry(settings(), 0.0)
    for _ in range(PEER.max_binds):
        bound(registry=registry)
    fourth = new_session(registry)
    effects = fourth.receive(bind(), 0.0)
    assert sent(effects)[0].status == Status.ESME_RBINDFAIL


def test_a_closed_bind_frees_its_place() -> None:
    registry = Registry(settings(), 0.0)
    sessions = [bound(registry=registry) for _ in range(PEER.max_binds)]
    assert only(Unbound, sessions[0].connection_lost(1.0))
    bound(registry=registry)


def test_binding_again_is_already_bound_and_keeps_the_bind() -> None:
    session = bound()
    effects = session.receive(bind(sequence=5), 1.0)
    assert [(p.command, p.sequence, p.status) for p in sent(effects)] == [
        ("bind_transceiver_resp", 5, Status.ESME_RALYBND)
    ]
    assert session.state is State.BOUND_TRX


def test_repeated_failed_binds_from_one_address_are_throttled_for_a_minute() -> None:
    registry = Registry(settings(failed_binds_per_minute=3), 0.0)
    for second in range(3):
        new_session(registry).receive(bind(password="guess"), float(second))
    blocked = new_session(registry).receive(bind(), 10.0)  # right password, but throttled
    assert sent(blocked)[0].status == Status.ESME_RBINDFAIL
    other = new_session(registry, address="127.0.0.2").receive(bind(), 10.0)
    assert sent(other)[0].status == OK
    later = new_session(registry).receive(bind(), 61.0)
    assert sent(later)[0].status == OK


class _CountingRegistry(Registry):
    """Counts sweeps of the failed-bind table: each walks every address in it."""

    sweeps = 0

    def _sweep(self, now: float) -> None:
        self.sweeps += 1
        super()._sweep(now)


def test_the_failed_bind_table_is_swept_at_most_once_a_minute_however_many_addresses_fail() -> None:
    registry = _CountingRegistry(settings(), 0.0)
    for n in range(6000):  # 6,000 addresses failing within 6 seconds
        registry.bind_failed(f"10.1.{n // 256}.{n % 256}", n / 1000)
    assert registry.sweeps == 1
    registry.bind_failed("10.2.0.1", 70.0)
    assert registry.sweeps == 2


def test_a_malformed_bind_counts_as_a_failed_bind() -> None:
    registry = Registry(settings(failed_binds_per_minute=1), 0.0)
    session = new_session(registry)
    error = DecodeError(Status.ESME_RINVSYSID, 3, "bind_receiver", "system_id too long")
    effects = session.receive(error, 0.0)
    assert [(p.command, p.status) for p in sent(effects)] == [
        ("bind_receiver_resp", Status.ESME_RINVSYSID)
    ]
    assert session.state is State.CLOSED
    assert registry.bind_throttled("127.0.0.1", 1.0)


# What each state allows.


def test_a_submit_before_bind_is_invalid_bind_status_then_close() -> None:
    session = new_session()
    effects = session.receive(message(sequence=4), 0.0)
    assert [(p.command, p.sequence, p.status) for p in sent(effects)] == [
        ("submit_sm_resp", 4, Status.ESME_RINVBNDSTS)
    ]
    assert isinstance(effects[-1], CloseConnection)


_CANCEL = DecodeError(Status.ESME_RINVCMDID, 8, "cancel_sm", "unsupported command")
_OUTBIND = DecodeError(Status.ESME_RINVCMDID, 8, "outbind", "unsupported command")
_REPLACE = DecodeError(Status.ESME_RINVCMDID, 8, "replace_sm", "unsupported command")
_ALERT = Pdu("alert_notification", 8, 0, {"source_addr": b"0912345678", "esme_addr": b"8079"})


@pytest.mark.parametrize(
    "request_", [_CANCEL, _OUTBIND, _REPLACE, _ALERT], ids=lambda r: str(r.command)
)
def test_an_unsupported_command_before_bind_is_nacked_then_closed(
    request_: Pdu | DecodeError,
) -> None:
    effects = new_session().receive(request_, 0.0)
    assert [(p.command, p.status) for p in sent(effects)] == [
        ("generic_nack", Status.ESME_RINVBNDSTS)
    ]
    assert isinstance(effects[-1], CloseConnection)


def test_an_unknown_command_is_nacked_and_the_session_goes_on() -> None:
    session = bound()
    error = DecodeError(Status.ESME_RINVCMDID, 77, None, "unknown command 0x99")
    effects = session.receive(error, 1.0)
    assert [(p.command, p.sequence, p.status) for p in sent(effects)] == [
        ("generic_nack", 77, Status.ESME_RINVCMDID)
    ]
    assert session.state is State.BOUND_TRX


def test_a_submit_on_a_receiver_bind_is_refused_but_the_bind_stays() -> None:
    session = bound("bind_receiver")
    effects = session.receive(message(), 1.0)
    assert sent(effects)[0].status == Status.ESME_RINVBNDSTS
    assert session.state is State.BOUND_RX


def test_a_data_sm_on_a_receiver_bind_is_refused_but_the_bind_stays() -> None:
    session = bound("bind_receiver")
    effects = session.receive(message(command="data_sm", sequence=4), 1.0)
    assert [(p.command, p.sequence, p.status) for p in sent(effects)] == [
        ("data_sm_resp", 4, Status.ESME_RINVBNDSTS)
    ]
    assert not only(MessageReceived, effects) and session.state is State.BOUND_RX


@pytest.mark.parametrize("kind", ["bind_transmitter", "bind_receiver", "bind_transceiver"])
@pytest.mark.parametrize("request_", [_OUTBIND, _ALERT], ids=lambda r: str(r.command))
def test_a_request_only_the_smsc_issues_is_nacked_as_unsupported_and_the_bind_stays(
    kind: str, request_: Pdu | DecodeError
) -> None:
    session = bound(kind)
    state = session.state
    effects = session.receive(request_, 1.0)
    assert [(p.command, p.sequence, p.status) for p in sent(effects)] == [
        ("generic_nack", 8, Status.ESME_RINVCMDID)
    ]
    assert session.state is state


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("bind_transmitter", Status.ESME_RINVCMDID),
        ("bind_transceiver", Status.ESME_RINVCMDID),  # a transceiver may do all a transmitter may
        ("bind_receiver", Status.ESME_RINVBNDSTS),
    ],
)
def test_replace_sm_is_unsupported_wherever_a_peer_may_send_it(kind: str, status: Status) -> None:
    session = bound(kind)
    assert [(p.command, p.status) for p in sent(session.receive(_REPLACE, 1.0))] == [
        ("generic_nack", status)
    ]
    assert session.state is not State.CLOSED


def test_query_sm_on_a_transmitter_is_nacked_as_unsupported() -> None:
    session = bound("bind_transmitter")
    pdu = Pdu("query_sm", 8, 0, {"message_id": b"1", "source_addr": b"1"})
    assert [(p.command, p.status) for p in sent(session.receive(pdu, 1.0))] == [
        ("generic_nack", Status.ESME_RINVCMDID)
    ]


def test_a_bad_body_gets_the_commands_own_response_with_the_status() -> None:
    session = bound()
    error = DecodeError(Status.ESME_RINVSRCADR, 6, "submit_sm", "source_addr too long")
    assert [(p.command, p.sequence, p.status) for p in sent(session.receive(error, 1.0))] == [
        ("submit_sm_resp", 6, Status.ESME_RINVSRCADR)
    ]


def test_a_wrong_command_length_is_a_generic_nack() -> None:
    error = DecodeError(Status.ESME_RINVCMDLEN, 6, "submit_sm", "body ends inside esm_class")
    assert sent(bound().receive(error, 1.0))[0].command == "generic_nack"


def test_a_framing_error_is_nacked_when_the_sequence_is_known_and_closes() -> None:
    session = bound()
    effects = session.framing_failed(FramingError(70000, 65536, 12), 1.0)
    assert [(p.command, p.sequence, p.status) for p in sent(effects)] == [
        ("generic_nack", 12, Status.ESME_RINVCMDLEN)
    ]
    assert isinstance(effects[-1], CloseConnection)
    assert only(Unbound, effects)


# Messages.


def test_a_message_is_not_answered_until_it_is_acknowledged() -> None:
    session = bound()
    effects = session.receive(message(sequence=31), 1.0)
    assert sent(effects) == []
    (received,) = only(MessageReceived, effects)
    assert received.message.text == "BH MK 0123456789"
    assert (received.message.source_addr, received.message.short_code) == ("0912345678", "8079")
    (response,) = sent(session.acknowledge(received.token, OK, "MO-1", 2.0))
    assert (response.command, response.sequence, response.status) == ("submit_sm_resp", 31, OK)
    assert response.string("message_id") == "MO-1"


def test_fifty_outstanding_messages_are_answered_in_any_order_by_sequence() -> None:
    session = bound()
    tokens = {}
    for sequence in range(100, 150):
        (received,) = only(MessageReceived, session.receive(message(sequence=sequence), 1.0))
        tokens[sequence] = received.token
    assert session.unacknowledged == 50
    for sequence in reversed(range(100, 150)):
        (response,) = sent(session.acknowledge(tokens[sequence], OK, f"id{sequence}", 2.0))
        assert (response.sequence, response.string("message_id")) == (sequence, f"id{sequence}")


@pytest.mark.parametrize(
    ("command", "response", "message_id"),
    [("deliver_sm", "deliver_sm_resp", ""), ("data_sm", "data_sm_resp", "MO-9")],
)
def test_deliver_sm_and_data_sm_are_messages_too(
    command: str, response: str, message_id: str
) -> None:
    session = bound()
    (received,) = only(MessageReceived, session.receive(message(command=command), 1.0))
    assert received.message.text == "BH MK 0123456789"
    (answer,) = sent(session.acknowledge(received.token, OK, "MO-9", 2.0))
    assert (answer.command, answer.string("message_id")) == (response, message_id)


@pytest.mark.parametrize("destination", ["8079", "848079", "+848079", "00848079"])
def test_the_short_code_is_accepted_with_or_without_a_country_prefix(destination: str) -> None:
    effects = bound().receive(message(destination=destination, dest_addr_ton=1), 1.0)
    assert only(MessageReceived, effects)[0].message.short_code == "8079"


def test_a_message_for_another_number_is_invalid_destination_at_once() -> None:
    effects = bound().receive(message(destination="9999"), 1.0)
    assert [(p.command, p.status) for p in sent(effects)] == [
        ("submit_sm_resp", Status.ESME_RINVDSTADR)
    ]
    assert not only(MessageReceived, effects)


@pytest.mark.parametrize(
    ("field", "value", "status"),
    [
        ("source_addr", b"091234567\xe9", Status.ESME_RINVSRCADR),
        ("source_addr", b"0912\x0145678", Status.ESME_RINVSRCADR),
        ("destination_addr", b"8079\xa0", Status.ESME_RINVDSTADR),  # str.strip() ate U+00A0
    ],
)
def test_an_address_that_is_not_printable_ascii_is_refused_at_once(
    field: str, value: bytes, status: Status
) -> None:
    effects = bound().receive(message(**{field: value}), 1.0)
    assert [(p.command, p.status) for p in sent(effects)] == [("submit_sm_resp", status)]
    assert not only(MessageReceived, effects)


def test_a_store_failure_is_answered_throttled_without_a_message_id() -> None:
    session = bound()
    (received,) = only(MessageReceived, session.receive(message(), 1.0))
    (answer,) = sent(session.acknowledge(received.token, Status.ESME_RTHROTTLED, "", 2.0))
    assert (answer.status, dict(answer.params)) == (Status.ESME_RTHROTTLED, {})


def test_inbound_tps_is_shared_by_all_binds_of_a_peer() -> None:
    config = settings(peers=(dataclasses.replace(PEER, max_tps_in=2),))
    registry = Registry(config, 0.0)
    first, second = bound(registry=registry), bound(registry=registry)
    assert only(MessageReceived, first.receive(message(sequence=1), 0.0))
    assert only(MessageReceived, second.receive(message(sequence=2), 0.0))
    throttled = second.receive(message(sequence=3), 0.0)
    assert [(p.sequence, p.status) for p in sent(throttled)] == [(3, Status.ESME_RTHROTTLED)]
    assert only(MessageReceived, first.receive(message(sequence=4), 0.5))


def test_an_acknowledgement_after_the_connection_is_gone_is_dropped() -> None:
    session = bound()
    (received,) = only(MessageReceived, session.receive(message(), 1.0))
    session.connection_lost(2.0)
    assert session.acknowledge(received.token, OK, "x", 3.0) == []


@pytest.mark.parametrize(
    ("command", "esm_class"),
    [("deliver_sm", 0x04), ("data_sm", 0x04), ("submit_sm", 0x08), ("deliver_sm", 0x20)],
)
def test_a_receipt_or_acknowledgement_is_answered_but_never_handled_as_a_text(
    command: str, esm_class: int
) -> None:
    receipt = b"id:17 sub:001 dlvrd:001 submit date:2611221300 done date:2611221300 stat:DELIVRD"
    session = bound()
    effects = session.receive(message(receipt, command=command, esm_class=esm_class), 1.0)
    assert [(p.command, p.status, p.string("message_id")) for p in sent(effects)] == [
        (f"{command}_resp", OK, "")
    ]
    assert not only(MessageReceived, effects) and not only(PeerError, effects)
    assert only(MessageReceived, session.receive(message(sequence=3), 1.0))  # texts still are


@pytest.mark.parametrize(
    ("command", "status"),
    [
        ("submit_sm", Status.ESME_RSUBMITFAIL),
        ("data_sm", Status.ESME_RSUBMITFAIL),
        ("deliver_sm", Status.ESME_RX_P_APPN),  # we receive it as an ESME would
    ],
)
@pytest.mark.parametrize("data_coding", [0x04, 0xF4])
def test_a_binary_message_is_refused_for_good_with_a_v34_status(
    command: str, status: Status, data_coding: int
) -> None:
    effects = bound().receive(message(b"\x01", command=command, data_coding=data_coding), 1.0)
    assert [(p.command, p.status) for p in sent(effects)] == [(f"{command}_resp", status)]
    assert only(PeerError, effects) and not only(MessageReceived, effects)


@pytest.mark.parametrize("data_coding", [0xF0, 0xF1, 0xF2, 0xF3])
def test_a_gsm_text_with_a_message_class_is_received_like_data_coding_0(data_coding: int) -> None:
    session = bound()
    effects = session.receive(message(command="deliver_sm", data_coding=data_coding), 1.0)
    (received,) = only(MessageReceived, effects)
    assert received.message.text == "BH MK 0123456789"
    assert not sent(effects)


# enquire_link and unbind.


def test_their_enquire_link_is_answered_even_while_ours_is_outstanding() -> None:
    session = bound()
    ours = sent(session.tick(30.0))
    assert [p.command for p in ours] == ["enquire_link"]
    (answer,) = sent(session.receive(Pdu("enquire_link", 555), 30.1))
    assert (answer.command, answer.sequence) == ("enquire_link_resp", 555)
    assert session.receive(Pdu("enquire_link_resp", ours[0].sequence), 30.2) == []


def test_enquire_link_goes_out_after_the_idle_time_and_a_silent_peer_is_closed() -> None:
    session = bound()
    assert session.next_deadline() == 30.0
    assert session.tick(29.9) == []
    assert [p.command for p in sent(session.tick(30.0))] == ["enquire_link"]
    assert session.next_deadline() == 60.0
    effects = session.tick(60.0)
    assert isinstance(effects[-1], CloseConnection)
    assert "enquire_link" in effects[-1].reason


def test_a_connection_that_never_binds_is_closed_after_the_inactivity_timeout() -> None:
    session = new_session()
    assert session.next_deadline() == 120.0
    assert isinstance(session.tick(120.0)[-1], CloseConnection)


def test_an_unbind_from_the_peer_is_answered_and_the_connection_closed() -> None:
    session = bound()
    effects = session.receive(Pdu("unbind", 40), 1.0)
    assert [(p.command, p.sequence) for p in sent(effects)] == [("unbind_resp", 40)]
    assert only(Unbound, effects)
    assert isinstance(effects[-1], CloseConnection)


def test_an_unbind_waits_for_pending_acknowledgements() -> None:
    session = bound()
    (received,) = only(MessageReceived, session.receive(message(sequence=3), 1.0))
    effects = session.receive(Pdu("unbind", 4), 1.5)
    assert sent(effects) == [] and only(Unbound, effects)
    assert sent(session.receive(message(sequence=5), 1.6))[0].status == Status.ESME_RINVBNDSTS
    answers = session.acknowledge(received.token, OK, "x", 2.0)
    assert [(p.command, p.sequence) for p in sent(answers)] == [
        ("submit_sm_resp", 3),
        ("unbind_resp", 4),
    ]
    assert isinstance(answers[-1], CloseConnection)


def test_our_unbind_closes_on_its_response_or_after_the_response_timeout() -> None:
    session = bound()
    effects = session.unbind(1.0)
    (request,) = sent(effects)
    assert request.command == "unbind" and only(Unbound, effects)
    assert isinstance(
        session.receive(Pdu("unbind_resp", request.sequence), 2.0)[-1], CloseConnection
    )
    silent = bound()
    silent.unbind(1.0)
    assert isinstance(silent.tick(31.0)[-1], CloseConnection)


def test_our_unbind_waits_for_messages_being_stored_and_refuses_new_ones() -> None:
    session = bound()
    (received,) = only(MessageReceived, session.receive(message(sequence=5), 1.0))
    assert sent(session.unbind(2.0)) == []  # not while message 5 awaits its acknowledgement
    refused = session.receive(message(sequence=6), 2.5)
    assert [(p.sequence, p.status) for p in sent(refused)] == [(6, Status.ESME_RINVBNDSTS)]
    answered = sent(session.acknowledge(received.token, OK, "MO-5", 3.0))
    assert [(p.command, p.sequence) for p in answered][:1] == [("submit_sm_resp", 5)]
    assert [p.command for p in answered][1:] == ["unbind"]


def test_our_unbind_goes_out_anyway_once_the_response_timeout_has_passed() -> None:
    session = bound()
    session.receive(message(sequence=5), 1.0)
    session.unbind(2.0)
    assert session.next_deadline() == 32.0
    assert [p.command for p in sent(session.tick(32.0))] == ["unbind"]


# Our deliver_sm.


def test_a_reply_goes_out_numbered_and_its_response_comes_back_under_its_id() -> None:
    session = bound("bind_receiver")
    (request,) = sent(session.submit(_reply(7), 1.0))
    assert request.command == "deliver_sm" and request.sequence >= 1
    assert request.octets("short_message") == b"hi"
    effects = session.receive(Pdu("deliver_sm_resp", request.sequence, 0, {"message_id": b""}), 1.1)
    assert effects == [ResponseReceived(7, OK, "")]


def test_a_generic_nack_answers_our_request_with_its_status() -> None:
    session = bound()
    (request,) = sent(session.submit(_reply(), 1.0))
    effects = session.receive(Pdu("generic_nack", request.sequence, Status.ESME_RTHROTTLED), 1.1)
    assert effects == [ResponseReceived(1, Status.ESME_RTHROTTLED, "")]


def test_a_v33_peer_gets_a_receipt_without_the_v34_tlvs() -> None:
    receipt = receipt_part((1, 1), "17", "id:17 stat:DELIVRD", source_addr="8079",
                           destination_addr="84912345678")  # fmt: skip
    for version, tlvs in ((0x34, {"receipted_message_id", "message_state"}), (0x33, set())):
        session = new_session()
        session.receive(bind(interface_version=version), 0.0)
        (pdu,) = sent(session.submit(receipt, 1.0))
        assert {"receipted_message_id", "message_state"} & set(pdu.params) == tlvs
        assert pdu.integer("esm_class") == 0x04


def test_the_window_limits_outstanding_replies() -> None:
    session = bound()
    requests = [sent(session.submit(_reply(n), 1.0))[0] for n in range(PEER.window)]
    assert session.free_window == 0
    with pytest.raises(SubmitError, match="window full"):
        session.submit(_reply(99), 1.0)
    session.receive(Pdu("deliver_sm_resp", requests[2].sequence), 1.1)
    assert session.free_window == 1


def test_replies_cannot_go_on_a_transmitter_bind_or_twice_under_one_id() -> None:
    with pytest.raises(SubmitError, match="not bound to receive"):
        bound("bind_transmitter").submit(_reply(), 1.0)
    session = bound()
    session.submit(_reply(), 1.0)
    with pytest.raises(SubmitError, match="duplicate id"):
        session.submit(_reply(), 1.0)


def test_a_reply_that_cannot_be_encoded_is_refused_before_it_takes_a_number_or_a_slot() -> None:
    config = settings(peers=(dataclasses.replace(PEER, max_tps_out=1),))
    session = bound("bind_receiver", config=config)
    bad = Outgoing(id=1, source_addr="8079", destination_addr="091234567\xe9", short_message=b"")
    with pytest.raises(SubmitError, match="invalid deliver_sm: destination_addr"):
        session.submit(bad, 1.0)
    assert session.free_window == PEER.window
    (request,) = sent(session.submit(_reply(1), 1.0))  # same id, same second, one TPS token
    assert request.sequence == 1


def test_outbound_tps_is_enforced_per_peer() -> None:
    config = settings(peers=(dataclasses.replace(PEER, max_tps_out=1),))
    session = bound(config=config)
    session.submit(_reply(1), 1.0)
    with pytest.raises(SubmitError, match="throttled"):
        session.submit(_reply(2), 1.0)
    session.submit(_reply(3), 2.0)


def test_a_reply_without_response_fails_alone_after_the_timeout() -> None:
    session = bound()
    session.submit(_reply(1), 1.0)
    session.submit(_reply(2), 5.0)
    assert only(RequestFailed, session.tick(31.0)) == [RequestFailed(1, "timeout")]
    assert session.state is State.BOUND_TRX
    assert session.next_deadline() == 35.0


def test_a_lost_connection_fails_outstanding_replies_and_releases_the_bind() -> None:
    registry = Registry(settings(), 0.0)
    session = bound(registry=registry)
    session.submit(_reply(1), 1.0)
    effects = session.connection_lost(2.0)
    assert RequestFailed(1, "connection lost") in effects
    assert only(Unbound, effects) and not only(CloseConnection, effects)
    assert registry.binds("viettel") == []


def test_a_response_to_nothing_we_sent_is_reported_and_ignored() -> None:
    effects = bound().receive(Pdu("deliver_sm_resp", 12345), 1.0)
    assert only(PeerError, effects) and not sent(effects)


def test_sequence_numbers_wrap_and_skip_those_still_outstanding() -> None:
    session = bound()
    session._sequence = MAX_SEQUENCE - 1  # white-box: reaching the end takes 2**31 requests
    first = sent(session.submit(_reply(1), 1.0))[0].sequence
    second = sent(session.submit(_reply(2), 1.0))[0].sequence
    assert (first, second) == (MAX_SEQUENCE, 1)


def test_nothing_happens_after_close() -> None:
    session = bound()
    session.connection_lost(1.0)
    assert session.receive(message(), 2.0) == []
    assert session.tick(1000.0) == []
    assert session.next_deadline() is None


def test_an_unbind_waiting_for_acknowledgements_gives_up_after_the_response_timeout() -> None:
    session = bound()
    (received,) = only(MessageReceived, session.receive(message(sequence=3), 1.0))
    session.receive(Pdu("unbind", 4), 2.0)
    assert session.next_deadline() == 32.0
    effects = session.tick(32.0)
    assert [(p.command, p.sequence) for p in sent(effects)] == [("unbind_resp", 4)]
    assert isinstance(effects[-1], CloseConnection)
    assert session.acknowledge(received.token, OK, "late", 33.0) == []


def test_when_both_sides_unbind_at_once_theirs_is_answered() -> None:
    session = bound()
    session.unbind(1.0)
    effects = session.receive(Pdu("unbind", 9), 1.1)
    assert [(p.command, p.sequence, p.status) for p in sent(effects)] == [("unbind_resp", 9, OK)]
    assert isinstance(effects[-1], CloseConnection)
