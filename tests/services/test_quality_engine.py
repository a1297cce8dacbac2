"""The quality engine in the platform: adaptive overlap, gold, qualification, suspension,
re-fit, agreement and review — through the API, on both backends."""

from __future__ import annotations

import pytest

API = "/api/v1/projects"


def answer_next(api, pid: int, label: str) -> dict:
    lease = api.post(f"{API}/{pid}/next")
    assert lease.status_code == 200, lease.text
    res = api.post(f"{API}/{pid}/answers", json={"lease_token": lease.json()["token"], "value": {"sentiment": label}})
    assert res.status_code == 201, res.text
    return res.json()


def item_detail(factory, project, item_id: int | None = None) -> dict:
    manager = factory.api_as(project["manager"])
    if item_id is None:
        item_id = manager.get(f"{API}/{project['id']}/items").json()["items"][0]["id"]
    return manager.get(f"{API}/{project['id']}/items/{item_id}").json()


def test_adaptive_overlap_stops_when_confident(factory):
    annotators = [factory.make_user() for _ in range(5)]
    project = factory.make_project(annotators=annotators, overlap_min=1, overlap_max=5)
    factory.add_items(project, 1)
    pid = project["id"]
    # Unknown annotators are the project's pooled accuracy (services/cold_start.py): 0.7 with the
    # weight of 20 answers, moved by each agreeing answer on this item (n - 1 observations):
    # p = (n - 1 + 20 * 0.7) / (n - 1 + 20), P = p^n / (p^n + (1 - p)^n).
    def pooled(n: int) -> float:
        p = (n - 1 + 14) / (n - 1 + 20)
        return p**n / (p**n + (1 - p) ** n)

    expected = [("open", pooled(1)), ("open", pooled(2)), ("open", pooled(3)), ("final", pooled(4))]
    assert [round(c, 3) for _, c in expected] == [0.7, 0.862, 0.95, 0.985]
    for ann, (status, confidence) in zip(annotators, expected):
        result = answer_next(factory.api_as(ann), pid, "positive")
        assert result["item_status"] == status
        detail = item_detail(factory, project)
        assert detail["consensus"][0]["value"] == "positive"
        assert detail["consensus"][0]["confidence"] == pytest.approx(confidence, abs=1e-3)
    # Final: the fifth annotator gets no work.
    assert factory.api_as(annotators[4]).post(f"{API}/{pid}/next").status_code == 204
    assert item_detail(factory, project)["answer_count"] == 4


def test_disagreement_at_max_overlap_goes_to_review_and_reviewer_fixes(factory):
    annotators = [factory.make_user() for _ in range(3)]
    reviewer = factory.make_user("reviewer")
    project = factory.make_project(annotators=annotators + [reviewer], overlap_min=1, overlap_max=3)
    factory.add_items(project, 1)
    pid = project["id"]
    for ann, label in zip(annotators, ["positive", "negative", "positive"]):
        last = answer_next(factory.api_as(ann), pid, label)
    assert last["item_status"] == "needs_review"
    review_api = factory.api_as(reviewer)
    queue = review_api.get(f"{API}/{pid}/items", params={"status": "needs_review"}).json()["items"]
    assert len(queue) == 1
    item_id = queue[0]["id"]
    res = review_api.post(f"{API}/{pid}/items/{item_id}/reviews",
                          json={"action": "fix", "value": {"sentiment": "negative"}})
    assert res.status_code == 201, res.text
    detail = item_detail(factory, project, item_id)
    assert detail["status"] == "final"
    assert detail["consensus"][0] == {**detail["consensus"][0], "value": "negative", "method": "review",
                                      "confidence": 1.0}
    reviews = review_api.get(f"{API}/{pid}/items/{item_id}/reviews").json()
    assert [(r["action"], r["reviewer_id"]) for r in reviews] == [("fix", reviewer.id)]
    bad = review_api.post(f"{API}/{pid}/items/{item_id}/reviews", json={"action": "fix", "value": {"sentiment": "meh"}})
    assert bad.status_code == 422 and bad.json()["errors"][0]["code"] == "unknown_label"


def test_reject_sends_item_back_for_one_more_answer(factory):
    annotators = [factory.make_user() for _ in range(3)]
    project = factory.make_project(annotators=annotators, overlap_min=1, overlap_max=2)
    factory.add_items(project, 1)
    pid = project["id"]
    answer_next(factory.api_as(annotators[0]), pid, "positive")
    assert answer_next(factory.api_as(annotators[1]), pid, "negative")["item_status"] == "needs_review"
    item_id = item_detail(factory, project)["id"]
    manager = factory.api_as(project["manager"])
    assert manager.post(f"{API}/{pid}/items/{item_id}/reviews", json={"action": "reject"}).status_code == 201
    detail = item_detail(factory, project, item_id)
    assert (detail["status"], detail["target_overlap"]) == ("open", 3)
    answer_next(factory.api_as(annotators[2]), pid, "positive")
    assert item_detail(factory, project, item_id)["answer_count"] == 3


