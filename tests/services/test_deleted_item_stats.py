"""Answers to deleted items (in their undo window) leave the statistics at once, on SQLite and
PostgreSQL: the re-fit's skills, the agreement figures, the annotator table, the pooled
knowledge of unknown annotators and the gold record; a restore puts them back."""

from __future__ import annotations

from goldlabel.services import annotators as annotator_service
from goldlabel.services import refit as refit_service
from goldlabel.storage import quality as quality_store
from goldlabel.storage.engine import read_tx

POS, NEG = {"sentiment": "positive"}, {"sentiment": "negative"}


def answer_all(factory, project: dict, annotators, label_of) -> None:
    """Each annotator answers every item it is handed, ``label_of(annotator index, item text)``."""
    base = f"/api/v1/projects/{project['id']}"
    for k, annotator in enumerate(annotators):
        api = factory.api_as(annotator)
        while (lease := api.post(f"{base}/next")).status_code == 200:
            body = lease.json()
            res = api.post(f"{base}/answers", json={"lease_token": body["token"],
                                                    "value": label_of(k, body["item"]["data"]["text"])})
            assert res.status_code == 201, res.text


def item_ids(mgr, pid: int) -> dict[str, int]:
    return {i["external_id"]: i["id"] for i in mgr.get(f"/api/v1/projects/{pid}/items?limit=1000").json()["items"]}


def skills(factory, pid: int) -> dict[int, tuple[float, int]]:
    with read_tx(factory.ctx.engine) as conn:
        return {r["annotator_id"]: (r["accuracy"], r["n_answers"]) for r in quality_store.list_skills(conn, pid)}


def test_a_deleted_items_answers_leave_the_refit_agreement_and_annotator_table(factory):
    anns = [factory.make_user() for _ in range(3)]
    project = factory.make_project(annotators=anns, overlap_min=3, overlap_max=3)
    pid = project["id"]
    factory.add_items(project, 12)
    mgr = factory.api_as(project["manager"])
    # Items 6-11: the third annotator disagrees with the other two; items 0-5: all agree.
    answer_all(factory, project, anns,
               lambda k, text: NEG if k == 2 and int(text.split()[-1]) >= 6 else POS)
    refit_service.refit_project(factory.ctx, None, pid)
    before = skills(factory, pid)
    assert before[anns[2].id][1] == 12 and before[anns[2].id][0] < before[anns[0].id][0]
    ids = item_ids(mgr, pid)
    res = mgr.post(f"/api/v1/projects/{pid}/items/bulk",
                   json={"action": "delete", "item_ids": [ids[f"x{i}"] for i in range(6, 12)]})
    assert res.status_code == 200, res.text
    with read_tx(factory.ctx.engine) as conn:  # the scheduler re-fits it: its answers changed
        assert pid in quality_store.list_projects_needing_refit(conn)
    refit_service.refit_project(factory.ctx, None, pid)
    after = skills(factory, pid)
    assert {a: n for a, (_acc, n) in after.items()} == {a.id: 6 for a in anns}
    assert after[anns[2].id][0] == after[anns[0].id][0]  # alike on what is left
    table = {r["annotator_id"]: r["n_answers"] for r in annotator_service.list_annotators(
        factory.ctx, project["manager"], pid)}
    assert table == {a.id: 6 for a in anns}
    agreement = annotator_service.compute_agreement(factory.ctx, project["manager"], pid)["sentiment"]
    assert agreement["answers"] == 18 and agreement["krippendorff_alpha"] in (None, 1.0)
    # Restored: back in every figure.
    res = mgr.post(f"/api/v1/projects/{pid}/items/restore", json={"deleted_at": res.json()["deleted_at"]})
    assert res.json()["restored"] == 6
    refit_service.refit_project(factory.ctx, None, pid)
    assert {a: n for a, (_acc, n) in skills(factory, pid).items()} == {a.id: 12 for a in anns}


def test_the_pooled_sample_leaves_deleted_items_out(factory):
    anns = [factory.make_user() for _ in range(2)]
    project = factory.make_project(annotators=anns, overlap_min=2, overlap_max=2)
    pid = project["id"]
    factory.add_items(project, 4)
    mgr = factory.api_as(project["manager"])
    answer_all(factory, project, anns, lambda k, text: POS)
    ids = item_ids(mgr, pid)
    assert mgr.delete(f"/api/v1/projects/{pid}/items/{ids['x1']}").status_code == 204
    with read_tx(factory.ctx.engine) as conn:
        sampled = [i for i, _v in quality_store.fetch_recent_answer_values(conn, pid, 100)]
        assert sorted(set(sampled)) == sorted(ids[x] for x in ("x0", "x2", "x3")) and len(sampled) == 6
        if conn.dialect.name == "postgresql":  # the merged submit's own read of it
            from goldlabel.storage import queue_pg

            rows, *_totals = queue_pg.parse_pooled_sample(queue_pg.pooled_sample(project_id=pid, limit=100).all(conn))
            assert sorted(i for i, _v in rows) == sorted(sampled)


def test_a_deleted_gold_item_leaves_the_gold_record_and_a_restore_puts_it_back(factory):
    ann = factory.make_user()
    project = factory.make_project(annotators=[ann], settings={"gold_rate": 1.0})
    pid = project["id"]
    mgr = factory.api_as(project["manager"])
    rows = [{"external_id": "g1", "data": {"text": "gold 1"}, "gold": POS},
            {"external_id": "g2", "data": {"text": "gold 2"}, "gold": POS},
            *({"external_id": f"n{i}", "data": {"text": f"normal {i}"}} for i in range(4))]
    assert mgr.post(f"/api/v1/projects/{pid}/items", json=rows).status_code == 201
    answer_all(factory, project, [ann], lambda k, text: NEG if text == "gold 1" else POS)

    def record() -> tuple[int, int, dict]:
        with read_tx(factory.ctx.engine) as conn:
            stats = quality_store.fetch_stats(conn, pid, ann.id)
            totals = quality_store.fetch_gold_totals(conn, pid)
            gold = dict(quality_store.fetch_gold_labels(conn, pid, "sentiment"))
        assert totals == (stats["n_gold"], stats["n_gold_correct"])  # what the pooled knowledge reads
        return stats["n_gold"], stats["n_gold_correct"], {"by_question": stats["evidence"]["gold_by_question"],
                                                          "gold_items": len(gold)}

    assert record() == (2, 1, {"by_question": {"sentiment": {"n": 2, "passed": 1, "score_sum": 1.0}},
                               "gold_items": 2})
    ids = item_ids(mgr, pid)
    assert mgr.delete(f"/api/v1/projects/{pid}/items/{ids['g1']}").status_code == 204  # the one missed
    assert record() == (1, 1, {"by_question": {"sentiment": {"n": 1, "passed": 1, "score_sum": 1.0}},
                               "gold_items": 1})
    res = mgr.post(f"/api/v1/projects/{pid}/items/restore", json={"item_ids": [ids["g1"]]})
    assert res.json()["restored"] == 1
    assert record() == (2, 1, {"by_question": {"sentiment": {"n": 2, "passed": 1, "score_sum": 1.0}},
                               "gold_items": 2})
