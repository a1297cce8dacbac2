"""PostgreSQL: the queue index holds open items only.

With ``ix_items_queue`` on every item, statistics gathered while the table held other projects
made the planner probe it (project_id, then a filter on external_id) for the import's
external-id lookup into a new project, instead of the unique (project_id, external_id) index:
each lookup walked the new project's items and a 1M-item import went quadratic. As a partial
index (``WHERE status = 'open'``) only the queue's queries, which ask for open items, can use it;
it is also smaller. SQLite keeps the full index (its planner uses a partial index only for a
literal in the query, and it does not have this problem).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_COLUMNS: list[str | sa.TextClause] = ["project_id", "status", "is_gold", sa.text("priority DESC"),
                                       sa.text("answer_count DESC"), "id"]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_items_queue", table_name="items")
    op.create_index("ix_items_queue", "items", _COLUMNS, unique=False, postgresql_where=sa.text("status = 'open'"))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_items_queue", table_name="items")
    op.create_index("ix_items_queue", "items", _COLUMNS, unique=False)
