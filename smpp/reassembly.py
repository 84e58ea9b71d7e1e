"""Joining the parts of a concatenated message, with a timeout, as a pure function of parts.

Each part is acknowledged to the peer only once it is stored, so the store, not this object,
is the record of what arrived: the reassembler holds nothing that cannot be rebuilt. After a
restart, feed it the stored parts that were not yet handled (with their original
``received_at``) and it picks up where it was; a group whose time is up is released at the
next :meth:`Reassembler.tick`.

Parts are grouped by ``(peer, source, reference, total)``. The brief names (peer, source,
reference); the total is part of the key too because a phone that reuses a reference for a
message of a different length is sending a different message. A group is released when every
part from 1 to ``total`` is in (:class:`Assembled` with ``complete=True``) or when
``timeout`` seconds have passed since its first part arrived (``complete=False``, the text of
the parts received, in order): by the first :meth:`Reassembler.tick` after that, never by
:meth:`Reassembler.add`, so that stored parts re-fed after a restart, all long past their
time, are joined before they are released (a part arriving for a group whose time is up
likewise joins it). A part that repeats one already held, or arrives for a group released
less than ``timeout`` ago, is :class:`Discarded`: the peer resent it (our response was lost),
and handling it again would answer the citizen twice.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

from smpp.text import UserData, decode_text

GroupKey = tuple[str, str, int, int]


@dataclass(frozen=True, slots=True)
class Part:
    """One stored part; ``id`` is the caller's handle (for instance the inbound row's id)."""

    id: Hashable
    peer: str
    source: str
    user_data: UserData
    received_at: float


@dataclass(frozen=True, slots=True)
class Assembled:
    """A message ready to handle: its text and the ids of the parts it used, in order."""

    text: str
    part_ids: tuple[Hashable, ...]
    complete: bool
    missing: tuple[int, ...]
    peer: str
    source: str
    first_received_at: float


@dataclass(frozen=True, slots=True)
class Discarded:
    """A part not to handle (``reason``: ``"duplicate"`` or ``"late"``); mark it done."""

    part_id: Hashable
    reason: str


Outcome = Assembled | Discarded


@dataclass(slots=True)
class _Group:
    first_received_at: float
    parts: dict[int, Part] = field(default_factory=dict)


class Reassembler:
    """Groups parts of concatenated messages; tick-driven, holding only what it was fed."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._groups: dict[GroupKey, _Group] = {}
        self._released: dict[GroupKey, float] = {}  # key -> when it stops absorbing parts

    @property
    def pending(self) -> int:
        """Groups waiting for more parts."""
        return len(self._groups)

    def add(self, part: Part, now: float) -> list[Outcome]:
        """Feed one part; returns its message if that made it complete, else nothing. Feed
        every part at hand, then :meth:`tick`: it releases the groups whose time is up."""
        concat = part.user_data.concat
        if concat is None or concat.total == 1:
            return [_assemble(part.peer, part.source, part.received_at, [part], ())]
        key = (part.peer, part.source, concat.reference, concat.total)
        if self._released.get(key, -1.0) > now:
            return [Discarded(part.id, "late")]
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(part.received_at)
        if concat.sequence in group.parts:
            return [Discarded(part.id, "duplicate")]
        group.parts[concat.sequence] = part
        group.first_received_at = min(group.first_received_at, part.received_at)
        if len(group.parts) == concat.total:
            return [self._release(key, now)]
        return []

    def tick(self, now: float) -> list[Outcome]:
        """Release every group whose time is up, as it is."""
        for key in [key for key, until in self._released.items() if until <= now]:
            del self._released[key]
        expired = [
            key
            for key, group in self._groups.items()
            if group.first_received_at + self._timeout <= now
        ]
        return [self._release(key, now) for key in expired]

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next releases a group, or ``None``."""
        if not self._groups:
            return None
        return min(group.first_received_at for group in self._groups.values()) + self._timeout

    def _release(self, key: GroupKey, now: float) -> Assembled:
        group = self._groups.pop(key)
        self._released[key] = now + self._timeout
        peer, source, _, total = key
        ordered = [group.parts[number] for number in sorted(group.parts)]
        missing = tuple(n for n in range(1, total + 1) if n not in group.parts)
        return _assemble(peer, source, group.first_received_at, ordered, missing)


def _assemble(
    peer: str, source: str, first: float, parts: list[Part], missing: tuple[int, ...]
) -> Assembled:
    return Assembled(
        text=decode_text([part.user_data for part in parts]),
        part_ids=tuple(part.id for part in parts),
        complete=not missing,
        missing=missing,
        peer=peer,
        source=source,
        first_received_at=first,
    )
