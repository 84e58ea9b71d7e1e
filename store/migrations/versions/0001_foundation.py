"""Accounts, the reset audit and the SMS outbox (issue 2, the foundation).

Times are naive UTC in the database (``store.models.UtcDateTime`` adds the zone back).

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("ma_so_bhxh", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=16), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("registered", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("password_set_at", sa.DateTime(), nullable=True),
        sa.Column("must_change_password", sa.Boolean(), nullable=False),
        sa.Column("temporary_password_expires_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("ma_so_bhxh", name=op.f("pk_accounts")),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accounts_phone"), ["phone"], unique=False)

    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("peer", sa.String(length=64), nullable=False),
        sa.Column("to_address", sa.String(length=21), nullable=False),
        sa.Column("to_ton", sa.Integer(), nullable=False),
        sa.Column("to_npi", sa.Integer(), nullable=False),
        sa.Column("from_address", sa.String(length=21), nullable=False),
        sa.Column("in_reply_to", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("in_reply_to", name=op.f("uq_outbox_in_reply_to")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_peer_state_next", ["peer", "state", "next_attempt_at"], unique=False
        )

    op.create_table(
        "reset_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("phone_received", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=16), nullable=True),
        sa.Column("code_received", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=10), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("correlation_id", sa.String(length=64), nullable=False),
        sa.Column("carrier", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reset_events")),
        sa.UniqueConstraint(
            "channel", "correlation_id", name=op.f("uq_reset_events_channel_correlation_id")
        ),
    )
    with op.batch_alter_table("reset_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reset_events_at"), ["at"], unique=False)
        batch_op.create_index("ix_reset_events_code_at", ["code", "at"], unique=False)
        batch_op.create_index("ix_reset_events_phone_at", ["phone", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reset_events", schema=None) as batch_op:
        batch_op.drop_index("ix_reset_events_phone_at")
        batch_op.drop_index("ix_reset_events_code_at")
        batch_op.drop_index(batch_op.f("ix_reset_events_at"))

    op.drop_table("reset_events")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_peer_state_next")

    op.drop_table("outbox")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accounts_phone"))

    op.drop_table("accounts")
