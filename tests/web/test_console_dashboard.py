"""The console's read queries (storage/dashboard.py, services/dashboard.py) on both backends."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from goldlabel.services import dashboard as dashboard_service
from goldlabel.storage import dashboard as store
from goldlabel.storage.engine import read_tx, write_tx
from goldlabel.storage.tables import answers, consensus

SCHEMA = {"questions": [{"name": "s", "kind": "choice", "labels": ["yes", "no"]}]}
HOUR = 3600 * 1000


def answer_all(factory, project, annotator, labels, duration_ms=1000):
    api = factory.api_as(annotator)
    for label in labels:
        lease = api.post(f"/api/v1/projects/{project['id']}/next").json()
        res = api.post(f"/api/v1/projects/{project['id']}/answers",
                       json={"lease_token": lease["token"], "value": {"s": label}, "duration_ms": duration_ms})
        assert res.status_code == 201, res.text


@pytest.fixture
def project(factory):
    a1, a2 = factory.make_user(), factory.make_user()
    p = factory.make_project(schema=SCHEMA, annotators=[a1, a2], overlap_min=2, overlap_max=2,
                              settings={"target_confidence": 0.8})
    factory.add_items(p, 8)
    answer_all(factory, p, a1, ["yes"] * 8, 1000)
    answer_all(factory, p, a2, ["yes"] * 6 + ["no"] * 2, 3000)
    return p, a1, a2


def test_first_id_since_binary_search(ctx, project):
    p, _, _ = project
    with write_tx(ctx.engine) as conn:
        ids = [r[0] for r in conn.execute(sa.select(answers.c.id).where(answers.c.project_id == p["id"])
                                          .order_by(answers.c.id))]
        for k, answer_id in enumerate(ids):  # one answer per hour, oldest first
            conn.execute(answers.update().where(answers.c.id == answer_id).values(created_at=k * HOUR))
    with read_tx(ctx.engine) as conn:
        for k in range(len(ids)):
            assert store.first_id_since(conn, "answers", p["id"], k * HOUR) == ids[k]
            assert store.first_id_since(conn, "answers", p["id"], k * HOUR - 1) == ids[k]
        assert store.first_id_since(conn, "answers", p["id"], -5) == ids[0]
        assert store.first_id_since(conn, "answers", p["id"], len(ids) * HOUR) is None
        assert store.first_id_since(conn, "answers", p["id"] + 1000, 0) is None
        buckets = store.answer_counts_by_bucket(conn, p["id"], ids[3], 2 * HOUR)
    assert buckets == {k: 2 if k > 1 else 1 for k in range(1, 8)}
    assert sum(buckets.values()) == len(ids) - 3


def test_dashboard_numbers(ctx, project):
    p, a1, a2 = project
    d = dashboard_service.project_dashboard(ctx, p["manager"], p["id"])
    assert d["total"] == 8
    assert d["counts"]["final"] + d["counts"]["open"] + d["counts"]["needs_review"] == 8
    assert d["counts"]["needs_review"] == 2
    assert sum(d["answers_per_hour"].values) == 16 and sum(d["answers_per_day"].values) == 16
    assert d["final_per_day"].values[-1] == d["counts"]["final"]
    assert sum(d["confidence_bins"]) == d["confidence_n"] == 8 and not d["confidence_sampled"]
    rows = {r["username"]: r for r in d["annotators"]}
    assert rows[a1.username]["median_duration_ms"] == 1000 and rows[a2.username]["median_duration_ms"] == 3000
    assert rows[a1.username]["n_answers"] == 8
    assert 0.7 <= rows[a2.username]["agreement"] <= 1.0


def test_confidence_sample_is_capped(ctx, project):
    p, _, _ = project
    with read_tx(ctx.engine) as conn:
        values, sampled = store.confidence_sample(conn, p["id"], cap=4, strata=2)
        n = conn.execute(sa.select(sa.func.count()).select_from(consensus)
                         .where(consensus.c.project_id == p["id"])).scalar_one()
    assert sampled and 0 < len(values) <= 4 < n


def test_browse_filters_by_label_confidence_annotator_and_gold(ctx, factory, project):
    p, a1, _ = project
    m = p["manager"]
    everything = dashboard_service.browse_items(ctx, m, p["id"], 0, 100)["items"]
    assert len(everything) == 8
    review = dashboard_service.browse_items(ctx, m, p["id"], 0, 100, status="needs_review")["items"]
    assert len(review) == 2
    yes = dashboard_service.browse_items(ctx, m, p["id"], 0, 100, question="s", label="yes")["items"]
    assert {r["consensus"]["s"]["value"] for r in yes} == {"yes"} and len(yes) >= 6
    low = dashboard_service.browse_items(ctx, m, p["id"], 0, 100, question="s", max_confidence=0.7)["items"]
    assert {r["id"] for r in low} == {r["id"] for r in review}
    high = dashboard_service.browse_items(ctx, m, p["id"], 0, 100, question="s", min_confidence=0.8)["items"]
    assert len(high) == 6
    assert len(dashboard_service.browse_items(ctx, m, p["id"], 0, 100, annotator_id=a1.id)["items"]) == 8
    assert dashboard_service.browse_items(ctx, m, p["id"], 0, 100, is_gold=True)["items"] == []
    # Keyset pages: no item twice, none missing.
    page1 = dashboard_service.browse_items(ctx, m, p["id"], 0, 3)
    page2 = dashboard_service.browse_items(ctx, m, p["id"], page1["next_after"], 3)
    page3 = dashboard_service.browse_items(ctx, m, p["id"], page2["next_after"], 3)
    seen = [r["id"] for pg in (page1, page2, page3) for r in pg["items"]]
    assert seen == [r["id"] for r in everything] and page3["next_after"] is None


def test_browse_query_is_keyset_without_offset_or_count(ctx, project):
    p, _, _ = project
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    sa.event.listen(ctx.engine, "before_cursor_execute", record)
    try:
        dashboard_service.browse_items(ctx, p["manager"], p["id"], 5, 10, status="open", question="s",
                                       label="yes", min_confidence=0.1, annotator_id=1)
    finally:
        sa.event.remove(ctx.engine, "before_cursor_execute", record)
    # SQLAlchemy's SQLite dialect always writes "LIMIT ? OFFSET ?" (the offset bound to 0).
    sql = " ".join(statements).upper().replace("LIMIT ? OFFSET ?", "LIMIT ?")
    assert "OFFSET" not in sql and "COUNT(" not in sql and "LIMIT" in sql


def test_annotator_detail_and_review_queue(ctx, project):
    p, a1, a2 = project
    detail = dashboard_service.annotator_detail(ctx, p["manager"], p["id"], a2.id)
    (q,) = detail["questions"]
    assert q["labels"] == ["yes", "no"] and q["n"] == 8
    assert sum(map(sum, q["empirical"])) == 8
    queue = dashboard_service.review_queue(ctx, p["manager"], p["id"], 0, 10)["items"]
    assert len(queue) == 2
    first = dashboard_service.next_review_item(ctx, p["manager"], p["id"], 0)
    assert first == queue[0]["id"]
    assert dashboard_service.next_review_item(ctx, p["manager"], p["id"], queue[1]["id"]) == queue[0]["id"]
    view = dashboard_service.item_view(ctx, p["manager"], p["id"], first)
    assert set(view["names"].values()) == {a1.username, a2.username}


def test_item_browser_disagreement_filter(factory, ctx):
    from goldlabel.services import dashboard as dashboard_service

    annotators = [factory.make_user() for _ in range(2)]
    project = factory.make_project(annotators=annotators, overlap_min=2, overlap_max=2)
    factory.add_items(project, 2)
    pid = project["id"]
    for ann, labels in zip(annotators, [["positive", "positive"], ["positive", "negative"]]):
        api = factory.api_as(ann)
        for label in labels:
            lease = api.post(f"/api/v1/projects/{pid}/next").json()
            api.post(f"/api/v1/projects/{pid}/answers", json={"lease_token": lease["token"],
                                                              "value": {"sentiment": label}})
    page = dashboard_service.browse_items(ctx, project["manager"], pid, 0, 100, question="sentiment",
                                          disagreement=True)
    assert [i["external_id"] for i in page["items"]] == ["x1"]
