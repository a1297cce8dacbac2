"""Managing items at scale (issue 12, items 6 and 12), each on SQLite and PostgreSQL: filters
with keyset pages, bulk actions over a filter, soft delete with an undo window and its purge,
project delete and restore, and an annotator's report of an item whose media failed to load.

A deleted item is never leased: the queue claims open items only and a deleted item has the
status "deleted" (its live leases are cancelled by the delete).
"""

from __future__ import annotations

import sqlalchemy as sa

from goldlabel.domain.splits import split_of
from goldlabel.services import items as item_service
from goldlabel.storage.engine import now_ms
from goldlabel.storage.tables import answers, items, leases, projects

POS = {"sentiment": "positive"}


def lease(api, pid: int):
    return api.post(f"/api/v1/projects/{pid}/next")


def submit(api, pid: int, token: str, value: dict = POS):
    return api.post(f"/api/v1/projects/{pid}/answers", json={"lease_token": token, "value": value})


def listed(api, pid: int, **params) -> list[str]:
    out, after = [], 0
    while True:
        res = api.get(f"/api/v1/projects/{pid}/items", params={**params, "after": after, "limit": 3})
        assert res.status_code == 200, res.text
        body = res.json()
        out += [i["external_id"] for i in body["items"]]
        if body["next_after"] is None:
            return out
        after = body["next_after"]


def books_balance(factory, pid: int) -> None:
    with factory.ctx.engine.connect() as conn:
        for it in conn.execute(sa.select(items).where(items.c.project_id == pid)).mappings():
            n_active = conn.execute(sa.select(sa.func.count()).select_from(leases).where(
                leases.c.item_id == it["id"], leases.c.status == "active")).scalar()
            assert it["reserved"] == n_active, it


def setup(factory, n_items: int = 6, n_annotators: int = 1, **spec):
    anns = [factory.make_user() for _ in range(n_annotators)]
    project = factory.make_project(annotators=anns, **spec)
    rows = [{"external_id": f"doc-{i}", "data": {"text": f"review number {i}" + (" refund please" if i % 2 else "")},
             "meta": {"lang": "de" if i < 2 else "en", "batch": str(i % 3)}} for i in range(n_items)]
    res = factory.api_as(project["manager"]).post(f"/api/v1/projects/{project['id']}/items", json=rows)
    assert res.status_code == 201, res.text
    return project, project["id"], factory.api_as(project["manager"]), [factory.api_as(a) for a in anns]


def ids_by_external(api, pid: int) -> dict[str, int]:
    return {i["external_id"]: i["id"] for i in api.get(f"/api/v1/projects/{pid}/items?limit=1000").json()["items"]}


# ---------------------------------------------------------------- filters


def test_text_search_meta_and_split_filters_page_by_cursor(factory):
    _project, pid, mgr, _ = setup(factory, n_items=8)
    assert listed(mgr, pid, q="REFUND") == ["doc-1", "doc-3", "doc-5", "doc-7"]  # case-insensitive, data text
    assert listed(mgr, pid, q="doc-6") == ["doc-6"]  # the external_id
    assert listed(mgr, pid, q="text") == []  # keys of the data are not searched
    assert listed(mgr, pid, q="100%") == []  # % is taken literally
    assert listed(mgr, pid, meta="lang=de") == ["doc-0", "doc-1"]
    assert listed(mgr, pid, meta=["lang=en", "batch=0"]) == ["doc-3", "doc-6"]
    for split in ("train", "validation", "test"):
        want = [f"doc-{i}" for i in range(8) if split_of(f"doc-{i}") == split]
        assert listed(mgr, pid, split=split) == want
    res = mgr.get(f"/api/v1/projects/{pid}/items", params={"meta": "nokeyvalue"})
    assert res.status_code == 422 and res.json()["code"] == "bad_meta_filter"
    res = mgr.get(f"/api/v1/projects/{pid}/items", params={"meta": "bad key=1"})
    assert res.status_code == 422 and res.json()["code"] == "bad_meta_key"


def test_source_and_flag_filters(factory):
    _project, pid, mgr, (ann,) = setup(factory, n_items=3, overlap_min=1, overlap_max=1)
    got = lease(ann, pid).json()
    res = ann.post(f"/api/v1/projects/{pid}/items/{got['item']['id']}/report",
                   json={"reason": "media_broken", "lease_token": got["token"]})
    assert res.status_code == 200, res.text
    reported = [i for i in listed(mgr, pid, flag="media_broken")]
    assert len(reported) == 1
    assert listed(mgr, pid, source="review") == []


