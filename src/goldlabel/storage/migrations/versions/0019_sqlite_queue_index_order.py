"""SQLite: the queue index gets its DESC columns back.

Migration 0011 re-created ``items`` in SQLite's batch mode, which rebuilds the table's indexes
from reflection; reflection cannot see the sort order of ``ix_items_queue`` (``priority DESC,
answer_count DESC``), so the index came back all ascending. The lease's candidate query orders
by ``priority DESC, answer_count DESC, id``: with the ascending index SQLite read every open item
of the project and sorted them on each lease (10 ms a lease at 10,000 items, and linear in the
project's size). This puts the index back as ``tables.py`` defines it;
``tests/storage/test_migrations.py`` now compares every index's columns, order, uniqueness and
predicate with the table definitions, and pins the candidate query's plan.

PostgreSQL's batch mode alters in place, so its index (migration 0005) was never affected.

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_COLUMNS: list[str | sa.TextClause] = ["project_id", "status", "is_gold", sa.text("priority DESC"),
                                       sa.text("answer_count DESC"), "id"]


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.drop_index("ix_items_queue", table_name="items")
    op.create_index("ix_items_queue", "items", _COLUMNS, unique=False)


def downgrade() -> None:
    # Nothing to undo: the index 0018 had was this one with its order lost; putting the
    # defect back would serve no one.
    pass
