"""The database schema as SQLAlchemy 2.x typed models.

Alembic migrations in ``store/migrations`` are the source of truth for deployed databases;
these models describe the same tables for queries, and a test checks that the two agree.
Times are stored as UTC and always come back timezone-aware, on SQLite as on PostgreSQL.
Nothing secret is stored in clear: passwords only as Argon2id hashes, and a reply's password
is masked in the outbox as soon as the telco acknowledges delivery.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigId = BigInteger().with_variant(Integer, "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out (SQLite would hand back naive ones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use UTC-aware times")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime()}  # noqa: RUF012 - SQLAlchemy's declared API


class AccountRow(Base):
    """A VssID account as BHXH registered it; ``ma_so_bhxh`` is the 10-digit code."""

    __tablename__ = "accounts"

    ma_so_bhxh: Mapped[str] = mapped_column(String(10), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(16), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    registered: Mapped[bool] = mapped_column(Boolean)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_set_at: Mapped[datetime | None]
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    temporary_password_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ResetEventRow(Base):
    """Append-only audit of every reset request and its outcome. Never a password."""

    __tablename__ = "reset_events"
    __table_args__ = (
        UniqueConstraint("channel", "correlation_id"),
        Index("ix_reset_events_code_at", "code", "at"),
        Index("ix_reset_events_phone_at", "phone", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    channel: Mapped[str] = mapped_column(String(8))
    phone_received: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(16))
    code_received: Mapped[str] = mapped_column(String(64))
    code: Mapped[str | None] = mapped_column(String(10))
    outcome: Mapped[str] = mapped_column(String(16))
    correlation_id: Mapped[str] = mapped_column(String(64))
    carrier: Mapped[str] = mapped_column(String(16))


class OutboxRow(Base):
    """An SMS reply waiting for, or done with, delivery to the peer the request came from.

    ``in_reply_to`` is unique: at most one reply per inbound message, whatever retries happen.
    ``state``: ``queued`` -> ``sending`` (claimed by one gateway instance until
    ``claimed_until``) -> ``acknowledged`` | ``failed`` | ``expired``, or back to ``queued``
    with a later ``next_attempt_at`` after a throttle or time-out.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_peer_state_next", "peer", "state", "next_attempt_at"),
        Index("ix_outbox_state_expires", "state", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    peer: Mapped[str] = mapped_column(String(64))
    to_address: Mapped[str] = mapped_column(String(21))
    to_ton: Mapped[int] = mapped_column(Integer)
    to_npi: Mapped[int] = mapped_column(Integer)
    from_address: Mapped[str] = mapped_column(String(21))
    from_ton: Mapped[int] = mapped_column(Integer, default=0)
    from_npi: Mapped[int] = mapped_column(Integer, default=0)
    in_reply_to: Mapped[str] = mapped_column(String(64), unique=True)
    body: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_status: Mapped[int | None] = mapped_column(Integer)
    body_masked: Mapped[str | None] = mapped_column(Text)
    """The body with any password replaced by ``********``; becomes ``body`` once delivered."""
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None] = mapped_column(index=True)
    peer_message_id: Mapped[str | None] = mapped_column(String(65))
    kind: Mapped[str] = mapped_column(String(8), default="reply", server_default="reply")
    """``reply`` (to a citizen's message) or ``receipt`` (a delivery receipt the peer asked for
    with ``registered_delivery``; its ``in_reply_to`` is the message's id negated, so that it
    is unique beside the reply to the same message and still names it)."""


class CallRow(Base):
    """One hotline call, for operators and billing (per started minute). Never a password."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    unique_id: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(128))
    caller_received: Mapped[str] = mapped_column(String(64))
    caller_presentation: Mapped[int | None] = mapped_column(Integer)
    caller: Mapped[str | None] = mapped_column(String(16))
    carrier: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(index=True)
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime]
    duration_seconds: Mapped[float] = mapped_column(Float)
    billed_minutes: Mapped[int] = mapped_column(Integer)
    keys: Mapped[str] = mapped_column(String(255))
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(255))
    password_spoken_at: Mapped[datetime | None]


class InboundRow(Base):
    """A message (or one part of a long message) a peer delivered to a short code.

    Stored, and committed, before the peer gets its ``*_resp``: ``id`` is the message id we
    answer with. ``state`` is ``stored`` until the gateway has handled it (reply queued),
    then ``handled``; a resend of a message seen within the duplicate window is stored as
    ``duplicate`` (pointing at the first copy) and never handled again. ``payload`` is the
    undecoded user data (UDH removed) so that long messages are joined before decoding;
    retention deletes it and keeps the row for counts.
    """

    __tablename__ = "inbound"
    __table_args__ = (
        Index("ix_inbound_state_id", "state", "id"),
        Index("ix_inbound_fingerprint_received_at", "fingerprint", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    peer: Mapped[str] = mapped_column(String(64))
    command: Mapped[str] = mapped_column(String(16))
    source_addr: Mapped[str] = mapped_column(String(21))
    source_ton: Mapped[int] = mapped_column(Integer)
    source_npi: Mapped[int] = mapped_column(Integer)
    destination_addr: Mapped[str] = mapped_column(String(21))
    dest_ton: Mapped[int] = mapped_column(Integer)
    dest_npi: Mapped[int] = mapped_column(Integer)
    short_code: Mapped[str] = mapped_column(String(21))
    coding: Mapped[str] = mapped_column(String(8))
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)
    concat_reference: Mapped[int | None] = mapped_column(Integer)
    concat_total: Mapped[int | None] = mapped_column(Integer)
    concat_sequence: Mapped[int | None] = mapped_column(Integer)
    user_message_reference: Mapped[int | None] = mapped_column(Integer)
    registered_delivery: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    fingerprint: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(index=True)
    state: Mapped[str] = mapped_column(String(12))
    duplicate_of: Mapped[int | None] = mapped_column(BigInteger)
    handled_at: Mapped[datetime | None]


class OutboxEventRow(Base):
    """Every state change of an outbox reply, with the peer's status: the delivery audit."""

    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    outbox_id: Mapped[int] = mapped_column(BigInteger, index=True)
    at: Mapped[datetime] = mapped_column(index=True)
    peer: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(12))
    status: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(String(64))