# ---------------------------------------------------------------- soft delete never leased


def test_a_deleted_item_is_never_leased_and_its_live_lease_is_cancelled(factory):
    _project, pid, mgr, (ann,) = setup(factory, n_items=2)
    ids = ids_by_external(mgr, pid)
    first = lease(ann, pid).json()
    held = factory.item_id_of(ann, pid, first["item"]["id"])
    # Delete the item the annotator holds, and the other one: nothing is left to lease.
    res = mgr.post(f"/api/v1/projects/{pid}/items/bulk", json={"action": "delete", "item_ids": list(ids.values())})
    assert res.status_code == 200, res.text
    body = res.json()
    assert (body["matched"], body["changed"]) == (2, 2)
    books_balance(factory, pid)
    for _ in range(3):
        assert lease(ann, pid).status_code == 204
    # The cancelled lease cannot submit.
    assert submit(ann, pid, first["token"]).status_code in (409, 410)
    with factory.ctx.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(answers)
                            .where(answers.c.item_id == held)).scalar() == 0
    # Hidden from the list, the item detail, the dashboard's counts and the export.
    assert listed(mgr, pid) == []
    assert mgr.get(f"/api/v1/projects/{pid}/items/{held}").status_code == 404
    assert sorted(listed(mgr, pid, status="deleted")) == ["doc-0", "doc-1"]
    assert mgr.get(f"/api/v1/projects/{pid}").json().get("counts", {}).get("open", 0) == 0
    export = mgr.get(f"/api/v1/projects/{pid}/export", params={"format": "jsonl"})
    assert export.status_code == 200 and export.text.strip() == ""
    # Undo: the items are back in the queue.
    res = mgr.post(f"/api/v1/projects/{pid}/items/restore", json={"deleted_at": body["deleted_at"]})
    assert res.json() == {"restored": 2}
    books_balance(factory, pid)
    assert lease(ann, pid).status_code == 200
    assert sorted(listed(mgr, pid)) == ["doc-0", "doc-1"]


def test_a_deleted_gold_item_is_never_leased(factory):
    # Gold streams take the general lease path on PostgreSQL too.
    anns = [factory.make_user(), factory.make_user()]
    project = factory.make_project(annotators=anns, settings={"gold_rate": 1.0})
    pid = project["id"]
    mgr = factory.api_as(project["manager"])
    rows = [{"external_id": "g", "data": {"text": "gold"}, "gold": POS}, {"external_id": "n", "data": {"text": "x"}}]
    assert mgr.post(f"/api/v1/projects/{pid}/items", json=rows).status_code == 201
    gid = ids_by_external(mgr, pid)["g"]
    assert factory.item_id(anns[0], pid, lease(factory.api_as(anns[0]), pid).json()["item"]["id"]) == gid  # live
    assert mgr.delete(f"/api/v1/projects/{pid}/items/{gid}").status_code == 204
    second = factory.api_as(anns[1])
    assert factory.item_id(anns[1], pid, lease(second, pid).json()["item"]["id"]) != gid
    assert lease(second, pid).status_code == 204
    books_balance(factory, pid)


def test_undo_window_passes_and_the_sweep_purges(factory):
    _project, pid, mgr, _ = setup(factory, n_items=3)
    ids = ids_by_external(mgr, pid)
    assert mgr.delete(f"/api/v1/projects/{pid}/items/{ids['doc-0']}").status_code == 204
    # Nothing is purged inside the window.
    assert item_service.purge_expired(factory.ctx) == {"items": 0, "projects": 0}
    window = factory.ctx.settings.delete_undo_s * 1000
    with factory.ctx.engine.begin() as conn:
        conn.execute(items.update().where(items.c.id == ids["doc-0"]).values(deleted_at=now_ms() - window - 1000))
    res = mgr.post(f"/api/v1/projects/{pid}/items/restore", json={"item_ids": [ids["doc-0"]]})
    assert res.json() == {"restored": 0}  # too late
    assert item_service.purge_expired(factory.ctx, batch=1) == {"items": 1, "projects": 0}
    with factory.ctx.engine.connect() as conn:
        assert conn.execute(sa.select(items.c.id).where(items.c.id == ids["doc-0"])).first() is None
    assert sorted(listed(mgr, pid)) == ["doc-1", "doc-2"]