def test_qualification_failure_suspends_and_manager_reinstates(factory):
    ann = factory.make_user()
    project = factory.make_project(
        annotators=[ann], overlap_min=1, overlap_max=1,
        settings={"qualification_gold": 2, "qualification_accuracy": 1.0, "target_confidence": 0.5},
    )
    pid = project["id"]
    manager = factory.api_as(project["manager"])
    rows = [{"external_id": f"g{i}", "data": {"text": f"gold {i}"},
             "gold": {"sentiment": "positive"}} for i in range(2)]
    rows += [{"external_id": f"n{i}", "data": {"text": f"normal {i}"}} for i in range(3)]
    assert manager.post(f"{API}/{pid}/items", json=rows).status_code == 201
    api = factory.api_as(ann)
    gold_texts = set()
    for _ in range(2):  # qualification serves the gold first
        lease = api.post(f"{API}/{pid}/next").json()
        gold_texts.add(lease["item"]["data"]["text"])
        api.post(f"{API}/{pid}/answers", json={"lease_token": lease["token"], "value": {"sentiment": "negative"}})
    assert gold_texts == {"gold 0", "gold 1"}
    blocked = api.post(f"{API}/{pid}/next")
    assert blocked.status_code == 403 and blocked.json()["code"] == "annotator_suspended"
    row = manager.get(f"{API}/{pid}/annotators").json()[0]
    assert (row["status"], row["n_gold"], row["n_gold_correct"]) == ("suspended", 2, 0)
    assert "qualification failed" in row["evidence"]["reason"]
    assert sorted(row["evidence"]["recent_gold_misses"]) == sorted(
        i["id"] for i in manager.get(f"{API}/{pid}/items", params={"is_gold": True}).json()["items"]
    )
    assert manager.patch(f"{API}/{pid}/annotators/{ann.id}", json={"status": "active"}).status_code == 200
    assert api.post(f"{API}/{pid}/next").status_code == 200


def test_low_gold_accuracy_suspends_with_evidence(factory):
    ann = factory.make_user()
    project = factory.make_project(annotators=[ann], settings={"gold_rate": 1.0, "suspend_below": 0.6})
    pid = project["id"]
    manager = factory.api_as(project["manager"])
    rows = [{"external_id": f"g{i}", "data": {"text": f"g{i}"}, "gold": {"sentiment": "positive"}} for i in range(8)]
    rows += [{"external_id": f"n{i}", "data": {"text": f"n{i}"}} for i in range(20)]
    manager.post(f"{API}/{pid}/items", json=rows)
    api = factory.api_as(ann)
    for _ in range(8):
        lease = api.post(f"{API}/{pid}/next")
        if lease.status_code != 200:
            break
        api.post(f"{API}/{pid}/answers",
                 json={"lease_token": lease.json()["token"], "value": {"sentiment": "negative"}})
    row = manager.get(f"{API}/{pid}/annotators").json()[0]
    assert row["status"] == "suspended"
    assert row["evidence"]["interval"][1] < 0.6
    assert row["skills"]["sentiment"]["method"] == "gold"


def test_refit_learns_skills_and_confusions(factory, ctx):
    good = [factory.make_user() for _ in range(3)]
    project = factory.make_project(annotators=good, overlap_min=3, overlap_max=3, settings={"target_confidence": 0.99})
    factory.add_items(project, 12)
    pid = project["id"]
    for i, ann in enumerate(good):
        api = factory.api_as(ann)
        for n in range(12):
            lease = api.post(f"{API}/{pid}/next").json()
            label = "positive" if int(lease["item"]["data"]["text"].split()[-1]) % 2 else "negative"
            api.post(f"{API}/{pid}/answers", json={"lease_token": lease["token"], "value": {"sentiment": label}})
    manager = factory.api_as(project["manager"])
    before = manager.get(f"{API}/{pid}", ).json()["counts"]
    # Three agreeing unknown annotators: P = 0.950 < 0.99 on the first item; as the project shows
    # that its annotators agree, the pooled accuracy rises and later items finalize at once.
    assert before.get("needs_review", 0) >= 1 and before.get("final", 0) >= 6
    summary = manager.post(f"{API}/{pid}/refit")
    assert summary.status_code == 200, summary.text
    body = summary.json()
    assert body["questions"]["sentiment"]["answers"] == 36
    annotators = manager.get(f"{API}/{pid}/annotators").json()
    assert all(a["skills"]["sentiment"]["accuracy"] > 0.9 for a in annotators)
    assert all(a["skills"]["sentiment"]["confusion"] is not None for a in annotators)
    detail = item_detail(factory, project)
    assert detail["consensus"][0]["method"] == body["questions"]["sentiment"]["method"]
    agreement = manager.get(f"{API}/{pid}/agreement").json()["sentiment"]
    assert agreement["krippendorff_alpha"] == pytest.approx(1.0)
    # The refit claimed and released its lease: a second one runs too.
    assert manager.post(f"{API}/{pid}/refit").status_code == 200


