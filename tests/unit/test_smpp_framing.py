"""Framing: whole PDUs out of a byte stream, bounded lengths."""

from __future__ import annotations

import struct

import pytest

from smpp.framing import Framer, FramingError
from tests.support.smpp_pdus import header

ENQUIRE = header("enquire_link", sequence=7)
SUBMIT_LIKE = header("submit_sm", b"x" * 40, sequence=8)


def test_a_pdu_in_one_chunk_comes_out_whole() -> None:
    assert Framer().feed(ENQUIRE) == [ENQUIRE]


def test_a_pdu_fed_byte_by_byte_comes_out_once_complete() -> None:
    framer = Framer()
    out: list[bytes] = []
    for i in range(len(SUBMIT_LIKE)):
        out += framer.feed(SUBMIT_LIKE[i : i + 1])
        if i < len(SUBMIT_LIKE) - 1:
            assert out == []
    assert out == [SUBMIT_LIKE]
    assert framer.buffered == 0


def test_many_pdus_in_one_chunk_come_out_in_order_and_a_tail_is_kept() -> None:
    framer = Framer()
    stream = ENQUIRE + SUBMIT_LIKE + ENQUIRE + SUBMIT_LIKE[:10]
    assert framer.feed(stream) == [ENQUIRE, SUBMIT_LIKE, ENQUIRE]
    assert framer.buffered == 10
    assert framer.feed(SUBMIT_LIKE[10:]) == [SUBMIT_LIKE]


def test_a_length_over_the_maximum_fails_as_soon_as_four_octets_arrive() -> None:
    framer = Framer(maximum=1024)
    with pytest.raises(FramingError) as caught:
        framer.feed(struct.pack(">L", 1025))
    assert caught.value.length == 1025
    assert caught.value.sequence is None


def test_a_length_under_a_header_fails_and_names_the_sequence_when_known() -> None:
    with pytest.raises(FramingError) as caught:
        Framer().feed(struct.pack(">LLLL", 15, 0x15, 0, 99))
    assert caught.value.sequence == 99


def test_a_maximum_length_pdu_is_accepted() -> None:
    pdu = header("submit_sm", b"y" * (1024 - 16))
    assert Framer(maximum=1024).feed(pdu) == [pdu]


def test_a_failed_framer_keeps_failing_and_buffers_nothing() -> None:
    framer = Framer()
    with pytest.raises(FramingError):
        framer.feed(struct.pack(">L", 3))
    assert framer.buffered == 0
    with pytest.raises(FramingError):
        framer.feed(ENQUIRE)


def test_a_huge_length_is_refused_without_waiting_for_its_body_after_the_pdus_before_it() -> None:
    framer = Framer()
    with pytest.raises(FramingError) as caught:
        framer.feed(ENQUIRE + struct.pack(">LLLL", 0x7FFFFFFF, 4, 0, 1))
    assert caught.value.frames == [ENQUIRE]
    assert caught.value.sequence == 1
