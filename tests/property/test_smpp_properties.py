"""Invariants of the SMPP core under generated input (hypothesis)."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from smpplib import command_codes

from smpp.codec import DecodeError, Pdu, Status, decode, encode
from smpp.events import CloseConnection, MessageReceived, SendPdu
from smpp.framing import Framer, FramingError
from smpp.reassembly import Assembled, Part, Reassembler
from smpp.session import State
from smpp.text import (
    _BASIC,
    GSM_SINGLE,
    TextError,
    decode_gsm7,
    decode_text,
    encode_gsm7,
    encode_reply,
    user_data,
)
from tests.support.smpp_pdus import bind, message
from tests.support.smpp_sessions import bound, new_session

COMMAND_IDS = sorted(command_codes.commands.values())
V34_STATUSES = frozenset(Status)  # smpplib's v3.4 table has them all (test_smpp_codec)
VALID = [
    encode(bind()),
    encode(message(sequence=5, sar_msg_ref_num=9, sar_total_segments=2, sar_segment_seqnum=1)),
    encode(message(b"\x05\x00\x03\x01\x02\x01abc", command="deliver_sm", esm_class=0x40)),
    encode(message(b"x" * 300, command="data_sm", sequence=6)),
    encode(Pdu("enquire_link", 7)),
    encode(Pdu("deliver_sm_resp", 8, 0, {"message_id": b""})),
]


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """A frame with a consistent command_length: a known or random command, a random body."""
    command = draw(st.one_of(st.sampled_from(COMMAND_IDS), st.integers(0, 2**32 - 1)))
    body = draw(st.binary(max_size=300))
    sequence = draw(st.integers(0, 2**32 - 1))
    status = draw(st.sampled_from([0, 0, 0x58, draw(st.integers(0, 2**32 - 1))]))
    return struct.pack(">LLLL", 16 + len(body), command, status, sequence) + body


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid PDU with octets flipped, inserted or deleted, its length then fixed up."""
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(16, len(data)))
        action = draw(st.sampled_from(["flip", "insert", "delete"]))
        if action == "insert" or position == len(data):
            data[position:position] = bytes([draw(st.integers(0, 255))])
        elif action == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        else:
            del data[position]
    data[0:4] = struct.pack(">L", len(data))
    return bytes(data)


