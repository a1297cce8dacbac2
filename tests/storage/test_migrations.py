"""Migrations run on both backends, round-trip, and match the table definitions."""

import pytest
import sqlalchemy as sa
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


def _index_definitions(conn, schema: str | None = None) -> dict[str, str]:
    """Every index of the database (or of ``schema`` on PostgreSQL), name -> its full definition:
    columns with their sort order, uniqueness and partial predicate, as the database reports it."""
    if conn.dialect.name == "postgresql":
        rows = conn.execute(sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = :s"),
                            {"s": schema or conn.execute(sa.text("SELECT current_schema()")).scalar_one()})
        return {name: definition.replace(f" {schema}.", " public.") if schema else definition
                for name, definition in rows}
    out = {}
    for name, table in conn.exec_driver_sql(
            "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'").all():
        keys = [(r[2], r[3], r[4]) for r in conn.exec_driver_sql(f"PRAGMA index_xinfo('{name}')") if r[5]]
        info = {r[1]: (r[2], r[3], r[4]) for r in conn.exec_driver_sql(f"PRAGMA index_list('{table}')")}
        sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).scalar()
        where = " ".join(sql.split(" WHERE ", 1)[1].split()) if sql and " WHERE " in sql else None
        out[name] = repr((table, keys, info[name], where))
    return out


def test_migrated_indexes_equal_the_table_definitions(settings, tmp_path):
    """Column order, DESC, uniqueness and partial predicates of every index, which Alembic's
    comparison does not see: SQLite's batch re-creation of ``items`` (migration 0011) rebuilt
    ``ix_items_queue`` from reflection without its DESC columns, so the queue's candidate query
    sorted every open item of the project on each lease (10 ms at 10,000 items). Fixed by 0019."""
    engine = create_engine(settings)
    # The text index lives outside the table definitions (migration 0017), so does Alembic's own table.
    outside = ("items_fts", "item_text", "ix_item_text", "alembic_version")
    with engine.connect() as conn:
        migrated = {k: v for k, v in _index_definitions(conn).items() if not k.startswith(outside)}
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("DROP SCHEMA IF EXISTS fresh_tables CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA fresh_tables"))
            metadata.create_all(conn.execution_options(schema_translate_map={None: "fresh_tables"}))
            fresh = _index_definitions(conn, "fresh_tables")
            conn.execute(sa.text("DROP SCHEMA fresh_tables CASCADE"))
            conn.commit()
        else:
            fresh_engine = sa.create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
            metadata.create_all(fresh_engine)
            with fresh_engine.connect() as fresh_conn:
                fresh = _index_definitions(fresh_conn)
            fresh_engine.dispose()
    engine.dispose()
    migrated = {k: v for k, v in migrated.items() if not k.startswith("sqlite_autoindex")}
    fresh = {k: v for k, v in fresh.items() if not k.startswith("sqlite_autoindex")}
    assert migrated == fresh


def test_sqlite_candidate_query_walks_the_queue_index(sqlite_template):
    """The lease's candidate query must read the queue index in order, never sort the project
    (PostgreSQL's plans are pinned in tests/storage/test_pg_plans.py)."""
    from sqlalchemy.dialects import sqlite

    from goldlabel.storage import queue as queue_store

    engine = sa.create_engine(f"sqlite:///{sqlite_template}")
    sql = str(queue_store._CANDIDATES.compile(dialect=sqlite.dialect()))
    with engine.connect() as conn:
        plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, (1, 0, 1, 1, "expired", 1, 0))]
    engine.dispose()
    assert any("ix_items_queue" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan
