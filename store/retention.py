"""Retention: citizens' message texts are deleted after a while; the rows, and so the counts, stay.

A received message's ``payload`` (the citizen's text with their social-insurance code) and a
finished reply's ``body``/``body_masked`` (the code, and the password until delivery masks it)
are not needed once the message is handled and the reply delivered, failed or expired; they
become ``NULL`` after ``[retention] message_body_days``. Every other column stays, so reports
and audits keep their counts. A message still waiting to be handled keeps its text.

Work goes in batches of a few thousand rows, each its own short write transaction, so that a
first prune of a large backlog never holds the SQLite writer lock for long while the SMPP
listener is storing messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from store.db import begin_write_connection
from store.delivery import FINAL
from store.models import InboundRow, OutboxRow
from store.repos import one_writer

BATCH: Final = 5000

_INBOUND = cast(sa.Table, InboundRow.__table__)
_OUTBOX = cast(sa.Table, OutboxRow.__table__)


@dataclass(frozen=True, slots=True)
class Pruned:
    """How many texts were deleted."""

    inbound_payloads: int = 0
    reply_bodies: int = 0


def prune_message_bodies(engine: Engine, older_than: datetime, batch: int = BATCH) -> Pruned:
    """Delete texts of handled messages received, and replies finished, before ``older_than``."""
    inbound = _INBOUND.c
    handled_messages = (
        sa.select(inbound.id)
        .where(
            inbound.received_at < older_than,
            inbound.payload.is_not(None),
            inbound.state != "stored",
        )
        .limit(batch)
    )
    outbox = _OUTBOX.c
    finished_replies = (
        sa.select(outbox.id)
        .where(
            outbox.state.in_(FINAL),
            outbox.finished_at < older_than,
            sa.or_(outbox.body.is_not(None), outbox.body_masked.is_not(None)),
        )
        .limit(batch)
    )
    payloads = _in_batches(
        engine,
        sa.update(_INBOUND).where(inbound.id.in_(handled_messages.scalar_subquery())),
        {"payload": None},
        batch,
    )
    bodies = _in_batches(
        engine,
        sa.update(_OUTBOX).where(outbox.id.in_(finished_replies.scalar_subquery())),
        {"body": None, "body_masked": None},
        batch,
    )
    return Pruned(payloads, bodies)


def _in_batches(engine: Engine, update: sa.Update, values: dict[str, None], batch: int) -> int:
    done = 0
    while True:
        # Taken in turn with the gateway's own writers (on SQLite): SQLite's busy handler
        # would make a group commit waiting behind a batch here sleep up to 100 ms.
        with engine.connect() as connection, one_writer(engine):
            begin_write_connection(connection)
            with connection.begin():
                changed = connection.execute(update.values(values)).rowcount
        done += changed
        if changed < batch:
            return done
