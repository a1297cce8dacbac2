"""PostgreSQL: plans that must not depend on what the statistics happen to say.

The statistics of a running database describe the projects it held when autovacuum last
analyzed the tables; a new project is not in them. These tests analyze the tables while they
hold one project only and check what the planner does for another."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import postgresql

from goldlabel.services import import_rows
from goldlabel.storage import imports as import_store
from goldlabel.storage import queue as queue_store
from goldlabel.storage.engine import write_tx

pytestmark = pytest.mark.postgres


@pytest.fixture
def backend() -> str:
    return "postgres"


def _explain(conn, sql: str, params: tuple) -> str:
    cur = conn.connection.cursor()
    try:
        cur.execute("EXPLAIN " + sql, params)
        return "\n".join(r[0] for r in cur.fetchall())
    finally:
        cur.close()


def test_import_lookup_into_a_new_project_probes_the_unique_index(factory):
    """Analyzed while the table held project A only, the planner knew nothing of B: it took
    the queue index for B's external-id lookup (project_id, then a filter on external_id), and
    each lookup walked B's items (a 1M-item import ran for many minutes). The queue index holds
    open items only (migration 0005), so the lookup can only use the unique index."""
    a, b = factory.make_project(), factory.make_project()
    rows = ((i + 1, {"external_id": f"a{i}", "data": {"text": f"item {i}"}}) for i in range(3000))
    assert import_rows.ingest_rows(factory.ctx, None, a["id"], rows).created == 3000
    with factory.ctx.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE items")
    with write_tx(factory.ctx.engine) as conn:
        import_store.prefer_indexes(conn)  # as the import runs it
        plan = _explain(conn, import_store.PG_EXISTING_IDS_SQL, ('["x1", "x2"]', b["id"]))
    assert "uq_items_project_id_external_id" in plan and "ix_items_queue" not in plan, plan


def test_queue_statements_spell_open_as_a_literal():
    """A generic plan uses the partial queue index only when the statement itself says
    status = 'open'; a bound parameter cannot prove the index's predicate."""
    dialect = postgresql.psycopg.dialect()
    sql = queue_store._CANDIDATES_PG.compile(dialect=dialect).string
    assert "items.status = 'open'" in sql, sql
    for stmt in (queue_store._CLAIM_PG, queue_store._H_CANDIDATES_PG.stmt):
        assert "items.status = 'open'" in str(stmt.compile(dialect=dialect))


def test_the_queue_index_serves_the_claim_as_a_generic_plan(factory):
    project = factory.make_project()
    factory.add_items(project, 50)
    dialect = postgresql.psycopg.dialect()
    compiled = queue_store._CANDIDATES_PG.compile(dialect=dialect)
    names = list(compiled.params)
    sql = compiled.string
    for i, name in enumerate(names, 1):
        sql = sql.replace(f"%({name})s", f"${i}")
    values = {**compiled.params, "b_project_id": project["id"], "b_annotator_id": 1, "b_is_gold": False, "b_limit": 1}
    with factory.ctx.engine.connect() as conn:
        conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        conn.exec_driver_sql(f"PREPARE cand AS {sql}")
        args = ", ".join(str(values[n]).lower() if isinstance(values[n], bool) else repr(values[n]) for n in names)
        plan = "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN EXECUTE cand({args})"))
        conn.exec_driver_sql("DEALLOCATE cand")
        conn.exec_driver_sql("RESET plan_cache_mode")
    assert "ix_items_queue" in plan, plan
