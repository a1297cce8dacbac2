"""The project model as an annotator: its learned skill per confidence band (confusion
matrices, accuracies, answers behind them), written by the re-fit and read by the per-answer
consensus; and pre-label outcomes per answer (kept unchanged, and on gold items right or wrong
with and without a pre-label shown), recorded by the model worker behind a cursor.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], ondelete="CASCADE",
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    with op.batch_alter_table("model_state") as batch:
        batch.add_column(sa.Column("annotator", _JSON, nullable=True))
        batch.add_column(sa.Column("prelabel_cursor", _ID, nullable=False, server_default="0"))
    op.create_table(
        "prelabel_outcomes",
        sa.Column("answer_id", _ID, nullable=False),
        sa.Column("project_id", _ID, nullable=False),
        sa.Column("annotator_id", _ID, nullable=False),
        sa.Column("shown", sa.Boolean(), nullable=False),
        sa.Column("kept", sa.Boolean(), nullable=True),
        sa.Column("is_gold", sa.Boolean(), nullable=False),
        sa.Column("correct", sa.Boolean(), nullable=True),
        sa.Column("prelabel_correct", sa.Boolean(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        _fk("prelabel_outcomes", "answer_id", "answers"),
        _fk("prelabel_outcomes", "project_id", "projects"),
        _fk("prelabel_outcomes", "annotator_id", "users"),
        sa.PrimaryKeyConstraint("answer_id", name=op.f("pk_prelabel_outcomes")),
    )
    op.create_index("ix_prelabel_outcomes_project_id", "prelabel_outcomes", ["project_id", "annotator_id"])


def downgrade() -> None:
    op.drop_index("ix_prelabel_outcomes_project_id", table_name="prelabel_outcomes")
    op.drop_table("prelabel_outcomes")
    with op.batch_alter_table("model_state") as batch:
        batch.drop_column("prelabel_cursor")
        batch.drop_column("annotator")
