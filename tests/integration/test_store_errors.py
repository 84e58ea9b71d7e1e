"""Database errors never carry a statement's parameters: they may hold a new password.

A failing statement's exception text is logged (``log.failure``), and SQLAlchemy appends the
statement's parameters to it unless the engine hides them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from twisted.logger import LogLevel
from twisted.python.failure import Failure

from commands.ports import QueuedReply, SmsRoute
from gateway.logs import _text_line, event_as_json, one_line
from store.db import session_factory
from store.models import OutboxRow
from store.repos import SqlOutbox

PASSWORD = "48151623"
BODY = f"Cap lai mat khau thanh cong. Tai khoan: 0123456789/Mat khau: {PASSWORD}"


def test_a_failing_outbox_insert_does_not_put_the_reply_in_the_error(engine: Engine) -> None:
    route = SmsRoute("viettel", "84912345678", 1, 1, "8079", in_reply_to="42")
    reply = QueuedReply(route, BODY, BODY.replace(PASSWORD, "********"), datetime.now(UTC))
    sessions = session_factory(engine)
    with sessions() as session:
        SqlOutbox(session, timedelta(hours=24)).enqueue_many([reply])
        session.commit()

    with sessions() as session, pytest.raises(sa.exc.DBAPIError) as raised:
        SqlOutbox(session, timedelta(hours=24)).enqueue_many([reply])  # in_reply_to is unique
        session.commit()

    text = str(raised.value)
    assert "outbox" in text  # the error still says what failed
    assert PASSWORD not in text and "parameters" in text  # "[SQL parameters hidden ...]"


def test_a_row_the_database_quotes_in_an_error_is_left_out_of_logs(engine: Engine) -> None:
    now = datetime.now(UTC)
    row = {
        "peer": "viettel", "to_address": "84912345678", "to_ton": 1, "to_npi": 1,
        "from_address": "8079", "in_reply_to": "43", "body": BODY, "state": "queued",
        "created_at": now, "next_attempt_at": now, "expires_at": now,
        "updated_at": None,  # NOT NULL: PostgreSQL's DETAIL quotes the whole failing row
    }  # fmt: skip
    with engine.begin() as connection, pytest.raises(sa.exc.DBAPIError) as raised:
        connection.execute(sa.insert(OutboxRow.__table__), row)
    if engine.dialect.name == "postgresql":  # it clips each value to 64 bytes: the code shows
        assert "Tai khoan: 0123456789" in str(raised.value.orig)

    event = {
        "log_failure": Failure(raised.value), "log_format": "Unhandled error",
        "log_level": LogLevel.critical, "log_namespace": "test", "log_time": 0.0,
    }  # fmt: skip
    for text in (
        event_as_json(event),
        _text_line(event) or "",
        one_line(f"{type(raised.value).__name__}: {raised.value}"),
    ):
        assert "updated_at" in text  # still says what failed
        assert "0123456789" not in text and PASSWORD not in text and "Failing row" not in text
