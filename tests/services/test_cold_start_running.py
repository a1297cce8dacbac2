"""The pooled cold-start knowledge kept by running sums (services/cold_start.py, TODO #12):
the sums an answer moves equal those recomputed from the sampled answers, and answers this
process writes move the knowledge without reading the sample again, to what a fresh read gives."""

from __future__ import annotations

import numpy as np
import pytest

from goldlabel.domain.label_schema import LabelSchema
from goldlabel.quality.pooled import pairwise_agreement, rating_noise
from goldlabel.services import cold_start
from goldlabel.storage import projects as project_store
from goldlabel.storage.engine import read_tx

SCHEMA = {"questions": [
    {"name": "sentiment", "kind": "choice", "labels": ["positive", "negative", "neutral"]},
    {"name": "topics", "kind": "multi_choice", "labels": ["sport", "politics", "tech"]},
    {"name": "summary", "kind": "text"},
    {"name": "fluency", "kind": "rating", "min": 1, "max": 5},
]}


def _random_answer(rng: np.random.Generator) -> dict:
    value = {"sentiment": ["positive", "negative", "neutral"][rng.integers(3)],
             "topics": [t for t in ("sport", "politics", "tech") if rng.random() < 0.4],
             "summary": ["a cat", " A  Cat ", "a dog"][rng.integers(3)],
             "fluency": int(rng.integers(1, 6))}
    for name in list(value):
        if rng.random() < 0.15:  # a question left unanswered
            del value[name]
    return value


def _recomputed(answers: list[tuple[int, dict]]) -> dict:
    """The sums by the library's vectorized functions over the window's answers."""
    def coded(name, code):
        pairs = [(i, code(v[name])) for i, v in answers if name in v]
        return np.array([p[0] for p in pairs], np.int64), np.array([p[1] for p in pairs], np.int64)

    texts: dict[str, int] = {}
    out = {
        "sentiment": pairwise_agreement(*coded("sentiment", ["positive", "negative", "neutral"].index)),
        "summary": pairwise_agreement(*coded("summary", lambda s: texts.setdefault(
            " ".join(s.strip().casefold().split()), len(texts)))),
    }
    labels = ["sport", "politics", "tech"]
    rows = [(i, v["topics"]) for i, v in answers if "topics" in v]
    item = np.array([i * 3 + k for i, _ in rows for k in range(3)], np.int64)
    tick = np.array([int(label in ticked) for _, ticked in rows for label in labels], np.int64)
    out["topics"] = pairwise_agreement(item, tick)
    rated = [(i, v["fluency"]) for i, v in answers if "fluency" in v]
    out["fluency"] = rating_noise(np.array([r[0] for r in rated], np.int64), np.array([r[1] for r in rated], float))
    return out


def test_running_sums_equal_the_recomputed_ones():
    rng = np.random.default_rng(7)
    window = cold_start.Window(LabelSchema.parse(SCHEMA).questions, size=60)
    for step in range(400):  # past the size: answers leave the window as others arrive
        window.add(int(rng.integers(25)), _random_answer(rng))
        if step % 37 and step != 399:
            continue
        expected = _recomputed(list(window.answers))
        assert len(window.answers) == min(step + 1, 60)
        for name in ("sentiment", "summary", "topics"):
            sums = window.sums[name]
            assert (sums.agreeing, sums.pairs, sums.effective) == expected[name], (step, name)
        ss, dof = window.sums["fluency"].noise()
        assert dof == expected["fluency"][1]
        assert ss == pytest.approx(expected["fluency"][0], rel=1e-9, abs=1e-9)


def test_answers_move_the_knowledge_without_a_new_read(factory):
    annotators = [factory.make_user() for _ in range(3)]
    project = factory.make_project(annotators=annotators, overlap_min=3, overlap_max=3)
    factory.add_items(project, 12)
    pid = project["id"]
    clients = [factory.api_as(a) for a in annotators]
    rng = np.random.default_rng(3)

    def answer(client) -> None:
        lease = client.post(f"/api/v1/projects/{pid}/next").json()
        label = "positive" if rng.random() < 0.8 else "negative"
        res = client.post(f"/api/v1/projects/{pid}/answers",
                          json={"lease_token": lease["token"], "value": {"sentiment": label}})
        assert res.status_code == 201, res.text

    for _ in range(8):  # 24 answers: past SMALL_SAMPLE, so the knowledge is kept, not re-read
        for client in clients:
            answer(client)
    entry = factory.ctx.pooled[pid]
    assert len(entry.window.answers) >= cold_start.SMALL_SAMPLE
    before = dict(entry.accuracy)
    for _ in range(3):  # 9 more: the old rule read the sample again after 10% of it in decisions
        for client in clients:
            answer(client)
    assert factory.ctx.pooled[pid] is entry  # no read since
    assert len(entry.window.answers) == 33
    with read_tx(factory.ctx.engine) as conn:
        fresh = cold_start.compute(factory.ctx, conn, project_store.fetch_project(conn, pid))
    assert entry.accuracy == pytest.approx(fresh.accuracy)
    assert entry.accuracy != before  # the 9 answers moved it
