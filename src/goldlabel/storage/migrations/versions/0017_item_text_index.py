"""An index for the item browser's text search (substring of the external id or of a data value),
filled after the writes, not during them.

Imports write items only. A background indexer (services.items.TextIndexer, every
settings.text_index_interval_s) copies each new item's searched text (the external id and every
top-level data value, joined by U+001F) into the index in batches, in id order, and moves a
watermark (``item_text_state.indexed_through``: every item with a lower or equal id is in the
index). A search takes the index's candidates up to the watermark and scans the items above it
(storage.items._keyset_page), so its results are the scan's at every moment. Edits of an
indexed item's text and deletes reach the index through triggers (rare writes: an import only
inserts).

SQLite: ``items_fts``, an FTS5 table with the trigram tokenizer (rowid = items.id).
PostgreSQL: ``item_text`` (item_id, body; deleted with its item), a pg_trgm GIN index on body.
Creating the extension needs a role allowed to (docs/deployment.md, "Text search"); without it
the migration logs why and leaves the index out, and searches scan as before.

Revision ID: 0017
Revises: 0016
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

log = logging.getLogger("goldlabel.storage.migrations")

_STATE = ("CREATE TABLE item_text_state (id INTEGER PRIMARY KEY CHECK (id = 1), "
          "indexed_through BIGINT NOT NULL)")
_STATE_ROW = "INSERT INTO item_text_state (id, indexed_through) VALUES (1, 0)"
# SQLite: the searched text (kept equal to storage.items.SQLITE_TEXT).
_ON_UPDATE = (
    "CREATE TRIGGER items_fts_update AFTER UPDATE OF external_id, data ON items BEGIN "
    "UPDATE items_fts SET body = new.external_id || char(31) || coalesce("
    "(SELECT group_concat(CAST(value AS TEXT), char(31)) FROM json_each(new.data)), '') WHERE rowid = new.id; END"
)
# A deleted item leaves the index; and since SQLite may give the highest id again once its row
# is gone, the watermark never stays above the highest id left.
_ON_DELETE = (
    "CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN "
    "DELETE FROM items_fts WHERE rowid = old.id; "
    "UPDATE item_text_state SET indexed_through = (SELECT coalesce(max(id), 0) FROM items) "
    "WHERE indexed_through > (SELECT coalesce(max(id), 0) FROM items); END"
)
_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION goldlabel_item_text(external_id text, data jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT external_id || chr(31) || CASE WHEN jsonb_typeof(data) = 'object'
    THEN coalesce((SELECT string_agg(value, chr(31)) FROM jsonb_each_text(data)), '')
    ELSE data::text END
$$
"""
_PG_TABLE = ("CREATE TABLE item_text (item_id BIGINT PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE, "
             "body TEXT NOT NULL)")
_PG_UPDATE_FUNCTION = """
CREATE OR REPLACE FUNCTION goldlabel_item_text_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE item_text SET body = goldlabel_item_text(NEW.external_id, NEW.data) WHERE item_id = NEW.id;
  RETURN NULL;
END
$$
"""
_PG_UPDATE_TRIGGER = (
    "CREATE TRIGGER item_text_update AFTER UPDATE OF external_id, data ON items FOR EACH ROW "
    "WHEN (OLD.external_id IS DISTINCT FROM NEW.external_id OR OLD.data IS DISTINCT FROM NEW.data) "
    "EXECUTE FUNCTION goldlabel_item_text_update()"
)
PG_INDEX = "CREATE INDEX ix_item_text_body ON item_text USING gin (body gin_trgm_ops)"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _upgrade_sqlite(bind)
    else:
        _upgrade_postgresql(bind)


def _upgrade_sqlite(bind: sa.Connection) -> None:
    version = bind.exec_driver_sql("SELECT sqlite_version()").scalar() or "0"
    has_fts5 = bind.exec_driver_sql("SELECT sqlite_compileoption_used('ENABLE_FTS5')").scalar()
    if not has_fts5 or tuple(int(p) for p in version.split(".")[:2]) < (3, 34):
        log.warning("item text search: SQLite %s %s FTS5; the trigram index needs FTS5 and SQLite 3.34 or newer: "
                    "searches in the item browser scan the project's items", version,
                    "has" if has_fts5 else "lacks")
        return
    bind.exec_driver_sql("CREATE VIRTUAL TABLE items_fts USING fts5(body, tokenize='trigram', columnsize=0)")
    for statement in (_STATE, _STATE_ROW, _ON_UPDATE, _ON_DELETE):
        bind.exec_driver_sql(statement)


def _upgrade_postgresql(bind: sa.Connection) -> None:
    for statement in (_PG_FUNCTION, _PG_TABLE, _STATE, _STATE_ROW, _PG_UPDATE_FUNCTION, _PG_UPDATE_TRIGGER):
        bind.exec_driver_sql(statement)
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except sa.exc.DBAPIError as exc:
        log.warning(
            "item text search: the pg_trgm extension could not be created (%s); searches in the item browser "
            "scan the project's items. Have a superuser run CREATE EXTENSION pg_trgm in this database, then "
            "the CREATE INDEX in docs/deployment.md (Text search)", str(exc.orig).strip().splitlines()[0])
        return
    bind.exec_driver_sql(PG_INDEX)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        bind.exec_driver_sql("DROP TRIGGER IF EXISTS items_fts_update")
        bind.exec_driver_sql("DROP TRIGGER IF EXISTS items_fts_delete")
        bind.exec_driver_sql("DROP TABLE IF EXISTS items_fts")
    else:
        bind.exec_driver_sql("DROP TRIGGER IF EXISTS item_text_update ON items")
        bind.exec_driver_sql("DROP FUNCTION IF EXISTS goldlabel_item_text_update()")
        bind.exec_driver_sql("DROP TABLE IF EXISTS item_text")
        bind.exec_driver_sql("DROP FUNCTION IF EXISTS goldlabel_item_text(text, jsonb)")
    bind.exec_driver_sql("DROP TABLE IF EXISTS item_text_state")
