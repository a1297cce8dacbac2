"""Gold answers waiting to be scored (issue 17, item 2): a gold answer is scored after the
response, not inside the submit, so that its submit costs what any other does; the row is
written with the answer, in its transaction, so that a crash between the answer and the scoring
loses nothing (services/gold.py).

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gold_pending",
        sa.Column("answer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["answer_id"], ["answers.id"], name=op.f("fk_gold_pending_answer_id_answers"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_gold_pending_project_id_projects"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("answer_id", name=op.f("pk_gold_pending")),
    )


def downgrade() -> None:
    op.drop_table("gold_pending")
