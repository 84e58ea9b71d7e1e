"""SMS (issue 3): stored inbound messages, outbox delivery bookkeeping and its event log.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "inbound",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("peer", sa.String(length=64), nullable=False),
        sa.Column("command", sa.String(length=16), nullable=False),
        sa.Column("source_addr", sa.String(length=21), nullable=False),
        sa.Column("source_ton", sa.Integer(), nullable=False),
        sa.Column("source_npi", sa.Integer(), nullable=False),
        sa.Column("destination_addr", sa.String(length=21), nullable=False),
        sa.Column("dest_ton", sa.Integer(), nullable=False),
        sa.Column("dest_npi", sa.Integer(), nullable=False),
        sa.Column("short_code", sa.String(length=21), nullable=False),
        sa.Column("coding", sa.String(length=8), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("concat_reference", sa.Integer(), nullable=True),
        sa.Column("concat_total", sa.Integer(), nullable=True),
        sa.Column("concat_sequence", sa.Integer(), nullable=True),
        sa.Column("user_message_reference", sa.Integer(), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("duplicate_of", sa.BigInteger(), nullable=True),
        sa.Column("handled_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound")),
    )
    with op.batch_alter_table("inbound") as batch_op:
        batch_op.create_index("ix_inbound_state_id", ["state", "id"], unique=False)
        batch_op.create_index(
            "ix_inbound_fingerprint_received_at", ["fingerprint", "received_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_inbound_received_at"), ["received_at"], unique=False)

    op.create_table(
        "outbox_events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("peer", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("detail", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
    )
    with op.batch_alter_table("outbox_events") as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_events_outbox_id"), ["outbox_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_events_at"), ["at"], unique=False)

    with op.batch_alter_table("outbox") as batch_op:
        batch_op.add_column(
            sa.Column("from_ton", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch_op.add_column(
            sa.Column("from_npi", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch_op.add_column(sa.Column("body_masked", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("claimed_until", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("sent_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("finished_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("peer_message_id", sa.String(length=65), nullable=True))
        batch_op.create_index("ix_outbox_state_expires", ["state", "expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_finished_at"), ["finished_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_finished_at"))
        batch_op.drop_index("ix_outbox_state_expires")
        for column in (
            "peer_message_id",
            "finished_at",
            "sent_at",
            "claimed_until",
            "claimed_by",
            "body_masked",
            "from_npi",
            "from_ton",
        ):
            batch_op.drop_column(column)
    op.drop_table("outbox_events")
    op.drop_table("inbound")