def test_annotators_cannot_see_quality_routes(factory):
    ann = factory.make_user()
    project = factory.make_project(annotators=[ann])
    api = factory.api_as(ann)
    assert api.get(f"{API}/{project['id']}/annotators").status_code == 403
    assert api.post(f"{API}/{project['id']}/refit").status_code == 403
    outsider = factory.api_as(factory.make_user("manager"))
    assert outsider.get(f"{API}/{project['id']}/agreement").status_code == 404


def test_refit_finalizes_open_items_and_announces_them(factory):
    annotators = [factory.make_user() for _ in range(3)]
    project = factory.make_project(annotators=annotators, overlap_min=2, overlap_max=5,
                                   settings={"target_confidence": 0.95})
    factory.add_items(project, 6)
    pid = project["id"]
    for ann in annotators[:2]:
        api = factory.api_as(ann)
        for _ in range(6):
            lease = api.post(f"{API}/{pid}/next").json()
            api.post(f"{API}/{pid}/answers", json={"lease_token": lease["token"], "value": {"sentiment": "positive"}})
    manager = factory.api_as(project["manager"])
    # Two agreeing unknown annotators at the pooled accuracy of six agreeing items: p = 20 / 26,
    # P = 0.917 < 0.95, so every item stays open ...
    assert manager.get(f"{API}/{pid}").json()["counts"] == {"open": 6}
    # ... until the re-fit learns that these two always agree, i.e. are accurate.
    assert manager.post(f"{API}/{pid}/refit").status_code == 200
    assert manager.get(f"{API}/{pid}").json()["counts"] == {"final": 6}
    events = manager.get(f"{API}/{pid}/events", params={"limit": 1000}).json()["items"]
    refit_final = [e for e in events if e["kind"] == "item.final" and e["payload"].get("by") == "refit"]
    assert len(refit_final) == 6


def test_item_list_filters_on_consensus_label_and_confidence(factory):
    annotators = [factory.make_user() for _ in range(2)]
    project = factory.make_project(annotators=annotators, overlap_min=1, overlap_max=2)
    factory.add_items(project, 4)
    pid = project["id"]
    for ann, labels in zip(annotators, [["positive", "positive", "negative", "negative"],
                                        ["positive", "negative", "negative", "positive"]]):
        api = factory.api_as(ann)
        for label in labels:
            lease = api.post(f"{API}/{pid}/next").json()
            api.post(f"{API}/{pid}/answers", json={"lease_token": lease["token"], "value": {"sentiment": label}})
    manager = factory.api_as(project["manager"])

    def ids(**params):
        res = manager.get(f"{API}/{pid}/items", params=params)
        assert res.status_code == 200, res.text
        return [i["external_id"] for i in res.json()["items"]]

    # x0: two positives (0.845); x2: two negatives (0.845); x1, x3: a split (0.5).
    assert ids(question="sentiment", label="positive", min_confidence=0.8) == ["x0"]
    assert ids(question="sentiment", label="negative", min_confidence=0.8) == ["x2"]
    assert ids(question="sentiment", max_confidence=0.6) == ["x1", "x3"]
    # At max overlap 2 every item is below the 0.95 target: all four await review.
    assert ids(status="needs_review") == ["x0", "x1", "x2", "x3"]
    assert ids(status="needs_review", question="sentiment", min_confidence=0.8) == ["x0", "x2"]
    assert ids(question="sentiment", disagreement=True) == ["x1", "x3"]
    bad = manager.get(f"{API}/{pid}/items", params={"label": "positive"})
    assert bad.status_code == 422 and bad.json()["code"] == "missing_question"
    detail = item_detail(factory, project, manager.get(f"{API}/{pid}/items").json()["items"][1]["id"])
    assert detail["consensus"][0]["agreement"] == 0.5
    # The re-fit keeps the agreement (vectorized over items) and so does a review.
    assert manager.post(f"{API}/{pid}/refit").status_code == 200
    assert ids(question="sentiment", disagreement=True) == ["x1", "x3"]
