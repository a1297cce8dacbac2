"""Alembic environment: runs on the connection handed in by ``goldlabel.storage.migrate``."""

from alembic import context

from goldlabel.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - goldlabel always passes a connection
    raise RuntimeError("run migrations through `goldlabel db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
