"""The smpplib wrapper: its sharp edges, strict decoding, and encoding."""

from __future__ import annotations

import struct

import pytest
import smpplib.consts
import smpplib.smpp

from smpp.codec import ENCODABLE, DecodeError, Pdu, Status, decode, encode
from tests.support.smpp_pdus import bind, header, message

# A valid submit_sm body up to and including sm_length/short_message "hi", no TLVs.
SUBMIT_BODY = (
    b"\0" + b"\x02\x01" + b"0912345678\0" + b"\x02\x01" + b"8079\0" + b"\x03\0\0" + b"\0\0"
    + b"\0\0\0\0" + b"\x02hi"
)  # fmt: skip


class _Counter:
    sequence = 0

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence


# smpplib's behaviour that the wrapper exists for. If an upgrade changes one of these, the
# test says so and the wrapper's comment must be revisited.


def test_smpplib_make_pdu_ignores_the_sequence_argument() -> None:
    built = smpplib.smpp.make_pdu("enquire_link", client=_Counter(), sequence=42)
    assert built.sequence != 42


def test_smpplib_parse_pdu_draws_a_number_from_its_client() -> None:
    counter = _Counter()
    smpplib.smpp.parse_pdu(header("enquire_link", sequence=5), client=counter)
    assert counter.sequence == 1


def test_smpplib_silently_truncates_a_c_string_without_its_nul() -> None:
    parsed = smpplib.smpp.parse_pdu(header("bind_transmitter", b"abc"), client=_Counter())
    assert parsed.system_id == b"ab"


def test_smpplib_raises_key_error_for_a_tlv_of_another_command() -> None:
    with pytest.raises(KeyError):
        smpplib.smpp.parse_pdu(
            header("submit_sm", SUBMIT_BODY + b"\x04\x20\0\x01\x00"), client=_Counter()
        )


def test_smpplib_cannot_parse_a_request_without_a_numbering_client() -> None:
    with pytest.raises(AttributeError):
        smpplib.smpp.parse_pdu(header("enquire_link"))


def test_status_values_match_smpplib() -> None:
    for status in Status:  # smpplib knows v3.4's statuses only: we send no other
        assert getattr(smpplib.consts, f"SMPP_{status.name}") == status.value


# Decoding.


def test_a_submit_sm_decodes_to_bytes_fields_without_nuls() -> None:
    pdu = decode(header("submit_sm", SUBMIT_BODY, sequence=77))
    assert (pdu.command, pdu.sequence, pdu.status) == ("submit_sm", 77, 0)
    assert pdu.params["source_addr"] == b"0912345678"
    assert pdu.string("destination_addr") == "8079"
    assert pdu.octets("short_message") == b"hi"
    assert pdu.integer("esm_class") == 3
    assert pdu.integer("sar_msg_ref_num") is None


def test_an_unknown_command_id_is_invalid_command_with_its_sequence() -> None:
    with pytest.raises(DecodeError) as caught:
        decode(header(0x00000099, sequence=12))
    assert (caught.value.status, caught.value.sequence, caught.value.command) == (
        Status.ESME_RINVCMDID,
        12,
        None,
    )


def test_a_v34_command_smpplib_cannot_parse_is_invalid_command_but_keeps_its_name() -> None:
    with pytest.raises(DecodeError) as caught:
        decode(header("cancel_sm", b"\0" * 8, sequence=3))
    assert caught.value.status == Status.ESME_RINVCMDID
    assert caught.value.command == "cancel_sm"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"abc", Status.ESME_RINVCMDLEN),  # C-string without NUL
        (b"x" * 16 + b"\0pw\0\0\x34\0\0\0", Status.ESME_RINVSYSID),  # system_id too long
        (b"sys\0" + b"p" * 9 + b"\0\0\x34\0\0\0", Status.ESME_RINVPASWD),  # password too long
        (b"sys\0pw\0\0\x34", Status.ESME_RINVCMDLEN),  # body stops inside the mandatory part
    ],
)
def test_a_malformed_bind_names_the_problem(body: bytes, status: Status) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(header("bind_transmitter", body, sequence=4))
    assert (caught.value.status, caught.value.sequence) == (status, 4)
    assert caught.value.command == "bind_transmitter"


def test_a_short_message_shorter_than_sm_length_is_refused() -> None:
    with pytest.raises(DecodeError) as caught:
        decode(header("submit_sm", SUBMIT_BODY[:-3] + b"\x09hi"))
    assert caught.value.status == Status.ESME_RINVCMDLEN


def test_an_sm_length_over_254_is_an_invalid_message_length() -> None:
    with pytest.raises(DecodeError) as caught:
        decode(header("submit_sm", SUBMIT_BODY[:-3] + b"\xff" + b"x" * 255))
    assert caught.value.status == Status.ESME_RINVMSGLEN
    assert decode(header("submit_sm", SUBMIT_BODY[:-3] + b"\xfe" + b"x" * 254))


