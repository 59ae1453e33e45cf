"""dispatch batches (webhook task lists, dead letters), allocation columns, arbitration losses

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 22:40:00
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dispatch_batches",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("wave_id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("endpoint", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("assignee", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("webhook_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("detail", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("delivered_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["wave_id"],
            ["waves.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("webhook_id", name="uq_dispatch_batches_webhook_id"),
    )
    with op.batch_alter_table("dispatch_batches", schema=None) as batch_op:
        batch_op.create_index("ix_dispatch_batches_wave_channel_status", ["wave_id", "channel", "status"], unique=False)

    op.create_table(
        "arbitration_losses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cycle", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("campaign", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("lost_to", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("cycle", "campaign", "lost_to", name="uq_arbitration_losses"),
    )

    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("planned_for", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("assignee", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
        batch_op.add_column(sa.Column("expected_value", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("batch_id", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_contacts_batch_id", ["batch_id"], unique=False)
        batch_op.create_index("ix_contacts_planned_channel", ["planned_for", "channel"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_contacts_planned_channel")
        batch_op.drop_index("ix_contacts_batch_id")
        batch_op.drop_column("batch_id")
        batch_op.drop_column("expected_value")
        batch_op.drop_column("assignee")
        batch_op.drop_column("planned_for")
    op.drop_table("arbitration_losses")
    with op.batch_alter_table("dispatch_batches", schema=None) as batch_op:
        batch_op.drop_index("ix_dispatch_batches_wave_channel_status")
    op.drop_table("dispatch_batches")
