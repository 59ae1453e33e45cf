"""send windows: the time a contact waiting for its channel's send window may be sent

Revision ID: 0009_19a
Revises: 0008
Create Date: 2026-12-06 19:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_19a"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("send_after", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("send_after")
