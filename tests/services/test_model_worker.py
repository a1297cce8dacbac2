"""The project model inside the platform, on SQLite and PostgreSQL, with the real MiniLM embedder:
embeddings (never twice), training on human finals, pre-labels in the workspace, auto-labeling
with audits that switch it off, and a failing embedder that leaves the items with the humans."""

from __future__ import annotations

import sqlalchemy as sa

from goldlabel.demo import _reviews_with_truth
from goldlabel.models import MiniLMEmbedder
from goldlabel.services import models as model_service
from goldlabel.services import review as review_service
from goldlabel.services.context import Context
from goldlabel.services.item_refs import decode_item
from goldlabel.services.model_worker import ModelWorker
from goldlabel.services.queue import lease as lease_service
from goldlabel.services.queue import submit as submit_service
from goldlabel.storage.engine import read_tx
from goldlabel.storage.tables import consensus, embeddings, events, items, predictions

SCHEMA = {"questions": [{"name": "sentiment", "kind": "choice", "labels": ["positive", "negative", "neutral"]}]}


class CountingEmbedder:
    """The real MiniLM embedder, counting the texts it is asked to embed."""

    def __init__(self) -> None:
        self.inner = MiniLMEmbedder(threads=1)
        self.model_id, self.dim = self.inner.model_id, self.inner.dim
        self.texts = 0

    def embed(self, texts):
        self.texts += len(texts)
        return self.inner.embed(texts)


class BrokenEmbedder:
    model_id, dim = "broken", 384

    def embed(self, texts):
        raise RuntimeError("model file is corrupt")


def _project(factory, n: int, *, duplicates: int = 0, **spec):
    reviews = _reviews_with_truth(n, 7, 0)
    rows = [{"external_id": row["external_id"], "data": row["data"]} for row, _ in reviews]
    rows += [{"external_id": f"dup-{i}", "data": dict(rows[i]["data"])} for i in range(duplicates)]
    project = factory.make_project(schema=SCHEMA, **spec)
    res = factory.api_as(project["manager"]).post(f"/api/v1/projects/{project['id']}/items", json=rows)
    assert res.status_code in (200, 201), res.text
    with read_tx(factory.ctx.engine) as conn:
        ids = dict(conn.execute(sa.select(items.c.external_id, items.c.id)
                                .where(items.c.project_id == project["id"])).all())
    truth = {ids[row["external_id"]]: t for row, t in reviews}
    return project, truth


def _all_ids(ctx, pid: int) -> list[int]:
    with read_tx(ctx.engine) as conn:
        return [r[0] for r in conn.execute(sa.select(items.c.id).where(items.c.project_id == pid))]


def _label(factory, project, truth, item_ids, wrong: bool = False) -> None:
    """A reviewer's final label on each item (the truth, or a wrong one)."""
    other = {"positive": "negative", "negative": "neutral", "neutral": "positive"}
    for item_id in item_ids:
        value = other[truth[item_id]] if wrong else truth[item_id]
        review_service.review_item(factory.ctx, project["manager"], project["id"], item_id, "fix",
                                   {"sentiment": value})


