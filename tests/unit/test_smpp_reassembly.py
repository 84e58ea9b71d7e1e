"""Reassembly of concatenated messages: complete, timed out, duplicates, re-fed."""

from __future__ import annotations

from smpp.reassembly import Assembled, Discarded, Part, Reassembler
from smpp.text import Coding, Concat, UserData


def _part(number: int, text: str, *, total: int = 3, ref: int = 7, at: float = 0.0) -> Part:
    data = UserData(Coding.GSM7, text.encode(), Concat(ref, total, number))
    return Part(id=f"{ref}-{number}-{at}", peer="viettel", source="0912", user_data=data,
                received_at=at)  # fmt: skip


def test_a_single_part_message_is_ready_at_once() -> None:
    data = UserData(Coding.GSM7, b"BH MK 1")
    (out,) = Reassembler(60).add(Part(1, "viettel", "0912", data, 5.0), now=5.0)
    assert isinstance(out, Assembled)
    assert (out.text, out.part_ids, out.complete) == ("BH MK 1", (1,), True)


def test_parts_in_any_order_are_joined_in_sequence_once_all_are_in() -> None:
    reassembler = Reassembler(60)
    assert reassembler.add(_part(3, "C"), 1.0) == []
    assert reassembler.add(_part(1, "A"), 1.0) == []
    (out,) = reassembler.add(_part(2, "B"), 2.0)
    assert isinstance(out, Assembled)
    assert (out.text, out.complete, out.missing) == ("ABC", True, ())
    assert out.part_ids == ("7-1-0.0", "7-2-0.0", "7-3-0.0")
    assert reassembler.pending == 0


def test_after_the_timeout_the_parts_received_are_handled_as_they_are() -> None:
    reassembler = Reassembler(60)
    reassembler.add(_part(1, "A", at=10.0), 10.0)
    reassembler.add(_part(3, "C", at=20.0), 20.0)
    assert reassembler.next_deadline() == 70.0
    assert reassembler.tick(69.9) == []
    (out,) = reassembler.tick(70.0)
    assert isinstance(out, Assembled)
    assert (out.text, out.complete, out.missing) == ("AC", False, (2,))
    assert reassembler.next_deadline() is None


def test_a_part_for_a_timed_out_group_joins_it_and_tick_releases_every_such_group() -> None:
    reassembler = Reassembler(60)
    reassembler.add(_part(1, "A", ref=1), 0.0)
    reassembler.add(_part(1, "B", ref=2), 0.0)
    assert reassembler.add(_part(2, "C", ref=1, at=61.0), 61.0) == []
    first, other = reassembler.tick(61.0)
    assert isinstance(first, Assembled) and isinstance(other, Assembled)
    assert (first.text, first.complete, first.missing) == ("AC", False, (3,))
    assert other.text == "B" and reassembler.pending == 0


def test_a_resent_part_is_discarded_not_handled_twice() -> None:
    reassembler = Reassembler(60)
    reassembler.add(_part(1, "A"), 0.0)
    (dup,) = reassembler.add(_part(1, "A", at=1.0), 1.0)
    assert dup == Discarded("7-1-1.0", "duplicate")


def test_a_part_arriving_after_its_message_was_handled_is_discarded_as_late() -> None:
    reassembler = Reassembler(60)
    for number in (1, 2):
        reassembler.add(_part(number, "x", total=2), 0.0)
    (late,) = reassembler.add(_part(2, "x", total=2, at=30.0), 30.0)
    assert isinstance(late, Discarded) and late.reason == "late"
    reassembler.tick(61.0)
    assert reassembler.add(_part(1, "new", total=2, at=62.0), 62.0) == []


def test_messages_are_kept_apart_by_peer_source_reference_and_total() -> None:
    reassembler = Reassembler(60)
    reassembler.add(_part(1, "A", ref=1), 0.0)
    reassembler.add(_part(1, "B", ref=2), 0.0)
    reassembler.add(_part(1, "C", ref=1, total=2), 0.0)
    assert reassembler.pending == 3


def test_parts_reloaded_after_a_restart_are_joined_before_their_late_release() -> None:
    reassembler = Reassembler(60)  # a fresh process, fed the stored parts at t=500
    assert reassembler.add(_part(1, "A", at=400.0), 500.0) == []
    assert reassembler.add(_part(3, "C", at=410.0), 500.0) == []
    assert reassembler.tick(500.0) == [
        Assembled("AC", ("7-1-400.0", "7-3-410.0"), False, (2,), "viettel", "0912", 400.0)
    ]
