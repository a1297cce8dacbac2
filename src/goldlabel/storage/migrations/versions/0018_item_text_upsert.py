"""PostgreSQL text index: an edit writes its item's ``item_text`` row whether or not the indexer
has reached it (an upsert), so the indexer no longer locks the rows it reads.

The indexer read each batch's items ``FOR SHARE`` so that an edit in flight could not leave an
older text in the index; those share locks made the queue's claim (``FOR UPDATE SKIP LOCKED``)
skip every item of the batch, and an annotator was told "no work" (204) while it lasted, right
after an import (found by tests/api/test_gold_timing.py on PostgreSQL). Now the edit's trigger
inserts or updates the row, and the indexer inserts only rows that are not there (``ON
CONFLICT DO NOTHING``): whichever commits last, the row holds the newest text.

Revision ID: 0018
Revises: 0017
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_UPSERT = """
CREATE OR REPLACE FUNCTION goldlabel_item_text_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO item_text (item_id, body) VALUES (NEW.id, goldlabel_item_text(NEW.external_id, NEW.data))
  ON CONFLICT (item_id) DO UPDATE SET body = excluded.body;
  RETURN NULL;
END
$$
"""
_UPDATE_ONLY = """
CREATE OR REPLACE FUNCTION goldlabel_item_text_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE item_text SET body = goldlabel_item_text(NEW.external_id, NEW.data) WHERE item_id = NEW.id;
  RETURN NULL;
END
$$
"""


def _has_item_text() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    return bool(bind.exec_driver_sql("SELECT to_regclass('item_text') IS NOT NULL").scalar())


def upgrade() -> None:
    if _has_item_text():
        op.get_bind().exec_driver_sql(_UPSERT)


def downgrade() -> None:
    if _has_item_text():
        op.get_bind().exec_driver_sql(_UPDATE_ONLY)
