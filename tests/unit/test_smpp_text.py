"""Text: codings, GSM-7 (unpacked and packed), UDH/SAR, and our replies' segments."""

from __future__ import annotations

import pytest

from smpp.codec import Status
from smpp.text import (
    Coding,
    Concat,
    TextError,
    UserData,
    decode_gsm7,
    decode_text,
    encode_gsm7,
    encode_reply,
    pack_septets,
    unpack_septets,
    user_data,
)


def _read(payload: bytes, data_coding: int = 0, esm_class: int = 0, packed: bool = False) -> str:
    data = user_data(payload, data_coding=data_coding, esm_class=esm_class, packed=packed)
    return decode_text([data])


def test_gsm7_unpacked_reads_basic_and_extension_characters() -> None:
    payload = b"BH MK " + bytes([0x1B, 0x65, 0x1B, 0x28, 0x1B, 0x29, 0x00, 0x01, 0x5F])
    assert _read(payload) == "BH MK €{}@£§"


def test_an_unknown_escape_shows_the_basic_character_and_a_high_octet_is_replaced() -> None:
    assert decode_gsm7(bytes([0x1B, 0x41, 0x80])) == "A\ufffd"


def test_ia5_latin1_and_ucs2_are_read_by_data_coding() -> None:
    assert _read(b"BH MK 1", data_coding=1) == "BH MK 1"
    assert _read("Mã số".encode("latin-1", "replace"), data_coding=3) == "Mã s?"
    assert _read("Mã số 😀".encode("utf-16-be"), data_coding=8) == "Mã số 😀"
    assert _read("Mã".encode("utf-16-be"), data_coding=0x18) == "Mã"


def test_an_odd_ucs2_payload_is_read_with_a_replacement_not_an_error() -> None:
    assert _read(b"\x00B\x00", data_coding=8) == "B\ufffd"


@pytest.mark.parametrize("data_coding", [0x02, 0x04, 0xF4, 0xF5, 0xF6, 0xF7])
def test_binary_data_is_refused_for_good_with_a_v34_status(data_coding: int) -> None:
    with pytest.raises(TextError) as caught:
        _read(b"\x01\x02", data_coding=data_coding)
    assert caught.value.status == Status.ESME_RSUBMITFAIL  # not SMPP 5.0's ESME_RINVDCS


@pytest.mark.parametrize("data_coding", [0x00, 0xF0, 0xF1, 0xF2, 0xF3])
@pytest.mark.parametrize("packed", [False, True])
def test_the_gsm_default_alphabet_with_a_message_class_reads_like_data_coding_0(
    data_coding: int, packed: bool
) -> None:
    septets = encode_gsm7("BH MK 0123456789 €") or b""
    payload = pack_septets(septets) if packed else septets
    assert _read(payload, data_coding=data_coding, packed=packed) == "BH MK 0123456789 €"


def test_packed_gsm7_is_read_for_a_packing_peer() -> None:
    assert _read(pack_septets(encode_gsm7("BH MK 0123456789") or b""), packed=True) == (
        "BH MK 0123456789"
    )


def test_seven_packed_septets_lose_their_cr_padding() -> None:
    packed = pack_septets(encode_gsm7("1234567") or b"")
    assert len(packed) == 7
    assert unpack_septets(packed) == b"1234567"


def test_packed_septets_after_a_udh_skip_the_fill_bits() -> None:
    udh = bytes([0x05, 0x00, 0x03, 0x2A, 0x02, 0x01])
    payload = udh + pack_septets(encode_gsm7("hello") or b"", fill_bits=1)
    data = user_data(payload, data_coding=0, esm_class=0x40, packed=True)
    assert decode_text([data]) == "hello"
    assert data.concat == Concat(0x2A, 2, 1)


def test_udh_with_16_bit_reference_and_other_elements() -> None:
    udh = bytes([0x0C, 0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0, 0x08, 0x04, 0x12, 0x34, 0x03, 0x02])
    data = user_data(udh + b"abc", data_coding=0, esm_class=0x43)
    assert data.concat == Concat(0x1234, 3, 2)
    assert data.data == b"abc"