# ---------------------------------------------------------------- bulk over a filter


def test_bulk_over_a_filter_applies_to_every_match_in_batches(factory, monkeypatch):
    monkeypatch.setattr(item_service, "BULK_BATCH", 2)
    _project, pid, mgr, _ = setup(factory, n_items=9)
    res = mgr.post(f"/api/v1/projects/{pid}/items/bulk",
                   json={"action": "priority", "priority": 7, "filter": {"q": "refund"}})
    assert res.status_code == 200, res.text
    assert res.json() | {} == {"action": "priority", "matched": 4, "changed": 4, "batches": 2,
                               "deleted_at": None, "undo_until": None}
    prio = {i["external_id"]: i["priority"] for i in mgr.get(f"/api/v1/projects/{pid}/items?limit=100").json()["items"]}
    assert [k for k, v in prio.items() if v == 7] == ["doc-1", "doc-3", "doc-5", "doc-7"]
    # Again: matched, nothing left to change.
    again = mgr.post(f"/api/v1/projects/{pid}/items/bulk",
                     json={"action": "priority", "priority": 7, "filter": {"q": "refund"}}).json()
    assert (again["matched"], again["changed"]) == (4, 0)
    res = mgr.post(f"/api/v1/projects/{pid}/items/bulk", json={"action": "review", "filter": {"meta": {"lang": "en"}}})
    assert (res.json()["matched"], res.json()["changed"], res.json()["batches"]) == (7, 7, 4)
    assert len(listed(mgr, pid, status="needs_review")) == 7
    # Deleting over a filter: every match, then undo by the delete's stamp.
    res = mgr.post(f"/api/v1/projects/{pid}/items/bulk", json={"action": "delete", "filter": {}}).json()
    assert (res["matched"], res["changed"], res["batches"]) == (9, 9, 5)
    assert listed(mgr, pid) == []
    restored = mgr.post(f"/api/v1/projects/{pid}/items/restore", json={"deleted_at": res["deleted_at"]}).json()
    assert restored == {"restored": 9}
    assert len(listed(mgr, pid, status="needs_review")) == 7  # statuses came back as they were


def test_bulk_refuses_bad_requests_and_outsiders(factory):
    _project, pid, mgr, (ann,) = setup(factory, n_items=2)
    for body, code in (
        ({"action": "delete"}, "bad_selection"),
        ({"action": "delete", "item_ids": [1], "filter": {}}, "bad_selection"),
        ({"action": "priority", "filter": {}}, "missing_priority"),
        ({"action": "delete", "filter": {"status": "deleted"}}, "bad_selection"),
        ({"action": "delete", "filter": {"label": "positive"}}, "missing_question"),
    ):
        res = mgr.post(f"/api/v1/projects/{pid}/items/bulk", json=body)
        assert res.status_code == 422 and res.json()["code"] == code, (body, res.text)
    assert ann.post(f"/api/v1/projects/{pid}/items/bulk", json={"action": "delete", "filter": {}}).status_code == 403
    outsider = factory.api_as(factory.make_user("manager"))
    assert outsider.post(f"/api/v1/projects/{pid}/items/bulk",
                         json={"action": "delete", "filter": {}}).status_code == 404
    assert len(listed(mgr, pid)) == 2


# ---------------------------------------------------------------- projects