@given(st.lists(frames(), min_size=1, max_size=8), st.lists(st.integers(0, 4000), max_size=10))
def test_framing_does_not_depend_on_how_tcp_splits_the_stream(
    pdus: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(pdus)
    points = sorted({min(cut, len(stream)) for cut in cuts})
    framer = Framer()
    out: list[bytes] = []
    for start, end in zip([0, *points], [*points, len(stream)], strict=True):
        out += framer.feed(stream[start:end])
    assert out == pdus


@given(st.binary(max_size=64))
def test_framing_either_frames_or_raises_framing_error(data: bytes) -> None:
    try:
        for frame in Framer(maximum=1024).feed(data):
            assert 16 <= len(frame) <= 1024
    except FramingError:
        pass


@given(st.one_of(frames(), mutated()))
def test_decode_fails_only_with_decode_error(frame: bytes) -> None:
    try:
        pdu = decode(frame)
    except DecodeError as error:
        assert error.status != 0
    else:
        assert pdu.sequence == struct.unpack_from(">L", frame, 12)[0]


@settings(max_examples=300)
@given(st.lists(st.one_of(frames(), mutated()), min_size=1, max_size=6))
def test_random_and_mutated_pdus_never_crash_a_session_and_every_request_is_answered(
    stream: list[bytes],
) -> None:
    session = bound()
    for frame in stream:
        if session.state is State.CLOSED:
            break
        item: Pdu | DecodeError
        try:
            item = decode(frame)
        except DecodeError as error:
            item = error
        effects = session.receive(item, 1.0)
        is_response = item.command is not None and (
            item.command.endswith("_resp") or item.command == "generic_nack"
        )
        for effect in effects:
            if isinstance(effect, MessageReceived):
                effects += session.acknowledge(effect.token, 0, "id", 1.0)
        answered = any(
            isinstance(e, SendPdu) and e.pdu.sequence == item.sequence and e.pdu.is_response
            for e in effects
        )
        closed = any(isinstance(e, CloseConnection) for e in effects)
        assert answered or closed or is_response
        for effect in effects:
            if isinstance(effect, SendPdu):
                encode(effect.pdu)  # everything the session sends can be encoded
                assert effect.pdu.status in V34_STATUSES  # a v3.4 peer knows every status
    session.tick(10_000.0)
    session.connection_lost(10_001.0)


@given(st.binary(max_size=64))
def test_any_bytes_before_bind_are_answered_or_close_the_connection(data: bytes) -> None:
    session = new_session()
    try:
        frames_ = Framer().feed(data)
    except FramingError as error:
        assert isinstance(session.framing_failed(error, 1.0)[-1], CloseConnection)
        return
    for frame in frames_:
        if session.state is State.CLOSED:
            break
        try:
            effects = session.receive(decode(frame), 1.0)
        except DecodeError as error:
            effects = session.receive(error, 1.0)
        assert session.state in (State.OPEN, State.BOUND_TRX, State.CLOSED)
        assert effects or session.state is State.CLOSED


GSM_TEXT = st.text(
    alphabet=st.sampled_from(sorted({c for c in map(chr, range(0x20, 0x2000)) if encode_gsm7(c)})),
    max_size=700,
)
ANY_TEXT = st.text(max_size=400)  # hypothesis leaves out lone surrogates


def _round_trip(text: str, packed: bool) -> str:
    reassembler = Reassembler(timeout=60)
    out: list[Assembled] = []
    for number, part in enumerate(encode_reply(text, reference=77, packed=packed)):
        data = user_data(
            part.short_message,
            data_coding=part.data_coding,
            esm_class=part.esm_class,
            packed=packed,
        )
        results = reassembler.add(Part(number, "p", "s", data, 0.0), 0.0)
        out += [r for r in results if isinstance(r, Assembled)]
    (message_,) = out
    assert message_.complete
    return message_.text


@given(st.one_of(GSM_TEXT, ANY_TEXT))
def test_our_replies_read_back_as_the_same_text(text: str) -> None:
    assert _round_trip(text, packed=False) == text


@given(GSM_TEXT.filter(lambda t: "@" not in t and "\r" not in t))
def test_our_packed_replies_read_back_as_the_same_text(text: str) -> None:
    # '@' and CR are left out: in a packed payload whose last seven bits may be padding they
    # are read as padding (see smpp.text); our replies never end a part with them.
    assert _round_trip(text, packed=True) == text


@given(GSM_TEXT)
def test_a_gsm_reply_uses_one_segment_exactly_when_it_fits(text: str) -> None:
    septets = encode_gsm7(text) or b""
    assert (len(encode_reply(text, 1)) == 1) == (len(septets) <= GSM_SINGLE)


@given(st.binary(max_size=200), st.integers(0, 255), st.integers(0, 255), st.booleans())
def test_reading_any_payload_never_fails_except_with_text_error(
    payload: bytes, data_coding: int, esm_class: int, packed: bool
) -> None:
    try:
        data = user_data(payload, data_coding=data_coding, esm_class=esm_class, packed=packed)
    except TextError as error:
        assert error.status in (Status.ESME_RSUBMITFAIL, Status.ESME_RINVESMCLASS)
        return
    assert isinstance(decode_text([data]), str)


@given(st.permutations(list(range(1, 6))), st.lists(st.integers(1, 5), max_size=4))
def test_parts_in_any_order_with_resends_make_one_message(
    order: list[int], resent: list[int]
) -> None:
    text = "x" * 153 * 4 + "tail"
    parts = encode_reply(text, reference=3)
    reassembler = Reassembler(timeout=60)
    done: list[Assembled] = []
    for number in [*order[:2], *resent, *order[2:]]:
        part = parts[number - 1]
        data = user_data(part.short_message, data_coding=0, esm_class=part.esm_class)
        done += [
            r
            for r in reassembler.add(Part((number, len(done)), "p", "s", data, 0.0), 0.0)
            if isinstance(r, Assembled)
        ]
    assert [m.text for m in done] == [text]


@given(st.binary(max_size=200))
def test_gsm7_text_without_escapes_decodes_as_septet_by_septet(septets: bytes) -> None:
    plain = septets.replace(b"\x1b", b"")
    expected = "".join(_BASIC[s] if s < 0x80 else "\ufffd" for s in plain)
    assert decode_gsm7(plain) == expected