def test_a_udh_that_does_not_fit_is_refused_as_invalid_esm_class() -> None:
    with pytest.raises(TextError) as caught:
        user_data(b"\x09\x00\x03", data_coding=0, esm_class=0x40)
    assert caught.value.status == Status.ESME_RINVESMCLASS


def test_sar_tlvs_give_the_concatenation_when_there_is_no_udh() -> None:
    data = user_data(b"abc", data_coding=0, esm_class=0, sar=Concat(300, 2, 2))
    assert data.concat == Concat(300, 2, 2)


def test_a_part_numbered_zero_or_past_its_total_is_not_concatenated() -> None:
    assert user_data(b"a", data_coding=0, esm_class=0, sar=Concat(1, 2, 3)).concat is None
    assert user_data(b"a", data_coding=0, esm_class=0, sar=Concat(1, 2, 0)).concat is None


def test_a_surrogate_pair_split_across_two_parts_survives_joining() -> None:
    encoded = "ab😀".encode("utf-16-be")
    first, second = encoded[:6], encoded[6:]  # the split falls inside the pair
    parts = [UserData(Coding.UCS2, first), UserData(Coding.UCS2, second)]
    assert decode_text(parts) == "ab😀"


def test_an_escape_split_across_two_gsm7_parts_survives_joining() -> None:
    parts = [UserData(Coding.GSM7, b"a\x1b"), UserData(Coding.GSM7, b"\x65b")]
    assert decode_text(parts) == "a€b"


# Our replies.

REPLY = "Cap lai mat khau thanh cong. Tai khoan: 0123456789/Mat khau: 12345678"


def test_a_gsm7_reply_that_fits_is_one_unpacked_segment() -> None:
    (part,) = encode_reply(REPLY, reference=1)
    assert (part.data_coding, part.esm_class) == (0, 0)
    assert part.short_message == REPLY.encode("ascii")


def test_160_septets_fit_one_segment_but_an_extension_character_counts_two() -> None:
    assert len(encode_reply("x" * 160, 1)) == 1
    assert len(encode_reply("x" * 159 + "€", 1)) == 2


def test_a_long_gsm7_reply_is_split_into_153_septet_parts_with_a_udh() -> None:
    parts = encode_reply("y" * 400, reference=0x2A)
    assert [len(p.short_message) for p in parts] == [159, 159, 6 + 94]
    assert [p.short_message[:6] for p in parts] == [bytes([5, 0, 3, 0x2A, 3, n]) for n in (1, 2, 3)]
    assert all(p.esm_class == 0x40 for p in parts)


def test_an_escape_sequence_is_never_split_between_parts() -> None:
    parts = encode_reply("x" * 152 + "€" + "z" * 10, reference=1)
    assert parts[0].short_message[6:] == b"x" * 152
    assert parts[1].short_message[6:8] == b"\x1b\x65"


def test_a_non_gsm_reply_is_ucs2_in_70_or_67_character_parts() -> None:
    assert len(encode_reply("ệ" * 70, 1)) == 1
    parts = encode_reply("ệ" * 71, 1)
    assert [p.data_coding for p in parts] == [8, 8]
    assert [len(p.short_message) - 6 for p in parts] == [134, 8]


def test_a_surrogate_pair_is_never_split_between_ucs2_parts() -> None:
    parts = encode_reply("ab" + "😀" * 40, 1)
    first = parts[0].short_message[6:]
    assert len(first) == 132  # a 33rd pair would need octets 133-136 of 134
    assert first.decode("utf-16-be") == "ab" + "😀" * 32


def test_a_packing_peer_gets_packed_septets() -> None:
    (part,) = encode_reply("hello", 1, packed=True)
    assert part.short_message == pack_septets(b"hello")
    assert len(part.short_message) == 5
