"""An index for the item browser's text search (substring of the external id or of a data value).

SQLite: ``items_fts``, an FTS5 table with the trigram tokenizer (rowid = items.id, one document
per item: the searched text: the external id and every top-level data value), kept in step with ``items`` by
triggers, so every write path (imports, edits, the purge, a project's cascade) keeps it.
PostgreSQL: ``ix_items_text``, a pg_trgm GIN index on ``goldlabel_item_text(external_id, data)``
(the same text). Creating the extension needs a role allowed to (docs/deployment.md, "Text
search"); without it the migration logs why and leaves the index out, and searches scan as before.

Revision ID: 0015
Revises: 0013
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None

log = logging.getLogger("goldlabel.storage.migrations")

# The searched text of an item (kept equal to storage.items): the external id and each top-level
# data value as text, separated by U+001F; a match across a separator is filtered by the exact test.
_FILL = (
    "INSERT INTO items_fts(rowid, body) SELECT id, external_id || char(31) || coalesce("
    "(SELECT group_concat(CAST(value AS TEXT), char(31)) FROM json_each(items.data)), '') FROM items"
)
_ON_INSERT = (
    "CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN "
    "INSERT INTO items_fts(rowid, body) VALUES (new.id, new.external_id || char(31) || coalesce("
    "(SELECT group_concat(CAST(value AS TEXT), char(31)) FROM json_each(new.data)), '')); END"
)
_ON_UPDATE = (
    "CREATE TRIGGER items_fts_update AFTER UPDATE OF external_id, data ON items BEGIN "
    "UPDATE items_fts SET body = new.external_id || char(31) || coalesce("
    "(SELECT group_concat(CAST(value AS TEXT), char(31)) FROM json_each(new.data)), '') WHERE rowid = new.id; END"
)
_ON_DELETE = "CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN DELETE FROM items_fts WHERE rowid = old.id; END"
_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION goldlabel_item_text(external_id text, data jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT external_id || chr(31) || CASE WHEN jsonb_typeof(data) = 'object'
    THEN coalesce((SELECT string_agg(value, chr(31)) FROM jsonb_each_text(data)), '')
    ELSE data::text END
$$
"""


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
    for statement in (_FILL, _ON_INSERT, _ON_UPDATE, _ON_DELETE):
        bind.exec_driver_sql(statement)


def _upgrade_postgresql(bind: sa.Connection) -> None:
    bind.exec_driver_sql(_PG_FUNCTION)
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except sa.exc.DBAPIError as exc:
        log.warning(
            "item text search: the pg_trgm extension could not be created (%s); searches in the item browser "
            "scan the project's items. Have a superuser run CREATE EXTENSION pg_trgm in this database, then "
            "the CREATE INDEX in docs/deployment.md (Text search)", str(exc.orig).strip().splitlines()[0])
        return
    bind.exec_driver_sql(
        "CREATE INDEX ix_items_text ON items USING gin (goldlabel_item_text(external_id, data) gin_trgm_ops)")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        bind.exec_driver_sql("DROP TRIGGER IF EXISTS items_fts_insert")
        bind.exec_driver_sql("DROP TRIGGER IF EXISTS items_fts_update")
        bind.exec_driver_sql("DROP TRIGGER IF EXISTS items_fts_delete")
        bind.exec_driver_sql("DROP TABLE IF EXISTS items_fts")
    else:
        bind.exec_driver_sql("DROP INDEX IF EXISTS ix_items_text")
        bind.exec_driver_sql("DROP FUNCTION IF EXISTS goldlabel_item_text(text, jsonb)")
