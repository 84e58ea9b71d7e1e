"""Delivery receipts: what the peer asked for, and receipts in the outbox beside replies.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "inbound",
        sa.Column("registered_delivery", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "outbox", sa.Column("kind", sa.String(length=8), server_default="reply", nullable=False)
    )


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_column("kind")
    with op.batch_alter_table("inbound") as batch_op:
        batch_op.drop_column("registered_delivery")