def test_a_deleted_project_is_hidden_leases_nothing_and_restores(factory):
    _project, pid, mgr, (ann,) = setup(factory, n_items=3)
    ids = ids_by_external(mgr, pid)
    mgr.delete(f"/api/v1/projects/{pid}/items/{ids['doc-2']}")  # deleted on its own, before
    held = lease(ann, pid).json()
    assert mgr.delete(f"/api/v1/projects/{pid}").status_code == 204
    assert mgr.get(f"/api/v1/projects/{pid}").status_code == 404
    assert pid not in [p["id"] for p in mgr.get("/api/v1/projects").json()["items"]]
    # Nothing to lease: 404 where the lease reads the project first, 204 from PostgreSQL's
    # one-statement lease (which reads the project's items, all deleted).
    assert lease(ann, pid).status_code in (204, 404)
    assert submit(ann, pid, held["token"]).status_code in (404, 409, 410)
    with factory.ctx.engine.connect() as conn:
        statuses = {r.status for r in conn.execute(sa.select(items.c.status).where(items.c.project_id == pid))}
        assert statuses == {"deleted"}
    books_balance(factory, pid)
    res = mgr.post(f"/api/v1/projects/{pid}/restore")
    assert res.status_code == 200 and res.json()["id"] == pid
    assert sorted(listed(mgr, pid)) == ["doc-0", "doc-1"]  # doc-2 stays deleted
    assert lease(ann, pid).status_code == 200
    # Not restorable twice; outsiders learn nothing.
    assert mgr.post(f"/api/v1/projects/{pid}/restore").json()["code"] == "not_restorable"
    outsider = factory.api_as(factory.make_user("manager"))
    assert outsider.post(f"/api/v1/projects/{pid}/restore").status_code == 404


def test_a_project_past_its_window_is_purged(factory):
    _project, pid, mgr, _ = setup(factory, n_items=2)
    assert mgr.delete(f"/api/v1/projects/{pid}").status_code == 204
    window = factory.ctx.settings.delete_undo_s * 1000
    with factory.ctx.engine.begin() as conn:
        conn.execute(projects.update().where(projects.c.id == pid).values(deleted_at=now_ms() - window - 1))
    assert mgr.post(f"/api/v1/projects/{pid}/restore").json()["code"] == "not_restorable"
    assert item_service.purge_expired(factory.ctx)["projects"] == 1
    with factory.ctx.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(items)
                            .where(items.c.project_id == pid)).scalar() == 0


# ---------------------------------------------------------------- report


def test_report_media_broken_skips_the_lease_and_sends_the_item_to_review(factory):
    _project, pid, mgr, (ann, other) = setup(factory, n_items=1, n_annotators=2)
    got = lease(ann, pid).json()
    ref = got["item"]["id"]
    iid = factory.item_id_of(ann, pid, ref)
    # Another annotator's lease token does not report this item; without a token an annotator cannot.
    res = other.post(f"/api/v1/projects/{pid}/items/{ref}/report", json={"reason": "media_broken"})
    assert res.status_code == 422 and res.json()["code"] == "lease_required"
    res = other.post(f"/api/v1/projects/{pid}/items/{ref}/report", json={"lease_token": got["token"]})
    assert res.status_code == 404
    res = ann.post(f"/api/v1/projects/{pid}/items/{ref}/report", json={"reason": "media_broken",
                                                                        "lease_token": got["token"]})
    assert res.status_code == 200 and res.json()["status"] == "needs_review"
    item = mgr.get(f"/api/v1/projects/{pid}/items/{iid}").json()
    assert (item["status"], item["flag"]) == ("needs_review", "media_broken")
    assert lease(ann, pid).status_code == 204  # skipped: never served to them again
    assert lease(other, pid).status_code == 204  # in review, out of the queue
    books_balance(factory, pid)
    assert mgr.post(f"/api/v1/projects/{pid}/items/{iid}/report", json={"reason": "other"}).status_code == 422


def test_a_deleted_items_answers_and_reviews_are_hidden(factory):
    _project, pid, mgr, (ann,) = setup(factory, n_items=2, overlap_min=1, overlap_max=1)
    got = lease(ann, pid).json()
    assert submit(ann, pid, got["token"]).status_code == 201
    iid = factory.item_id_of(ann, pid, got["item"]["id"])
    assert len(mgr.get(f"/api/v1/projects/{pid}/answers").json()["items"]) == 1
    assert len(ann.get(f"/api/v1/projects/{pid}/my-answers").json()["items"]) == 1
    assert mgr.delete(f"/api/v1/projects/{pid}/items/{iid}").status_code == 204
    assert mgr.get(f"/api/v1/projects/{pid}/answers").json()["items"] == []
    assert ann.get(f"/api/v1/projects/{pid}/my-answers").json()["items"] == []
    assert mgr.post(f"/api/v1/projects/{pid}/items/{iid}/reviews", json={"action": "accept"}).status_code == 404
    assert mgr.get(f"/api/v1/projects/{pid}/items/{iid}/reviews").status_code == 404
    assert mgr.post(f"/api/v1/projects/{pid}/items/{iid}/report", json={}).status_code == 404
