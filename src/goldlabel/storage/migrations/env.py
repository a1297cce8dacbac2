"""Alembic environment: runs on the connection handed in by ``goldlabel.storage.migrate``."""

from alembic import context

from goldlabel.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - goldlabel always passes a connection
    raise RuntimeError("run migrations through `goldlabel db upgrade`")



def include_name(name, type_, parent_names):  # type: ignore[no-untyped-def]
    # The text index (0017) lives outside the table definitions: SQLite's FTS5 table and its
    # shadow tables, PostgreSQL's item_text, and the indexer's watermark; autogenerate must not
    # drop them.
    return not (type_ == "table" and name is not None and name.startswith(("items_fts", "item_text")))


context.configure(
    connection=connection,
    include_name=include_name,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
