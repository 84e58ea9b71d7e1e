"""Database errors never carry a statement's parameters: they may hold a new password.

A failing statement's exception text is logged (``log.failure``), and SQLAlchemy appends the
statement's parameters to it unless the engine hides them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from commands.ports import QueuedReply, SmsRoute
from store.db import session_factory
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
