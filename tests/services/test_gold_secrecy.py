"""Annotators cannot tell gold items apart (issue 17), on SQLite and PostgreSQL.

What a project looks like to an annotator carries nothing about gold or how work is checked, and
every annotator meets the gold items in an order of their own, so comparing notes does not reveal
which items came first for everyone.
"""

from __future__ import annotations

import sqlalchemy as sa

from goldlabel.storage.queue import _gold_rank, gold_order_keys
from goldlabel.storage.tables import items

POS = {"sentiment": "positive"}
QUALITY = {"qualification_gold": 3, "gold_rate": 0.2, "suspend_below": 0.4, "qualification_accuracy": 0.8,
           "gold_spans_min_iou": 0.6, "target_confidence": 0.9}


def _keys(obj) -> list[str]:
    if isinstance(obj, dict):
        return [k for k, v in obj.items() for k in [k, *_keys(v)]]
    if isinstance(obj, list):
        return [k for v in obj for k in _keys(v)]
    return []


def test_annotator_sees_no_gold_or_quality_settings(factory):
    ann = factory.make_user()
    reviewer = factory.make_user("reviewer")
    project = factory.make_project(annotators=[ann, reviewer], settings=QUALITY)
    pid = project["id"]
    as_ann = factory.api_as(ann)
    shown = [as_ann.get(f"/api/v1/projects/{pid}").json()]
    listed = as_ann.get("/api/v1/projects").json()["items"]
    assert [p["id"] for p in listed] == [pid]
    shown += listed
    for body in shown:
        assert body["role"] == "annotator"
        assert not [k for k in _keys(body) if "gold" in k.lower()], body
        assert body["settings"] == {"show_predictions": False, "max_leases_per_annotator": 4}
        assert body["name"] == project["name"] and body["label_schema"] == project["label_schema"]
    for who in (project["manager"], reviewer):
        body = factory.api_as(who).get(f"/api/v1/projects/{pid}").json()
        assert body["settings"]["qualification_gold"] == 3 and body["settings"]["gold_rate"] == 0.2
        assert body["settings"]["suspend_below"] == 0.4 and body["settings"]["gold_spans_min_iou"] == 0.6


def _first_gold(factory, pid: int, annotator, n: int) -> list[int]:
    api = factory.api_as(annotator)
    out = []
    for _ in range(n):
        res = api.post(f"/api/v1/projects/{pid}/next")
        assert res.status_code == 200, res.text
        out.append(factory.item_id(annotator, pid, res.json()["item"]["id"]))
    return out


def test_each_annotator_gets_gold_in_an_order_of_their_own(factory, ctx):
    anns = [factory.make_user(), factory.make_user()]
    project = factory.make_project(annotators=anns, overlap_min=2, overlap_max=2,
                                   settings={"qualification_gold": 3, "max_leases_per_annotator": 4})
    pid = project["id"]
    gold = [{"external_id": f"g{i}", "data": {"text": f"gold {i}"}, "gold": POS} for i in range(6)]
    assert factory.api_as(project["manager"]).post(f"/api/v1/projects/{pid}/items", json=gold).status_code == 201
    factory.add_items(project, 4)
    with ctx.engine.connect() as conn:
        gold_ids = list(conn.scalars(sa.select(items.c.id).where(items.c.project_id == pid, items.c.is_gold)))
    firsts = [_first_gold(factory, pid, ann, 3) for ann in anns]
    for ann, first in zip(anns, firsts, strict=True):
        assert set(first) <= set(gold_ids)  # qualifying: gold only
        keys = gold_order_keys(pid, ann.id)
        expected = sorted(gold_ids, key=lambda i: (_gold_rank(i, keys["b_gold_mul"], keys["b_gold_add"]), i))
        assert first == expected[:3]  # deterministic per annotator
    # Not the same sequence for both, and not simply the oldest gold items (the old order).
    assert firsts[0] != firsts[1]
