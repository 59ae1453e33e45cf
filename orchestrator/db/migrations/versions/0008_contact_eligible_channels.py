"""contact eligible channels: which channels another policy could have chosen (off-policy evaluation)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 16:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("eligible_channels", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("eligible_channels")
