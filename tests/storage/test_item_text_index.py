"""The item browser's text search through the text index (migration 0015), on SQLite (FTS5
trigram table kept by triggers) and PostgreSQL (pg_trgm GIN index): the same items as the scan
it replaces, for every kind of term, kept in step with every write of the items."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from goldlabel.services import items as item_service
from goldlabel.storage import items as item_store
from goldlabel.storage.engine import now_ms, read_tx

# docs/deployment.md, "Text search", gives this statement (with CONCURRENTLY).
PG_CREATE_INDEX = "CREATE INDEX ix_items_text ON items USING gin (goldlabel_item_text(external_id, data) gin_trgm_ops)"
ITEMS = [
    {"external_id": "a-1", "data": {"text": "Anker PowerCore 10000, black"}},
    {"external_id": "a-2", "data": {"text": "100% cotton_shirt", "n": 12345}},
    {"external_id": "a-3", "data": {"title": "Café au lait", "tags": ["blue", "Green tea"]}},
    {"external_id": "a-4", "data": {"text": 'say "hello" world'}},
    {"external_id": "a-5", "data": {"a": "foo", "b": "bar"}},
    {"external_id": "ZZ-other", "data": {"text": "nothing to see", "nested": {"k": "deep value"}}},
]
# term -> the external ids it finds (today's semantics: a substring of the external id or of a
# top-level data value, a nested value as its JSON text, ASCII case folded, % and _ literal).
EXPECTED = {
    "anker": ["a-1"],
    "ANKER POWERCORE": ["a-1"],
    "10000,": ["a-1"],
    "100%": ["a-2"],
    "n_s": ["a-2"],
    "n%s": [],
    "12345": ["a-2"],
    "234": ["a-2"],
    "green tea": ["a-3"],
    "Café": ["a-3"],
    '"hello"': ["a-4"],
    "foo": ["a-5"],
    "foobar": [],  # two values never run together
    "barfoo": [],
    "deep value": ["ZZ-other"],
    "a-": ["a-1", "a-2", "a-3", "a-4", "a-5"],  # 2 characters: a scan
    "zz-": ["ZZ-other"],
    "zqxjv": [],
    "text": [],  # keys are not searched
}


def _setup(factory):
    project = factory.make_project()
    mgr = factory.api_as(project["manager"])
    res = mgr.post(f"/api/v1/projects/{project['id']}/items", json=ITEMS)
    assert res.status_code == 201, res.text
    # Another project's item and a deleted one hold the same words: never found here.
    other = factory.make_project(project["manager"])
    assert mgr.post(f"/api/v1/projects/{other['id']}/items",
                    json=[{"external_id": "b-1", "data": {"text": "Anker foo 12345"}}]).status_code == 201
    assert mgr.post(f"/api/v1/projects/{project['id']}/items",
                    json=[{"external_id": "gone-1", "data": {"text": "Anker deleted foo"}}]).status_code == 201
    gone = next(i["id"] for i in mgr.get(f"/api/v1/projects/{project['id']}/items", params={"q": "gone-1"})
                .json()["items"])
    assert mgr.delete(f"/api/v1/projects/{project['id']}/items/{gone}").status_code == 204
    return project, other, mgr


def _search(factory, project_id: int, term: str, *, indexed: bool | None, limit: int = 1000, **filters) -> list[str]:
    with read_tx(factory.ctx.engine) as conn:
        rows = item_store.list_items(conn, project_id, 0, limit, q=term, text_index=indexed, **filters)
    return [r["external_id"] for r in rows]


def _fts_rows(factory) -> dict[int, str]:
    with factory.ctx.engine.connect() as conn:
        return dict(conn.execute(sa.text("SELECT rowid, body FROM items_fts")).all())


def test_the_index_finds_what_the_scan_finds(factory):
    project, _other, mgr = _setup(factory)
    pid = project["id"]
    with read_tx(factory.ctx.engine) as conn:
        assert item_store.has_text_index(conn)
    for term, want in EXPECTED.items():
        assert _search(factory, pid, term, indexed=False) == want, term
        assert _search(factory, pid, term, indexed=True) == want, term
        assert _search(factory, pid, term, indexed=None) == want, term
    assert _search(factory, pid, "anker", indexed=True, status="deleted") == ["gone-1"]
    # Through the API, a keyset page of 1 at a time, with another filter beside it.
    got, after = [], 0
    while True:
        body = mgr.get(f"/api/v1/projects/{pid}/items", params={"q": "a-", "after": after, "limit": 1}).json()
        got += [i["external_id"] for i in body["items"]]
        if body["next_after"] is None:
            break
        after = body["next_after"]
    assert got == EXPECTED["a-"]
    assert _search(factory, pid, "o", indexed=True, limit=2) == ["a-1", "a-2"]  # 1 character: a scan


def test_keyset_pages_through_the_index_match_the_scan(factory):
    project = factory.make_project()
    mgr = factory.api_as(project["manager"])
    rows = [{"external_id": f"r-{i:03d}", "data": {"text": f"review {i}" + (" espresso" if i % 7 == 3 else "")}}
            for i in range(60)]
    assert mgr.post(f"/api/v1/projects/{project['id']}/items", json=rows).status_code == 201
    for term in ("espresso", "review", "review 5"):
        want = _search(factory, project["id"], term, indexed=False)
        got, after = [], 0
        with read_tx(factory.ctx.engine) as conn:
            while True:
                page = item_store.list_items(conn, project["id"], after, 4, q=term, text_index=True)
                got += [r["external_id"] for r in page]
                if len(page) < 4:
                    break
                after = page[-1]["id"]
            keys = item_store.list_item_keys(conn, project["id"], 0, 1000, q=term, text_index=True)
        assert got == want and [k[1] for k in keys] == want, term
    assert len(_search(factory, project["id"], "espresso", indexed=True)) == 9


def test_every_write_keeps_the_index(factory):
    project, other, mgr = _setup(factory)
    pid = project["id"]
    # An import that updates items (on_conflict=update): old text gone, new text found.
    res = mgr.post(f"/api/v1/projects/{pid}/items", params={"on_conflict": "update"},
                   json=[{"external_id": "a-5", "data": {"a": "quux", "b": "bar"}}])
    assert res.status_code == 201, res.text
    assert _search(factory, pid, "foo", indexed=True) == []
    assert _search(factory, pid, "quux", indexed=True) == ["a-5"]
    # The purge (past the undo window) and a purged project's cascade remove their rows.
    assert mgr.delete(f"/api/v1/projects/{other['id']}").status_code in (200, 204)
    item_service.purge_expired(factory.ctx, now=now_ms() + factory.ctx.settings.delete_undo_s * 1000 + 60_000)
    assert _search(factory, pid, "anker", indexed=True, status="deleted") == []
    with factory.ctx.engine.connect() as conn:
        n_items = conn.execute(sa.text("SELECT count(*) FROM items")).scalar()
        ids = {r[0] for r in conn.execute(sa.text("SELECT id FROM items"))}
    assert n_items == len(ITEMS)
    if factory.ctx.engine.dialect.name == "sqlite":
        fts = _fts_rows(factory)
        assert set(fts) == ids  # one row per item, none left behind
        body = next(b for b in fts.values() if b.startswith("a-5"))
        assert body == "a-5\x1fquux\x1fbar"
    else:
        with factory.ctx.engine.connect() as conn:
            text = conn.execute(sa.text("SELECT goldlabel_item_text(external_id, data) FROM items "
                                        "WHERE external_id = 'a-5'")).scalar()
        assert text == "a-5\x1fquux\x1fbar"


def test_sqlite_search_is_driven_by_the_index_in_id_order(factory):
    """The FTS5 table is the outer loop (rowid order from the cursor on, no sort), so a page
    stops at its last match; PostgreSQL plans each term (benchmarks/item_search.py)."""
    if factory.ctx.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's plan")
    project, _other, _mgr = _setup(factory)
    with read_tx(factory.ctx.engine) as conn:
        q = item_store._keyset_page(conn, [item_store.items.c.id], project["id"], 0, 50, {"q": "anker"})
        sql = str(q.compile(conn, compile_kwargs={"literal_binds": True}))
        plan = [r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
    assert plan[0].startswith("SCAN items_fts VIRTUAL TABLE INDEX") and plan[0].endswith(">"), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


def test_without_the_index_searches_scan_and_a_start_says_so(factory, caplog):
    """A PostgreSQL role that may not create pg_trgm leaves the index out (migration 0015);
    an index dropped here stands for that: the same results by the scan, and a clear log line."""
    project, _other, _mgr = _setup(factory)
    assert item_service.check_text_index(factory.ctx)
    with factory.ctx.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            for trigger in ("items_fts_insert", "items_fts_update", "items_fts_delete"):
                conn.exec_driver_sql(f"DROP TRIGGER {trigger}")
            conn.exec_driver_sql("DROP TABLE items_fts")
        else:
            conn.exec_driver_sql("DROP INDEX ix_items_text")
    try:
        with caplog.at_level("WARNING", logger="goldlabel.services.items"):
            assert not item_service.check_text_index(factory.ctx)
        assert "no text index" in caplog.text and "Text search" in caplog.text
        for term in ("anker", "foobar", "12345"):
            assert _search(factory, project["id"], term, indexed=None) == EXPECTED[term]
    finally:
        if factory.ctx.engine.dialect.name == "postgresql":  # the session's database: put it back
            with factory.ctx.engine.begin() as conn:
                conn.exec_driver_sql(PG_CREATE_INDEX)
