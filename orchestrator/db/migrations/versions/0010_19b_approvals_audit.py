"""approvals (wave_approvals), audit events' campaign and details

Revision ID: 0009_19b
Revises: 0009_19a
Create Date: 2026-12-06 19:40:00
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0009_19b"
down_revision = "0009_19a"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    # plain ADD COLUMN (no batch copy): the append-only triggers of audit_events stay as they are
    op.add_column("audit_events", sa.Column("campaign", sa.String(length=200), nullable=True))
    op.add_column("audit_events", sa.Column("details", sa.JSON(), nullable=True))
    op.create_index("ix_audit_events_campaign_time", "audit_events", ["campaign", "occurred_at"])
    op.create_table(
        "wave_approvals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("wave_id", sa.Integer(), sa.ForeignKey("waves.id"), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("plan_sha256", sa.String(length=64), nullable=False),
        sa.Column("rules_sha256", sa.String(length=64), nullable=False),
        sa.Column("templates", sa.JSON(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("sample_path", sa.String(), nullable=True),
        sa.Column("sample_sha256", sa.String(length=64), nullable=True),
        sa.Column("frozen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
    )
    op.create_index("ix_wave_approvals_wave", "wave_approvals", ["wave_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_wave_approvals_wave", table_name="wave_approvals")
    op.drop_table("wave_approvals")
    op.drop_index("ix_audit_events_campaign_time", table_name="audit_events")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_column("details")
        batch_op.drop_column("campaign")
    if op.get_bind().dialect.name == "sqlite":  # the batch copy left the table without its triggers (0007)
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER IF NOT EXISTS audit_events_no_{event.lower()} BEFORE {event} ON audit_events "
                "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: its rows are never changed or deleted'); END"
            )
