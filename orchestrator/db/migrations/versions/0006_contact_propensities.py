"""contact propensities: probability of the arm and of the channel

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 19:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("arm_propensity", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("channel_propensity", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("channel_propensity")
        batch_op.drop_column("arm_propensity")