def test_worker_embeds_once_trains_and_prelabels(factory, ctx):
    embedder = CountingEmbedder()
    ctx.model_embedder_factory = lambda: embedder
    project, truth = _project(factory, 150, duplicates=5,
                              settings={"show_predictions": True, "target_confidence": 0.9})
    pid = project["id"]
    ids = sorted(truth)
    _label(factory, project, truth, ids[:120])
    [summary] = ModelWorker(ctx, 1.0).run_once()  # min_labels 20, retrain_every 50: due
    assert summary["embedded"] == 155
    assert embedder.texts == 150  # the 5 duplicate texts reuse their vectors
    trained = summary["trained"]
    assert trained["labels"] == 120 and trained["accuracy"] >= 0.7, trained
    st = model_service.status(ctx, project["manager"], pid)
    assert st["current_version"]["metrics"]["ece"] is not None
    assert st["embeddings"] == {"embedded": 155, "waiting": 0}
    assert st["last_error"] is None
    with read_tx(ctx.engine) as conn:
        preds = conn.execute(sa.select(predictions.c.item_id, predictions.c.value, predictions.c.score)
                             .where(predictions.c.project_id == pid,
                                    predictions.c.model_version.like("goldlabel:%"))).all()
        kinds = [r[0] for r in conn.execute(sa.select(events.c.kind).where(events.c.project_id == pid))]
    # every embedded item has the model's prediction, except the calibration slice's (no model
    # output where the human labels judge the model)
    every = sorted(truth) + sorted(set(_all_ids(ctx, pid)) - set(truth))
    sliced = {i for i, s in zip(every, model_service.in_slice(ctx, every, st["settings"]).tolist()) if s}
    assert 0 < len(sliced) < 30  # 5% by default
    assert {i for i, _, _ in preds} == set(every) - sliced
    held_out = [(i, v) for i, v, _ in preds if i in truth and i not in set(ids[:120])]
    assert sum(v["sentiment"] == truth[i] for i, v in held_out) / len(held_out) >= 0.7
    assert "model.trained" in kinds

    # a second pass embeds nothing and does not retrain (no new labels)
    [again] = ModelWorker(ctx, 1.0).run_once()
    assert again["embedded"] == 0 and "trained" not in again
    assert embedder.texts == 150

    # the workspace pre-fills the model's label, with its version and score
    annotator = factory.make_user()
    factory.api_as(project["manager"]).put(f"/api/v1/projects/{pid}/members",
                                           json={"user_id": annotator.id, "role": "annotator"})
    shown = next(i for i in ids[120:] if i not in sliced)  # served first: a slice item has no pre-label
    res = factory.api_as(project["manager"]).post(f"/api/v1/projects/{pid}/items/bulk", json={
        "action": "priority", "priority": 9, "item_ids": [shown]})
    assert res.status_code == 200, res.text
    lease = lease_service.lease_next(ctx, annotator, pid)
    assert decode_item(ctx, pid, annotator.id, lease["item"]["id"]) == shown
    [pre] = [p for p in lease["item"]["predictions"] if p["model_version"].startswith("goldlabel:")]
    assert pre["model_version"] == "goldlabel:" + trained["version"]
    assert set(pre["value"]) == {"sentiment"} and 0 < pre["score"] <= 1


def test_unlabeled_items_wait_for_a_model_or_active_learning(factory, ctx):
    """Before a model is due and without active learning nothing reads an unlabeled item's
    vector, so the worker embeds none (on a serving process's cores, a new project's every item
    at once halved the annotate loop); active learning's cold start needs them: then it does."""
    embedder = CountingEmbedder()
    ctx.model_embedder_factory = lambda: embedder
    project, truth = _project(factory, 40)
    pid = project["id"]
    _label(factory, project, truth, sorted(truth)[:5])  # below min_labels (20): no model is due
    [summary] = ModelWorker(ctx, 1.0).run_once()
    assert summary["embedded"] == 0 and embedder.texts == 0 and "trained" not in summary
    model_service.update_settings(ctx, project["manager"], pid, {"active_learning": "uncertainty_diversity"})
    [summary] = ModelWorker(ctx, 1.0).run_once()
    assert summary["embedded"] == 40 and embedder.texts == 40


