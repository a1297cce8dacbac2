"""Gold for every question kind, through the API on both backends: a gold answer is counted
and scored by its kind's rule, failing qualification or gold accuracy suspends, right answers
(near misses within the thresholds included) pass, and the annotator learns nothing of it."""

from __future__ import annotations

import pytest

API = "/api/v1/projects"
TEXT = "Ada Lovelace met Babbage at Cambridge"
DATA = {"text": TEXT, "image": "https://example.test/1.png"}

# kind -> (question, gold, a right answer, a wrong answer). Right answers are near misses where
# the kind has a threshold: a span one character short (IoU 11/12), a box shifted by 2% of the
# image (IoU ~0.83), one adjacent swap in four candidates (tau 2/3), a different case and a
# missing full stop (similarity 0.96).
KINDS = {
    "choice": ({"kind": "choice", "labels": ["pos", "neg"]}, "pos", "pos", "neg"),
    "multi_choice": ({"kind": "multi_choice", "labels": ["sport", "politics", "tech"]},
                     ["sport", "tech"], ["sport", "tech"], ["politics"]),
    "rating": ({"kind": "rating", "min": 1, "max": 5}, 5, 5, 2),
    "spans": ({"kind": "spans", "labels": ["PER", "ORG"]},
              [{"start": 0, "end": 12, "label": "PER"}, {"start": 17, "end": 24, "label": "PER"}],
              [{"start": 0, "end": 11, "label": "PER"}, {"start": 17, "end": 24, "label": "PER"}],
              [{"start": 28, "end": 37, "label": "ORG"}]),
    "boxes": ({"kind": "boxes", "labels": ["car", "person"]},
              [{"x": 0.1, "y": 0.2, "w": 0.3, "h": 0.4, "label": "car"}],
              [{"x": 0.12, "y": 0.2, "w": 0.3, "h": 0.4, "label": "car"}],
              [{"x": 0.6, "y": 0.6, "w": 0.3, "h": 0.3, "label": "car"}]),
    "ranking": ({"kind": "ranking", "candidates": ["a", "b", "c", "d"]},
                ["a", "b", "c", "d"], ["b", "a", "c", "d"], ["d", "c", "b", "a"]),
    "text": ({"kind": "text"}, "Ada met Babbage in Cambridge.", "ada met Babbage in Cambridge", "a cat"),
}


def make_gold_project(factory, kind: str, n_gold: int, settings: dict):
    question, gold, _, _ = KINDS[kind]
    good, bad = factory.make_user(), factory.make_user()
    project = factory.make_project(schema={"questions": [{"name": "q", **question}]}, annotators=[good, bad],
                                   overlap_min=1, overlap_max=2, settings=settings)
    rows = [{"external_id": f"g{i}", "data": DATA, "gold": {"q": gold}} for i in range(n_gold)]
    rows += [{"external_id": f"n{i}", "data": DATA} for i in range(4)]  # gold is served beside real work
    res = factory.api_as(project["manager"]).post(f"{API}/{project['id']}/items", json=rows)
    assert res.status_code == 201, res.text
    return project, good, bad


def answer_gold(factory, annotator, pid: int, value, n: int) -> list[dict]:
    """Answer the next ``n`` items (all gold: qualification or gold_rate 1 serves gold first)."""
    api = factory.api_as(annotator)
    seen = []
    for _ in range(n):
        lease = api.post(f"{API}/{pid}/next")
        assert lease.status_code == 200, lease.text
        body = lease.json()
        res = api.post(f"{API}/{pid}/answers", json={"lease_token": body["token"], "value": {"q": value}})
        assert res.status_code == 201, res.text
        seen.append(body)
        # Q8: nothing the annotator receives tells gold apart or says how the answer scored.
        for text in (lease.text, res.text):
            assert "gold" not in text and "score" not in text, text
    return seen


def standing(factory, project) -> dict[int, dict]:
    rows = factory.api_as(project["manager"]).get(f"{API}/{project['id']}/annotators").json()
    return {r["annotator_id"]: r for r in rows}


@pytest.mark.parametrize("kind", list(KINDS))
def test_qualification_scores_every_kind(factory, kind):
    project, good, bad = make_gold_project(factory, kind, 2, {"qualification_gold": 2})
    pid = project["id"]
    _, _, right, wrong = KINDS[kind]
    answer_gold(factory, good, pid, right, 2)
    answer_gold(factory, bad, pid, wrong, 2)
    rows = standing(factory, project)
    assert (rows[good.id]["status"], rows[good.id]["n_gold"], rows[good.id]["n_gold_correct"]) == ("active", 2, 2)
    assert (rows[bad.id]["status"], rows[bad.id]["n_gold"], rows[bad.id]["n_gold_correct"]) == ("suspended", 2, 0)
    assert "qualification failed: 0/2" in rows[bad.id]["evidence"]["reason"]
    counts = rows[bad.id]["evidence"]["gold_by_question"]["q"]
    assert (counts["n"], counts["passed"]) == (2, 0) and counts["score_sum"] < 2 * 0.8
    assert rows[good.id]["evidence"]["gold_by_question"]["q"]["score_sum"] > 2 * 0.8
    assert rows[good.id]["skills"]["q"]["method"] == "gold"
    blocked = factory.api_as(bad).post(f"{API}/{pid}/next")
    assert blocked.status_code == 403 and blocked.json()["code"] == "annotator_suspended"
    assert factory.api_as(good).post(f"{API}/{pid}/next").status_code == 200


@pytest.mark.parametrize("kind", list(KINDS))
def test_low_gold_accuracy_suspends_every_kind(factory, kind):
    project, good, bad = make_gold_project(factory, kind, 5, {"gold_rate": 1.0, "suspend_below": 0.6})
    pid = project["id"]
    _, _, right, wrong = KINDS[kind]
    answer_gold(factory, bad, pid, wrong, 5)
    answer_gold(factory, good, pid, right, 5)
    rows = standing(factory, project)
    assert (rows[bad.id]["status"], rows[bad.id]["n_gold"], rows[bad.id]["n_gold_correct"]) == ("suspended", 5, 0)
    assert rows[bad.id]["evidence"]["interval"][1] < 0.6
    assert "estimated accuracy" in rows[bad.id]["evidence"]["reason"]
    assert (rows[good.id]["status"], rows[good.id]["n_gold"], rows[good.id]["n_gold_correct"]) == ("active", 5, 5)


def test_thresholds_come_from_the_project_settings(factory):
    """The same rating answer (4 against gold 5) fails by default and passes within one point."""
    strict, _, ann = make_gold_project(factory, "rating", 1, {"qualification_gold": 1})
    answer_gold(factory, ann, strict["id"], 4, 1)
    assert standing(factory, strict)[ann.id]["status"] == "suspended"
    lenient, _, ann = make_gold_project(factory, "rating", 1,
                                        {"qualification_gold": 1, "gold_rating_tolerance": 1})
    answer_gold(factory, ann, lenient["id"], 4, 1)
    row = standing(factory, lenient)[ann.id]
    assert (row["status"], row["n_gold_correct"]) == ("active", 1)
    manager = factory.api_as(lenient["manager"])
    res = manager.patch(f"{API}/{lenient['id']}", json={"settings": {"gold_text_min_similarity": 1.5}})
    assert res.status_code == 422 and res.json()["errors"][0]["code"] == "invalid_settings"
