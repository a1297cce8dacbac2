"""The project model as an annotator: its learned skill per confidence band (confusion
matrices, accuracies, answers behind them), written by the re-fit and read by the per-answer
consensus.

Revision ID: 0016
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0016"
down_revision = "0013"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("model_state") as batch:
        batch.add_column(sa.Column("annotator", _JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_state") as batch:
        batch.drop_column("annotator")
