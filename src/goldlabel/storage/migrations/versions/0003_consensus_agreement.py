"""Consensus agreement: share of an item's answers that match its consensus value.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consensus") as batch:
        batch.add_column(sa.Column("agreement", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consensus") as batch:
        batch.drop_column("agreement")
