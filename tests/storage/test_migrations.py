"""Migrations run on both backends, round-trip, and match the table definitions."""

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from goldlabel.storage.engine import create_engine
from goldlabel.storage.migrate import _config, fetch_revision, get_head_revision, upgrade_database
from goldlabel.storage.tables import metadata


def test_head_downgrade_upgrade_round_trip(settings):
    engine = create_engine(settings)
    assert fetch_revision(engine) == get_head_revision()
    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert fetch_revision(engine) is None
    upgrade_database(engine)
    assert fetch_revision(engine) == get_head_revision()
    engine.dispose()


@pytest.mark.filterwarnings("ignore:autogenerate skipping:UserWarning")
def test_migrations_match_table_definitions(settings):
    engine = create_engine(settings)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), metadata)
    engine.dispose()
    # Expression indexes (ix_items_queue: priority DESC ...) cannot be reflected by Alembic.
    diff = [d for d in diff if "ix_items_queue" not in repr(d)]
    # The text index lives outside the table definitions (migration 0017): SQLite's FTS5 table
    # and its shadow tables, PostgreSQL's item_text, and the indexer's watermark.
    diff = [d for d in diff if "items_fts" not in repr(d) and "item_text" not in repr(d)]
    assert diff == []
