"""The calls table: one row per hotline call, written when the call ends.

The IVR describes calls with its own record type; the gateway passes the fields here, so the
store does not depend on :mod:`ivr`. The write is idempotent on the call's unique id: writing
the same call again keeps the first row and is not an error, so a write can be retried safely,
e.g. after a connection error that hid a commit which did happen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from store.models import CallRow

_CALLS = cast(sa.Table, CallRow.__table__)


@dataclass(frozen=True, slots=True)
class CallFields:
    """The columns of a call row (see :class:`store.models.CallRow`)."""

    unique_id: str
    channel: str
    caller_received: str
    caller_presentation: int | None
    caller: str | None
    carrier: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    duration_seconds: float
    billed_minutes: int
    keys: str
    outcome: str
    detail: str
    password_spoken_at: datetime | None = None


def record_call(engine: Engine, call: CallFields) -> None:
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    values = {name: getattr(call, name) for name in CallFields.__dataclass_fields__}
    values["caller_received"] = call.caller_received[:64]
    values["channel"] = call.channel[:128]
    values["keys"] = call.keys[:255]
    values["detail"] = call.detail[:255]
    statement = insert(_CALLS).values(values).on_conflict_do_nothing(index_elements=["unique_id"])
    with engine.connect() as connection:
        connection.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            connection.execute(statement)
