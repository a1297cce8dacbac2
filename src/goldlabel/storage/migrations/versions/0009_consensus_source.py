"""Where each consensus label came from: ``source`` (consensus, review, gold; auto later),
and for a reviewed label who reviewed it and when.

A re-fit and a late answer rewrite only rows whose source is ``consensus``: a label a reviewer
accepted or fixed is final and stays as the reviewer left it.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consensus") as batch:
        batch.add_column(sa.Column("source", sa.String(20), nullable=False, server_default="consensus"))
        batch.add_column(sa.Column("reviewer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                                   nullable=True))
        batch.add_column(sa.Column("reviewed_at", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consensus") as batch:
        batch.drop_column("reviewed_at")
        batch.drop_column("reviewer_id")
        batch.drop_column("source")
