"""The item browser's text search through the text index (migration 0017), on SQLite (FTS5
trigram table) and PostgreSQL (item_text with a pg_trgm GIN index), filled after the imports by
the indexer (services.items.index_text): the same items as the scan it replaces, for every kind
of term, before, while and after the indexer catches up, and after edits, deletes and purges."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from goldlabel.services import items as item_service
from goldlabel.storage import items as item_store
from goldlabel.storage.engine import now_ms, read_tx

# docs/deployment.md, "Text search", gives this statement (with CONCURRENTLY).
PG_CREATE_INDEX = "CREATE INDEX ix_item_text_body ON item_text USING gin (body gin_trgm_ops)"
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


def _index_rows(factory) -> dict[int, str]:
    sql = ("SELECT rowid, body FROM items_fts" if factory.ctx.engine.dialect.name == "sqlite"
           else "SELECT item_id, body FROM item_text")
    with factory.ctx.engine.connect() as conn:
        return dict(conn.execute(sa.text(sql)).all())


def _lag(factory) -> tuple[int, int]:
    with read_tx(factory.ctx.engine) as conn:
        return item_store.text_index_lag(conn)


def _all_equal_to_the_scan(factory, project_id: int, *, expected: bool = True) -> None:
    for term, want in EXPECTED.items():
        if expected:
            assert _search(factory, project_id, term, indexed=False) == want, term
        else:
            want = _search(factory, project_id, term, indexed=False)
        assert _search(factory, project_id, term, indexed=True) == want, term
        assert _search(factory, project_id, term, indexed=None) == want, term



def test_the_index_finds_what_the_scan_finds_before_while_and_after_indexing(factory):
    project, _other, mgr = _setup(factory)
    pid = project["id"]
    with read_tx(factory.ctx.engine) as conn:
        assert item_store.has_text_index(conn)
    # Before: the import wrote no index row; every item is in the scanned tail.
    mark, top = _lag(factory)
    assert mark < top and not any(i > mark for i in _index_rows(factory))
    _all_equal_to_the_scan(factory, pid)
    # While: a batch of 3 at a time, the results checked after each.
    while item_service.index_text(factory.ctx, batch=3, max_batches=1):
        assert _lag(factory)[0] <= _lag(factory)[1]
        _all_equal_to_the_scan(factory, pid)
        assert _search(factory, pid, "anker", indexed=True, status="deleted") == ["gone-1"]
    # After: caught up, every item in the index.
    mark, top = _lag(factory)
    assert mark == top
    with factory.ctx.engine.connect() as conn:
        ids = {r[0] for r in conn.execute(sa.text("SELECT id FROM items"))}
    assert set(_index_rows(factory)) == ids
    _all_equal_to_the_scan(factory, pid)
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
    wants = {term: _search(factory, project["id"], term, indexed=False) for term in ("espresso", "review", "review 5")}
    # Indexed up to the middle (pages cross the watermark), then all of it.
    for batches in (1, None):
        assert item_service.index_text(factory.ctx, batch=25, max_batches=batches)
        for term, want in wants.items():
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


def test_edits_deletes_and_purges_keep_the_index(factory):
    project, other, mgr = _setup(factory)
    pid = project["id"]
    item_service.index_text(factory.ctx)
    # An import that updates an indexed item (on_conflict=update): old text gone, new text found.
    res = mgr.post(f"/api/v1/projects/{pid}/items", params={"on_conflict": "update"},
                   json=[{"external_id": "a-5", "data": {"a": "quux", "b": "bar"}}])
    assert res.status_code == 201, res.text
    assert _search(factory, pid, "foo", indexed=True) == []
    assert _search(factory, pid, "quux", indexed=True) == ["a-5"]
    assert next(b for b in _index_rows(factory).values() if b.startswith("a-5")) == "a-5\x1fquux\x1fbar"
    # New items after the watermark, one of them edited before the indexer reaches it.
    assert mgr.post(f"/api/v1/projects/{pid}/items", json=[{"external_id": "n-1", "data": {"text": "fresh kiwi"}},
                                                          {"external_id": "n-2", "data": {"text": "late plum"}}]
                    ).status_code == 201
    assert mgr.post(f"/api/v1/projects/{pid}/items", params={"on_conflict": "update"},
                    json=[{"external_id": "n-2", "data": {"text": "late mango"}}]).status_code == 201
    for term, want in (("kiwi", ["n-1"]), ("plum", []), ("mango", ["n-2"])):
        assert _search(factory, pid, term, indexed=True) == want, term
    item_service.index_text(factory.ctx)
    for term, want in (("kiwi", ["n-1"]), ("plum", []), ("mango", ["n-2"])):
        assert _search(factory, pid, term, indexed=True) == want, term
    # The purge (past the undo window) and a purged project's cascade remove their rows.
    assert mgr.delete(f"/api/v1/projects/{other['id']}").status_code in (200, 204)
    item_service.purge_expired(factory.ctx, now=now_ms() + factory.ctx.settings.delete_undo_s * 1000 + 60_000)
    assert _search(factory, pid, "anker", indexed=True, status="deleted") == []
    with factory.ctx.engine.connect() as conn:
        ids = {r[0] for r in conn.execute(sa.text("SELECT id FROM items"))}
    assert len(ids) == len(ITEMS) + 2
    assert set(_index_rows(factory)) == ids  # one row per item, none left behind
    _all_equal_to_the_scan(factory, pid, expected=False)


def test_the_highest_item_purged_and_its_id_given_again_is_found(factory):
    """SQLite may give a purged highest id to the next item: the watermark steps back below it."""
    project, _other, mgr = _setup(factory)
    pid = project["id"]
    assert mgr.post(f"/api/v1/projects/{pid}/items", json=[{"external_id": "top-1", "data": {"t": "walnut"}}]
                    ).status_code == 201
    item_service.index_text(factory.ctx)
    top = _search(factory, pid, "walnut", indexed=True)
    assert top == ["top-1"]
    item_id = max(_index_rows(factory))
    assert mgr.delete(f"/api/v1/projects/{pid}/items/{item_id}").status_code == 204
    item_service.purge_expired(factory.ctx, now=now_ms() + factory.ctx.settings.delete_undo_s * 1000 + 60_000)
    mark, top_id = _lag(factory)
    assert top_id < item_id
    if factory.ctx.engine.dialect.name == "sqlite":  # PostgreSQL's sequence never gives an id again
        assert mark == top_id
    assert mgr.post(f"/api/v1/projects/{pid}/items", json=[{"external_id": "top-2", "data": {"t": "hazelnut"}}]
                    ).status_code == 201
    assert _search(factory, pid, "hazelnut", indexed=True) == ["top-2"]
    assert _search(factory, pid, "walnut", indexed=True) == []
    item_service.index_text(factory.ctx)
    assert _search(factory, pid, "hazelnut", indexed=True) == ["top-2"]
    _all_equal_to_the_scan(factory, pid, expected=False)


def test_sqlite_search_is_driven_by_the_index_in_id_order(factory):
    """The FTS5 table is the outer loop of the indexed half (rowid order from the cursor on, no
    sort), so a page stops at its last match; PostgreSQL plans each term (benchmarks/item_search.py)."""
    if factory.ctx.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's plan")
    project, _other, _mgr = _setup(factory)
    item_service.index_text(factory.ctx)
    with read_tx(factory.ctx.engine) as conn:
        q = item_store._keyset_page(conn, [item_store.items.c.id], project["id"], 0, 50, {"q": "anker"})
        sql = str(q.compile(conn, compile_kwargs={"literal_binds": True}))
        plan = [r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
    fts = [step for step in plan if step.startswith("SCAN items_fts VIRTUAL TABLE INDEX")]
    assert fts and fts[0].endswith("><"), plan  # MATCH, then rowid > cursor and <= watermark
    # Each half stops at its limit unsorted (the merge then sorts at most 2 x limit rows).
    inner = plan[plan.index("CO-ROUTINE via_index"):plan.index("SCAN via_index")]
    assert plan[0] == "MERGE (UNION ALL)" and not any("TEMP B-TREE" in step for step in inner), "\n".join(plan)


def test_without_the_index_searches_scan_and_a_start_says_so(factory, caplog):
    """A PostgreSQL role that may not create pg_trgm leaves the index out (migration 0017);
    an index dropped here stands for that: the same results by the scan, a clear log line, and
    the indexer does nothing."""
    project, _other, _mgr = _setup(factory)
    assert item_service.check_text_index(factory.ctx)
    with factory.ctx.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            for trigger in ("items_fts_update", "items_fts_delete"):
                conn.exec_driver_sql(f"DROP TRIGGER {trigger}")
            conn.exec_driver_sql("DROP TABLE items_fts")
        else:
            conn.exec_driver_sql("DROP INDEX ix_item_text_body")
    try:
        with caplog.at_level("WARNING", logger="goldlabel.services.items"):
            assert not item_service.check_text_index(factory.ctx)
        assert "no text index" in caplog.text and "Text search" in caplog.text
        assert item_service.index_text(factory.ctx) == 0
        for term in ("anker", "foobar", "12345"):
            assert _search(factory, project["id"], term, indexed=None) == EXPECTED[term]
    finally:
        if factory.ctx.engine.dialect.name == "postgresql":  # the session's database: put it back
            with factory.ctx.engine.begin() as conn:
                conn.exec_driver_sql(PG_CREATE_INDEX)


def test_the_background_indexer_catches_up(factory):
    """What a server runs every text_index_interval_s (app lifespan): new items reach the index
    without anyone calling index_text."""
    project, _other, mgr = _setup(factory)
    indexer = item_service.TextIndexer(factory.ctx, 0.05)
    indexer.start()
    try:
        deadline = time.monotonic() + 30
        while _lag(factory)[0] < _lag(factory)[1] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _lag(factory)[0] == _lag(factory)[1]
        assert mgr.post(f"/api/v1/projects/{project['id']}/items",
                        json=[{"external_id": "late-1", "data": {"t": "pistachio"}}]).status_code == 201
        while _lag(factory)[0] < _lag(factory)[1] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "late-1\x1fpistachio" in _index_rows(factory).values()
    finally:
        indexer.stop()
    assert _search(factory, project["id"], "pistachio", indexed=True) == ["late-1"]


def test_an_indexer_batch_in_flight_never_hides_work_from_annotators(factory):
    """The indexer's batch locked the rows it read (FOR SHARE), so the queue's claim (FOR UPDATE
    SKIP LOCKED) skipped them all and ``next`` answered 204 while items were open (migration
    0018). With a batch open and not committed, an annotator still gets an item; an edit made
    before the indexer reached its item writes its row (the trigger's upsert), which the batch
    keeps."""
    if factory.ctx.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite's writers take turns, so a claim never meets a batch in flight")
    ann = factory.make_user()
    project = factory.make_project(annotators=[ann])
    pid = project["id"]
    mgr = factory.api_as(project["manager"])
    rows = [{"external_id": f"t-{i}", "data": {"text": f"old words {i}"}} for i in range(5)]
    assert mgr.post(f"/api/v1/projects/{pid}/items", json=rows).status_code == 201
    with factory.ctx.engine.begin() as conn:  # above the watermark: the trigger writes the row now
        conn.execute(sa.text("UPDATE items SET data = CAST(:d AS JSONB) WHERE external_id = 't-3'"),
                     {"d": '{"text": "fresh words"}'})
    annotator = factory.api_as(ann)
    with factory.ctx.engine.connect() as conn, conn.begin():
        assert item_store.index_text_batch(conn, 1000) >= 5  # in flight until the block ends
        lease = annotator.post(f"/api/v1/projects/{pid}/next")
        assert lease.status_code == 200, lease.text
    item_service.index_text(factory.ctx)
    assert _search(factory, pid, "fresh words", indexed=True) == ["t-3"]
    assert _search(factory, pid, "old words 3", indexed=True) == []
    with factory.ctx.engine.connect() as conn:
        body = conn.execute(sa.text("SELECT body FROM item_text JOIN items ON items.id = item_id "
                                    "WHERE external_id = 't-3'")).scalar()
    assert "fresh words" in body


def test_the_background_indexer_rests_between_sqlite_batches_and_stops_when_asked(factory):
    """SQLite has one writer: between full batches the indexer is told how long the batch took
    (TextIndexer waits that long, so a lease or submit waits for one small batch at most), and
    stops there when the wait says so. PostgreSQL's writers do not queue behind it: no rests."""
    project = factory.make_project()
    mgr = factory.api_as(project["manager"])
    rows = [{"external_id": f"p-{i:03d}", "data": {"text": f"item {i}"}} for i in range(50)]
    assert mgr.post(f"/api/v1/projects/{project['id']}/items", json=rows).status_code == 201
    rests: list[float] = []

    def pause(seconds: float) -> bool:
        rests.append(seconds)
        return len(rests) == 2  # stop at the second rest

    done = item_service.index_text(factory.ctx, batch=10, pause=pause)
    if factory.ctx.engine.dialect.name == "sqlite":
        assert done == 20 and len(rests) == 2 and all(0 < s < 5 for s in rests)
        assert item_service.index_text(factory.ctx, batch=10, pause=lambda s: False) == 30
    else:
        assert done == 50 and rests == []
    assert _lag(factory)[0] == _lag(factory)[1]
