"""Delivering queued replies: claims, results, retries and expiry, for one or many instances.

Several gateway processes may share one PostgreSQL database. A reply is sent by the instance
that *claims* it: the claim moves it from ``queued`` to ``sending`` with the instance's name
and a lease (``claimed_until``), selected with ``FOR UPDATE SKIP LOCKED`` so two instances
never claim the same row. (SQLite has one writer at a time, so its ``BEGIN IMMEDIATE`` gives
the same guarantee to the single instance it serves.) Results are written only while the
claim is still ours. Every running instance releases, on each housekeeping tick, any claim
whose lease ran out (its instance died and was not restarted, or restarted under another
name); an instance restarting under the same name releases its own claims at once. Either way
the reply goes out again, which is the only way a citizen can get a reply twice: at most one
window of deliver_sm that were in flight at the crash. Each of these writes is one UPDATE
whose WHERE states the whole condition (``RETURNING`` the rows it changed), so two instances
acting on the same rows at once cannot overwrite each other's newer state.

Every state change is also appended to ``outbox_events`` with the time and the peer's status.
Once a reply is final (acknowledged, failed, expired) its body is replaced by the masked copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from store.db import begin_write_connection
from store.models import InboundRow, OutboxEventRow, OutboxRow
from store.repos import db_time, insert_rows, one_writer

QUEUED = "queued"
SENDING = "sending"
ACKNOWLEDGED = "acknowledged"
FAILED = "failed"
EXPIRED = "expired"
FINAL = (ACKNOWLEDGED, FAILED, EXPIRED)
REPLY = "reply"
RECEIPT = "receipt"
"""The outbox kinds: a reply to a citizen's message, a delivery receipt the peer asked for."""

_OUTBOX = cast(sa.Table, OutboxRow.__table__)
_EVENTS = cast(sa.Table, OutboxEventRow.__table__)
_INBOUND = cast(sa.Table, InboundRow.__table__)