def test_tlvs_are_read_by_their_announced_length_and_unknown_ones_ignored() -> None:
    tlvs = (
        b"\x14\x00\x00\x03abc"  # vendor TLV: ignored
        + b"\x04\x20\x00\x01\x01"  # dpf_result, not a submit_sm TLV: ignored
        + b"\x02\x0c\x00\x02\x01\x2c"  # sar_msg_ref_num 300
        + b"\x04\x26\x00\x01\x01"  # more_messages_to_send 1
        + b"\x02\x04\x00\x02\x00\x07"  # user_message_reference 7
    )
    pdu = decode(header("submit_sm", SUBMIT_BODY + tlvs))
    assert pdu.integer("sar_msg_ref_num") == 300
    assert pdu.integer("more_messages_to_send") == 1
    assert pdu.integer("user_message_reference") == 7
    assert "dpf_result" not in pdu.params


def test_tlvs_we_do_not_read_are_skipped_even_where_smpplib_would_refuse_them() -> None:
    tlvs = (
        b"\x00\x0d\x00\x01\x01"  # source_addr_subunit: one octet (v3.4), smpplib wants two
        + b"\x02\x02\x00\x03\xa0\x12\x34"  # source_subaddress: an octet string, no NUL
        + b"\x02\x04\x00\x02\x00\x07"  # user_message_reference 7
    )
    pdu = decode(header("submit_sm", SUBMIT_BODY + tlvs))
    assert pdu.integer("user_message_reference") == 7
    assert "source_addr_subunit" not in pdu.params and "source_subaddress" not in pdu.params


@pytest.mark.parametrize(
    ("tlvs", "status"),
    [
        (b"\x02\x0c\x00\x01\x05", Status.ESME_RINVPARLEN),  # 2-octet TLV sent as 1
        (b"\x02\x0c\x00\x09\x01", Status.ESME_RINVOPTPARSTREAM),  # overruns the PDU
        (b"\x02", Status.ESME_RINVOPTPARSTREAM),  # truncated TLV header
    ],
)
def test_a_broken_tlv_stream_is_refused(tlvs: bytes, status: Status) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(header("submit_sm", SUBMIT_BODY + tlvs))
    assert caught.value.status == status


def test_a_response_without_a_body_decodes_with_its_header() -> None:
    pdu = decode(header("deliver_sm_resp", sequence=9, status=0x58))
    assert (pdu.command, pdu.sequence, pdu.status, dict(pdu.params)) == (
        "deliver_sm_resp",
        9,
        0x58,
        {},
    )


def test_a_response_with_a_broken_body_still_decodes_its_header() -> None:
    pdu = decode(header("deliver_sm_resp", b"no-nul", sequence=9))
    assert (pdu.sequence, pdu.status) == (9, 0)


def test_a_frame_whose_length_disagrees_with_its_header_is_invalid_length() -> None:
    frame = struct.pack(">LLLL", 20, 0x15, 0, 1)
    with pytest.raises(DecodeError) as caught:
        decode(frame)
    assert caught.value.status == Status.ESME_RINVCMDLEN


# Encoding.


def test_encode_keeps_our_sequence_and_status() -> None:
    data = encode(Pdu("generic_nack", 0x7FFFFFFF, Status.ESME_RINVCMDID))
    assert data == struct.pack(">LLLL", 16, 0x80000000, 3, 0x7FFFFFFF)


def test_a_refused_bind_and_a_refused_submit_have_no_body() -> None:
    for command in ("bind_transceiver_resp", "submit_sm_resp"):
        data = encode(Pdu(command, 5, Status.ESME_RINVPASWD, {"system_id": b"X"}))
        assert len(data) == 16


def test_a_message_round_trips_with_tlvs_and_a_large_payload() -> None:
    original = message(
        b"",
        command="data_sm",
        sequence=3,
        message_payload=bytes(range(256)) * 4,
        sar_msg_ref_num=65535,
        sar_total_segments=3,
        sar_segment_seqnum=2,
    )
    decoded = decode(encode(original))
    assert decoded.params == {**decoded.params, **original.params}
    assert decoded.sequence == 3


def test_a_bind_round_trips() -> None:
    original = bind()
    assert decode(encode(original)) == original


def test_encode_refuses_what_smpplib_would_silently_truncate() -> None:
    with pytest.raises(ValueError, match="system_id"):
        encode(bind(system_id="x" * 16))


def test_encode_refuses_unknown_fields_and_commands() -> None:
    with pytest.raises(ValueError):
        encode(Pdu("enquire_link", 1, 0, {"short_message": b"x"}))
    with pytest.raises(ValueError):
        encode(Pdu("cancel_sm", 1))


def test_the_commands_smpplib_cannot_build_are_known() -> None:
    assert "deliver_sm_resp" in ENCODABLE
    assert not {"cancel_sm_resp", "replace_sm_resp", "submit_multi_resp"} & ENCODABLE


def test_a_pdu_repr_shows_no_field_values() -> None:
    assert "s3cret" not in repr(bind(password="s3cret"))
