"""Managing items at scale: soft delete with an undo window, reported items.

items: ``deleted_at`` and ``status_before_delete`` (status ``deleted`` while an item can still
be restored; the queue claims only ``open`` items, so it never hands a deleted one out), and
``flag`` / ``flagged_by`` / ``flagged_at`` (an annotator reported the item, e.g. media_broken).
projects: ``deleted_at``. A partial index on items.deleted_at serves the undo and the purge sweep.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_OLD = "status IN ('open', 'final', 'needs_review')"
_NEW = "status IN ('open', 'final', 'needs_review', 'deleted')"


def upgrade() -> None:
    with op.batch_alter_table("items", recreate="auto") as batch:
        batch.add_column(sa.Column("deleted_at", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("status_before_delete", sa.String(20), nullable=True))
        batch.add_column(sa.Column("flag", sa.String(50), nullable=True))
        batch.add_column(sa.Column("flagged_by", _ID, nullable=True))
        batch.add_column(sa.Column("flagged_at", sa.BigInteger, nullable=True))
        batch.drop_constraint(op.f("ck_items_status"), type_="check")
        batch.create_check_constraint(op.f("ck_items_status"), _NEW)
    op.create_index("ix_items_deleted_at", "items", ["deleted_at"],
                    postgresql_where=sa.text("deleted_at IS NOT NULL"),
                    sqlite_where=sa.text("deleted_at IS NOT NULL"))
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("deleted_at", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("deleted_at")
    op.drop_index("ix_items_deleted_at", table_name="items")
    op.execute("DELETE FROM items WHERE status = 'deleted'")
    with op.batch_alter_table("items", recreate="auto") as batch:
        batch.drop_constraint(op.f("ck_items_status"), type_="check")
        batch.create_check_constraint(op.f("ck_items_status"), _OLD)
        for col in ("flagged_at", "flagged_by", "flag", "status_before_delete", "deleted_at"):
            batch.drop_column(col)
