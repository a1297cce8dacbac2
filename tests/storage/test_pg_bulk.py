"""Bulk paths of imports and exports: COPY's text escaping, imports serialized per project, and
the PostgreSQL plans that keep per-batch work flat while a bulk load leaves no statistics."""

from __future__ import annotations

import io
import threading
import time

import orjson
import pytest
import sqlalchemy as sa

from goldlabel.services.context import Context
from goldlabel.services.import_rows import ingest_rows
from goldlabel.services.imports import import_file
from goldlabel.storage import exports as export_store
from goldlabel.storage import imports as import_store
from goldlabel.storage.engine import write_tx
from goldlabel.storage.tables import items


def jsonl_bytes(rows) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in rows)


def stored(ctx, project_id) -> list[tuple]:
    with ctx.engine.connect() as conn:
        q = sa.select(items.c.external_id, items.c.data, items.c.meta, items.c.priority).where(
            items.c.project_id == project_id
        ).order_by(items.c.id)
        return [tuple(r) for r in conn.execute(q)]


# Characters COPY's text format treats specially (tab, newline, CR, backslash, "\N", "\."),
# in external ids (raw) and inside JSON strings (escaped by the JSON encoder, so backslashes).
AWKWARD = ["tab\there", "new\nline", "cr\rhere", "back\\slash", "\\N", "\\.", "\\", "ünïcødé ✓ 🚀",
           'quote"d', "comma,semi;", " lead and trail ", "x" * 255]


def test_import_keeps_values_copy_treats_specially(factory):
    project = factory.make_project()
    rows = [
        {"external_id": ext, "data": {"text": ext, "nested": {"k\\": ["\t", "\\N", None, 1.5]}},
         "meta": None if i % 2 else {"src": ext}, "priority": i - 3}
        for i, ext in enumerate(AWKWARD)
    ]
    report = import_file(factory.ctx, None, project["id"], io.BytesIO(jsonl_bytes(rows)), fmt="jsonl")
    assert report.created == len(AWKWARD)
    assert stored(factory.ctx, project["id"]) == [
        (r["external_id"], r["data"], r["meta"], r["priority"]) for r in rows
    ]
    # The lookup finds every one of them again: a re-import skips them all.
    again = import_file(factory.ctx, None, project["id"], io.BytesIO(jsonl_bytes(rows)), fmt="jsonl")
    assert (again.created, again.skipped) == (0, len(AWKWARD))


def test_concurrent_imports_of_the_same_ids_skip_instead_of_failing(factory):
    """The second import waits for the first (PostgreSQL: the project's import lock; SQLite: the
    write lock) and then finds its items, instead of inserting them again (a unique violation
    on PostgreSQL, where COPY has no ON CONFLICT)."""
    ctx = Context(settings=factory.ctx.settings.model_copy(update={"import_batch_size": 5}), engine=factory.ctx.engine)
    project = factory.make_project()
    rows = [{"external_id": f"c{i}", "data": {"text": str(i)}} for i in range(20)]
    first_paused, second_started = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def first_rows():
        for line, row in enumerate(rows, start=1):
            if line == 11:  # two batches are written, not committed: the second import starts now
                first_paused.set()
                assert second_started.wait(10)
                time.sleep(0.5)  # it reaches the lock (without one: its lookup, then its COPY)
            yield line, row

    def run(name, source):
        try:
            results[name] = ingest_rows(ctx, None, project["id"], source)
        except Exception as exc:  # noqa: BLE001 - asserted below
            results[name] = exc

    first = threading.Thread(target=run, args=("first", first_rows()))
    first.start()
    assert first_paused.wait(10)
    second_started.set()
    run("second", enumerate(rows, start=1))
    first.join(20)
    assert not isinstance(results["first"], Exception), results["first"]
    assert not isinstance(results["second"], Exception), results["second"]
    assert (results["first"].created, results["first"].skipped) == (20, 0)
    assert (results["second"].created, results["second"].skipped) == (0, 20)
    assert [r[0] for r in stored(factory.ctx, project["id"])] == [r["external_id"] for r in rows]


def _plan_nodes(conn, sql: str, params) -> list[dict]:
    cur = conn.connection.cursor()
    try:
        cur.execute("EXPLAIN (FORMAT JSON) " + sql, params, prepare=False)
        [[plan]] = cur.fetchone()
    finally:
        cur.close()
    nodes, todo = [], [plan["Plan"]]
    while todo:
        node = todo.pop()
        nodes.append(node)
        todo.extend(node.get("Plans", ()))
    return nodes


def _bulk_load(conn, project_id: int, n: int) -> None:
    """n items through the import's own COPY, inside the caller's open transaction: no
    statistics describe them (as during an import, or before autovacuum's first ANALYZE)."""
    rows = [(f"b{i:07d}", orjson.dumps({"text": f"item {i}"}).decode(), None, 0) for i in range(n)]
    for start in range(0, n, 5000):
        import_store.insert_new_items(conn, project_id, rows[start:start + 5000], target_overlap=1, overlap_max=1,
                                      now=1)


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_existing_id_lookup_probes_the_unique_index_during_a_bulk_load(factory):
    project = factory.make_project()
    with write_tx(factory.ctx.engine) as conn:
        import_store.prefer_indexes(conn)
        _bulk_load(conn, project["id"], 30_000)
        wanted = orjson.dumps([f"b{i:07d}" for i in range(10_000, 15_000)]).decode()
        nodes = _plan_nodes(conn, import_store.PG_EXISTING_IDS_SQL, (wanted, project["id"]))
        # One probe per id: never a hash join against every item of the project.
        kinds = {n["Node Type"] for n in nodes}
        assert "Hash Join" not in kinds and not any("Bitmap" in k for k in kinds), kinds
        assert [n.get("Index Name") for n in nodes if n["Node Type"] == "Index Scan"] == [
            "uq_items_project_id_external_id"
        ]
        assert len(import_store.fetch_existing_ids(conn, project["id"], orjson.loads(wanted))) == 5000


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_export_batches_walk_the_primary_key_during_a_bulk_load(factory):
    project = factory.make_project()
    with write_tx(factory.ctx.engine) as conn:
        _bulk_load(conn, project["id"], 30_000)
        first = conn.execute(sa.select(sa.func.min(items.c.id))).scalar()
        export_store.prefer_indexes(conn)
        sql = export_store.item_batch_sql("postgresql", with_status=False).replace("?", "%s")
        nodes = _plan_nodes(conn, sql, (project["id"], first + 10_000, 5000))
        # The next 5,000 ids off the primary key: no scan of every item above `after`, no sort.
        assert [n["Node Type"] for n in nodes] == ["Limit", "Index Scan"], [n["Node Type"] for n in nodes]
        assert nodes[1]["Index Name"] == "pk_items"
        batch = export_store.fetch_item_batch(conn, project["id"], first + 10_000, 5000)
        assert [row[0] for row in batch] == list(range(first + 10_001, first + 15_001))