@dataclass(frozen=True, slots=True)
class ClaimedReply:
    """A reply this instance now has to send."""

    id: int
    peer: str
    to_address: str
    to_ton: int
    to_npi: int
    from_address: str
    from_ton: int
    from_npi: int
    body: str
    attempts: int
    received_at: datetime | None
    """When the citizen's message arrived (for the reply latency), if it is still stored."""
    kind: str = REPLY
    in_reply_to: str = ""

    def __repr__(self) -> str:
        return f"ClaimedReply(id={self.id}, peer={self.peer!r})"  # the body holds a password


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What became of one claimed reply: final, or back to the queue at ``retry_at``."""

    id: int
    state: str
    status: int | None
    detail: str
    peer_message_id: str | None = None
    retry_at: datetime | None = None


_EVENT_COLUMNS = ("outbox_id", "at", "peer", "state", "status", "detail")


def _events(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        time = db_time(connection.dialect)
        insert_rows(
            connection,
            _EVENTS,
            _EVENT_COLUMNS,
            (
                (r["outbox_id"], time(r["at"]), r["peer"], r["state"], r["status"], r["detail"])
                for r in rows
            ),
        )


def claim_replies(
    engine: Engine, peer: str, instance: str, limit: int, now: datetime, lease: timedelta
) -> list[ClaimedReply]:
    """Claim up to ``limit`` due replies of ``peer``, oldest first."""
    if limit <= 0:
        return []
    due = (
        sa.select(_OUTBOX.c.id)
        .where(
            _OUTBOX.c.peer == peer,
            _OUTBOX.c.state == QUEUED,
            _OUTBOX.c.next_attempt_at <= now,
            _OUTBOX.c.expires_at > now,
        )
        .order_by(_OUTBOX.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    with engine.connect() as connection, one_writer(engine):
        begin_write_connection(connection)
        with connection.begin():
            ids = list(connection.execute(due).scalars())
            if not ids:
                return []
            connection.execute(
                sa.update(_OUTBOX)
                .where(_OUTBOX.c.id.in_(ids))
                .values(
                    state=SENDING,
                    claimed_by=instance,
                    claimed_until=now + lease,
                    attempts=_OUTBOX.c.attempts + 1,
                    sent_at=now,
                    updated_at=now,
                )
            )
            rows = connection.execute(
                sa.select(
                    _OUTBOX.c.id,
                    _OUTBOX.c.peer,
                    _OUTBOX.c.to_address,
                    _OUTBOX.c.to_ton,
                    _OUTBOX.c.to_npi,
                    _OUTBOX.c.from_address,
                    _OUTBOX.c.from_ton,
                    _OUTBOX.c.from_npi,
                    _OUTBOX.c.body,
                    _OUTBOX.c.attempts,
                    _INBOUND.c.received_at,
                    _OUTBOX.c.kind,
                    _OUTBOX.c.in_reply_to,
                )
                .select_from(
                    _OUTBOX.outerjoin(
                        _INBOUND, _INBOUND.c.id == sa.cast(_OUTBOX.c.in_reply_to, sa.BigInteger)
                    )
                )
                .where(_OUTBOX.c.id.in_(ids))
                .order_by(_OUTBOX.c.id)
            ).all()
            _events(
                connection,
                [_event(row.id, peer, SENDING, None, instance, now) for row in rows],
            )
    return [ClaimedReply(*row) for row in rows]  # the columns are selected in field order


def finish_replies(
    engine: Engine, peer: str, instance: str, outcomes: Sequence[DeliveryOutcome], now: datetime
) -> list[int]:
    """Record ``outcomes`` for replies still claimed by ``instance``; returns the ids written.

    An outcome for a reply whose claim was taken over (our lease ran out) is dropped: the
    other instance owns it now; but an acknowledgement still settles a reply that went back to
    the queue and was not claimed again. Every UPDATE repeats its condition (``sending``,
    claimed by us), so a row another instance changed after we read nothing is left alone; on
    PostgreSQL a row locked by another transaction is re-checked once that transaction ends.
    """
    if not outcomes:
        return []
    by_id = {outcome.id: outcome for outcome in outcomes}
    ours = sa.and_(_OUTBOX.c.state == SENDING, _OUTBOX.c.claimed_by == instance)
    written: list[DeliveryOutcome] = []
    with engine.connect() as connection, one_writer(engine):
        begin_write_connection(connection)
        with connection.begin():
            # One UPDATE per distinct result (nearly always one: acknowledged, status 0, and
            # the empty message_id v3.4 prescribes for deliver_sm_resp), not one per reply.
            groups: dict[tuple[str, int | None, str | None], list[int]] = {}
            retried: list[int] = []
            for o in by_id.values():
                if o.state in FINAL:
                    groups.setdefault((o.state, o.status, o.peer_message_id), []).append(o.id)
                elif o.state == QUEUED:
                    retried.append(o.id)
            for (state, status, message_id), ids in groups.items():
                # The peer has a reply it acknowledged, whoever holds the row now: one whose
                # claim was released (the database was down past our lease) and that waits
                # to be sent again is recorded delivered instead.
                settles = sa.or_(ours, _OUTBOX.c.state == QUEUED) if state == ACKNOWLEDGED else ours
                done = connection.execute(
                    sa.update(_OUTBOX)
                    .where(_OUTBOX.c.id.in_(ids), settles)
                    .values(
                        state=state,
                        last_status=status,
                        peer_message_id=message_id,
                        body=_OUTBOX.c.body_masked,
                        claimed_by=None,
                        claimed_until=None,
                        finished_at=now,
                        updated_at=now,
                    )
                    .returning(_OUTBOX.c.id)
                ).scalars()
                written.extend(by_id[i] for i in done)
            if retried:
                # Back to the queue, if still ours; then each one's status and retry time, on
                # rows this transaction now holds (no one else can change them before commit).
                back = list(
                    connection.execute(
                        sa.update(_OUTBOX)
                        .where(_OUTBOX.c.id.in_(retried), ours)
                        .values(state=QUEUED, claimed_by=None, claimed_until=None, updated_at=now)
                        .returning(_OUTBOX.c.id)
                    ).scalars()
                )
                if back:
                    connection.execute(
                        sa.update(_OUTBOX)
                        .where(_OUTBOX.c.id == sa.bindparam("o_id"))
                        .values(
                            last_status=sa.bindparam("o_status"),
                            next_attempt_at=sa.bindparam("o_retry"),
                        ),
                        [
                            {
                                "o_id": i,
                                "o_status": by_id[i].status,
                                "o_retry": by_id[i].retry_at or now,
                            }
                            for i in back
                        ],
                    )
                written.extend(by_id[i] for i in back)
            _events(
                connection,
                [_event(o.id, peer, o.state, o.status, o.detail, now) for o in written],
            )
    return sorted(o.id for o in written)


def expire_replies(engine: Engine, now: datetime) -> list[tuple[int, str, str]]:
    """Mark queued replies past their expiry ``expired``; returns (id, peer, kind) of each.

    One UPDATE with the whole condition: a reply claimed by another instance between a read
    and a write here cannot be expired under its feet.
    """
    with engine.connect() as connection, one_writer(engine):
        begin_write_connection(connection)
        with connection.begin():
            rows = connection.execute(
                sa.update(_OUTBOX)
                .where(_OUTBOX.c.state == QUEUED, _OUTBOX.c.expires_at <= now)
                .values(state=EXPIRED, body=_OUTBOX.c.body_masked, finished_at=now, updated_at=now)
                .returning(_OUTBOX.c.id, _OUTBOX.c.peer, _OUTBOX.c.kind)
            ).all()
            _events(
                connection,
                [_event(row.id, row.peer, EXPIRED, None, "expired", now) for row in rows],
            )
    return [(row.id, row.peer, row.kind) for row in rows]


def release_claims(
    engine: Engine, now: datetime, instance: str | None = None, keep: str | None = None
) -> list[tuple[int, str]]:
    """Back to the queue: every claim whose lease ran out (its instance died, or is stuck, or
    restarted under another name) but ``keep``'s, and, given ``instance``, all of that
    instance's claims (it is starting, so none of them is in flight). Returns (id, peer) of
    each.

    One UPDATE with the whole condition: a claim its owner settles meanwhile is not put back
    (on PostgreSQL a row locked by the owner is re-checked once the owner commits).
    """
    stale = _OUTBOX.c.claimed_until < now
    if keep is not None:
        stale = sa.and_(stale, _OUTBOX.c.claimed_by != keep)
    if instance is not None:
        stale = sa.or_(_OUTBOX.c.claimed_by == instance, stale)
    with engine.connect() as connection, one_writer(engine):
        begin_write_connection(connection)
        with connection.begin():
            rows = connection.execute(
                sa.update(_OUTBOX)
                .where(_OUTBOX.c.state == SENDING, stale)
                .values(
                    state=QUEUED,
                    claimed_by=None,
                    claimed_until=None,
                    next_attempt_at=now,
                    updated_at=now,
                )
                .returning(_OUTBOX.c.id, _OUTBOX.c.peer)
            ).all()
            _events(
                connection,
                [_event(row.id, row.peer, QUEUED, None, "claim released", now) for row in rows],
            )
    return [(row.id, row.peer) for row in rows]


def queued_by_peer(engine: Engine, now: datetime) -> dict[str, int]:
    """Replies due now, per peer (what the dispatcher should try to send)."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(_OUTBOX.c.peer, sa.func.count())
            .where(_OUTBOX.c.state == QUEUED, _OUTBOX.c.next_attempt_at <= now)
            .group_by(_OUTBOX.c.peer)
        )
        return {peer: count for peer, count in rows}


def outbox_depth(engine: Engine) -> tuple[int, datetime | None]:
    """Replies not yet final, and when the oldest was queued."""
    with engine.connect() as connection:
        count, oldest = connection.execute(
            sa.select(sa.func.count(), sa.func.min(_OUTBOX.c.created_at)).where(
                _OUTBOX.c.state.in_([QUEUED, SENDING])
            )
        ).one()
    return int(count), oldest


def _event(
    outbox_id: int, peer: str, state: str, status: int | None, detail: str, now: datetime
) -> dict[str, Any]:
    return {
        "outbox_id": outbox_id,
        "at": now,
        "peer": peer,
        "state": state,
        "status": status,
        "detail": detail[:64],
    }