def test_auto_labeling_with_audits_switches_itself_off(factory, ctx):
    ctx.model_embedder_factory = lambda: MiniLMEmbedder(threads=1)
    project, truth = _project(factory, 300, settings={"target_confidence": 0.9})
    pid, manager = project["id"], project["manager"]
    ids = sorted(truth)
    _label(factory, project, truth, ids[:200])
    client = factory.api_as(manager)
    res = client.patch(f"/api/v1/projects/{pid}/models/settings",
                       json={"auto_label": True, "target": 0.8, "audit_fraction": 0.5,
                             "calibration_fraction": 0.5})
    assert res.status_code == 200, res.text
    res = client.post(f"/api/v1/projects/{pid}/models/train")
    assert res.status_code == 200, res.text
    body = res.json()
    threshold = body["status"]["auto_label"]["threshold"]
    assert threshold["threshold"] is not None, threshold
    assert threshold["upper_error"] <= 0.2
    auto = body["status"]["auto_label"]
    assert auto["auto_labeled"] > 0 and auto["audits"] > 0
    with read_tx(ctx.engine) as conn:
        finals = conn.execute(sa.select(items.c.id, consensus.c.value, consensus.c.source)
                              .join(consensus, consensus.c.item_id == items.c.id)
                              .where(items.c.project_id == pid, consensus.c.source == "auto")).all()
        audit_ids = [r[0] for r in conn.execute(sa.text(
            "SELECT item_id FROM auto_labels WHERE project_id = :p AND audit"), {"p": pid})]
        audit_status = {r[0] for r in conn.execute(sa.select(items.c.status).where(items.c.id.in_(audit_ids)))}
    assert len(finals) == auto["auto_labeled"]
    assert all(i not in set(ids[:200]) for i, _, _ in finals)
    assert audit_status == {"open"}  # audits stay with the humans
    # the humans' audits disagree with the model: the bound falls below the target, auto-labeling stops
    _label(factory, project, truth, audit_ids, wrong=True)
    model_service.process_project(ctx, pid)
    st = client.get(f"/api/v1/projects/{pid}/models").json()
    assert st["auto_label"]["on"] is False
    assert "below the target" in st["auto_label"]["off_reason"]
    assert st["auto_label"]["audited"] == len(audit_ids)
    assert st["auto_label"]["audit_accuracy"] < 0.5
    with read_tx(ctx.engine) as conn:
        kinds = {r[0] for r in conn.execute(sa.select(events.c.kind).where(events.c.project_id == pid))}
    assert {"model.trained", "model.auto_label_off", "item.final"} <= kinds


def test_label_error_audit_ranks_wrong_labels_and_sends_them_to_review(factory, ctx):
    ctx.model_embedder_factory = lambda: MiniLMEmbedder(threads=1)
    annotator = factory.make_user()
    # one answer makes an item final: its label comes from the answers (source consensus)
    project, truth = _project(factory, 160, overlap_min=1, overlap_max=1, annotators=[annotator],
                              settings={"single_answer": "final"})
    pid = project["id"]
    other = {"positive": "negative", "negative": "neutral", "neutral": "positive"}
    wrong = set(sorted(truth)[:8])
    while (lease := lease_service.lease_next(ctx, annotator, pid)) is not None:
        item_id = decode_item(ctx, pid, annotator.id, lease["item"]["id"])
        label = other[truth[item_id]] if item_id in wrong else truth[item_id]
        submit_service.submit_answer(ctx, annotator, pid, lease["token"], {"sentiment": label})
    model_service.request_training(ctx, project["manager"], pid)
    client = factory.api_as(project["manager"])
    res = client.get(f"/api/v1/projects/{pid}/models/audit", params={"limit": 20})
    assert res.status_code == 200, res.text
    issues = res.json()
    assert [r["rank"] for r in issues] == list(range(1, len(issues) + 1))
    flagged = [r["item_id"] for r in issues]
    # the synthetic reviews include mixed ones whose "truth" is arguable, so the model disputes
    # some right labels too; the planted errors must be flagged far more often than the rest
    everything = {r["item_id"] for r in client.get(f"/api/v1/projects/{pid}/models/audit",
                                                    params={"limit": 500}).json()}
    planted_rate = len(everything & wrong) / len(wrong)
    clean_rate = len(everything - wrong) / (len(truth) - len(wrong))
    assert len(everything & wrong) >= 3 and planted_rate >= 2 * clean_rate, (planted_rate, clean_rate)
    assert all(r["suggested"] != r["given"] and r["source"] == "consensus" for r in issues)

    unflagged = next(i for i in truth if i not in everything)
    res = client.post(f"/api/v1/projects/{pid}/models/audit/review", json={"item_ids": [flagged[0], unflagged]})
    assert res.status_code == 200, res.text
    assert res.json() == {"sent": [flagged[0]], "skipped": [unflagged]}
    with read_tx(ctx.engine) as conn:
        status = conn.execute(sa.select(items.c.status).where(items.c.id == flagged[0])).scalar_one()
        [payload] = [p for p in conn.execute(sa.select(events.c.payload).where(
            events.c.project_id == pid,
            events.c.kind == "item.needs_review")).scalars() if p.get("by") == "model_audit"]
    assert status == "needs_review"
    assert payload["item_id"] == flagged[0] and "the model suggests" in payload["reason"]
    again = client.post(f"/api/v1/projects/{pid}/models/audit/review", json={"item_ids": [flagged[0]]}).json()
    assert again == {"sent": [], "skipped": [flagged[0]]}  # no longer final


def test_a_broken_embedder_is_recorded_and_the_queue_goes_on(factory, ctx):
    ctx.model_embedder_factory = BrokenEmbedder
    annotator = factory.make_user()
    project, _ = _project(factory, 10)
    pid = project["id"]
    factory.api_as(project["manager"]).put(f"/api/v1/projects/{pid}/members",
                                           json={"user_id": annotator.id, "role": "annotator"})
    # active learning's cold start reads every item's vector: the pass embeds them (and fails)
    model_service.update_settings(ctx, project["manager"], pid, {"active_learning": "uncertainty_diversity"})
    summary = model_service.process_project(ctx, pid)
    assert "corrupt" in summary["error"]
    res = factory.api_as(project["manager"]).post(f"/api/v1/projects/{pid}/models/train")
    assert res.status_code == 409 and res.json()["code"] == "model_failed"
    st = factory.api_as(project["manager"]).get(f"/api/v1/projects/{pid}/models").json()
    assert "corrupt" in st["last_error"] and st["versions"] == []
    with read_tx(ctx.engine) as conn:
        n_embedded = conn.execute(sa.select(sa.func.count()).select_from(embeddings)).scalar_one()
        failed = conn.execute(sa.select(sa.func.count()).select_from(events)
                              .where(events.c.kind == "model.failed")).scalar_one()
    assert n_embedded == 0 and failed == 1  # one event per new error, not per pass
    lease = lease_service.lease_next(ctx, annotator, pid)  # the humans' queue never waits
    assert lease is not None


def test_model_routes_are_scoped_and_validated(factory):
    project, _ = _project(factory, 5)
    pid = project["id"]
    outsider = factory.api_as(factory.make_user("manager"))
    for method, path in (("GET", "models"), ("GET", "models/audit"), ("POST", "models/train")):
        assert outsider.request(method, f"/api/v1/projects/{pid}/{path}").status_code == 404
    assert outsider.patch(f"/api/v1/projects/{pid}/models/settings", json={"auto_label": True}).status_code == 404
    manager = factory.api_as(project["manager"])
    res = manager.patch(f"/api/v1/projects/{pid}/models/settings", json={"target": 1.5})
    assert res.status_code == 422
    res = manager.patch(f"/api/v1/projects/{pid}/models/settings", json={"question": "nope"})
    assert res.status_code == 422 and "no_choice_question" in res.text
    res = manager.get(f"/api/v1/projects/{pid}/models/audit", params={"limit": 0})
    assert res.status_code == 422


def test_the_worker_thread_trains_in_the_background_and_stops(factory, ctx):
    import time

    ctx.model_embedder_factory = lambda: MiniLMEmbedder(threads=1)
    project, truth = _project(factory, 40)
    pid = project["id"]
    _label(factory, project, truth, sorted(truth)[:30])
    off = Context(settings=ctx.settings.model_copy(update={"model_interval_s": 0}), engine=ctx.engine)
    assert ModelWorker.start_if(off) is None  # 0 turns the worker off
    worker = ModelWorker(ctx, 0.2)
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while model_service.status(ctx, project["manager"], pid)["current_version"] is None:
            assert time.monotonic() < deadline, "the worker trained nothing in 120 s"
            time.sleep(0.2)
    finally:
        worker.stop()
    assert not worker._thread.is_alive()
    st = model_service.status(ctx, project["manager"], pid)
    assert st["embeddings"]["waiting"] == 0 and st["current_version"]["labels"] == 30
