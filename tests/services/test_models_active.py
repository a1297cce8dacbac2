"""Active-learning queue order on SQLite and PostgreSQL: the model worker's pass writes queue
priorities (a diverse cold start before any model, then uncertainty of the combined posterior
with diversity in embedding space), the lease serves by them, and "off" leaves a manager's
priorities alone. Embeddings are stored as the worker stores them (three tight clusters)."""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa

from goldlabel.models import MiniLMEmbedder
from goldlabel.services import models as model_service
from goldlabel.services.queue import lease as lease_service
from goldlabel.storage import models as model_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx
from goldlabel.storage.tables import items

SCHEMA = {"questions": [{"name": "label", "kind": "choice", "labels": ["yes", "no"]}]}
PER = 15


def _project(factory, ctx):
    ctx.model_embedder_factory = lambda: MiniLMEmbedder(threads=1)
    annotator = factory.make_user()
    project = factory.make_project(schema=SCHEMA, annotators=[annotator], overlap_min=1, overlap_max=3)
    pid = project["id"]
    factory.add_items(project, 3 * PER)
    with read_tx(ctx.engine) as conn:
        ids = [r[0] for r in conn.execute(sa.select(items.c.id).where(items.c.project_id == pid).order_by(items.c.id))]
    rng = np.random.default_rng(0)
    middle = rng.normal(size=(3, 16)) * 10
    cluster = {i: k // PER for k, i in enumerate(ids)}
    vectors = middle[[cluster[i] for i in ids]] + rng.normal(scale=0.1, size=(len(ids), 16))
    blobs, scales = model_store.encode_vectors(vectors)
    now = now_ms()
    with write_tx(ctx.engine) as conn:
        model_store.insert_embeddings(conn, [
            {"item_id": i, "project_id": pid, "model_id": "test", "content_hash": f"h{i}", "vector": b,
             "scale": float(s), "created_at": now} for i, b, s in zip(ids, blobs, scales.tolist())])
    return project, annotator, ids, cluster


def _priorities(ctx, pid: int) -> dict[int, int]:
    with read_tx(ctx.engine) as conn:
        return dict(conn.execute(sa.select(items.c.id, items.c.priority).where(items.c.project_id == pid)).all())


def test_worker_orders_the_queue_by_uncertainty_and_diversity(factory, ctx):
    project, annotator, ids, cluster = _project(factory, ctx)
    pid, api = project["id"], factory.api_as(project["manager"])
    res = api.patch(f"/api/v1/projects/{pid}/models/settings",
                    json={"active_learning": "uncertainty_diversity", "active_batch": 3,
                          "calibration_fraction": 0})  # no slice: every item is ranked by the policy
    assert res.status_code == 200, res.text
    assert res.json()["settings"]["active_learning"] == "uncertainty_diversity"

    # before any model: a diverse cold start, one item of each cluster first
    summary = model_service.process_project(ctx, pid)
    assert summary["prioritized"] == 3 * PER, summary  # all written: the policy ranks below zero
    assert max(_priorities(ctx, pid).values()) == -1
    prio = _priorities(ctx, pid)
    first = sorted(prio, key=lambda i: -prio[i])[:3]
    assert sorted(cluster[i] for i in first) == [0, 1, 2]
    lease = lease_service.lease_next(ctx, annotator, pid)
    assert factory.item_id(annotator, pid, lease["item"]["id"]) == first[0]  # served by the priorities

    # a model: sure of cluster 2, unsure of cluster 0
    now = now_ms()
    scores = {0: 0.52, 1: 0.8, 2: 0.99}
    with write_tx(ctx.engine) as conn:
        model_store.insert_version(conn, project_id=pid, question="label", version="v1", embedder="test",
                                   status="ready", labels=30, created_at=now)
        model_store.replace_model_predictions(conn, pid, [
            {"item_id": i, "model_version": model_store.MODEL_PREFIX + "v1", "value": {"label": "yes"},
             "score": scores[cluster[i]], "created_at": now} for i in ids])
    model_service.process_project(ctx, pid)
    prio = _priorities(ctx, pid)
    top = sorted(prio, key=lambda i: -prio[i])[:3]
    assert cluster[top[0]] == 0 and len({cluster[i] for i in top}) >= 2  # most uncertain, then spread
    rest = [i for i in ids if i not in top and i != lease["item"]["id"]]
    assert min(prio[i] for i in rest if cluster[i] == 0) > max(prio[i] for i in rest if cluster[i] == 1)
    assert min(prio[i] for i in rest if cluster[i] == 1) > max(prio[i] for i in rest if cluster[i] == 2)


def test_active_learning_off_keeps_the_managers_priorities(factory, ctx):
    project, _annotator, ids, _cluster = _project(factory, ctx)
    pid, api = project["id"], factory.api_as(project["manager"])
    assert model_service.status(ctx, project["manager"], pid)["settings"]["active_learning"] == "off"  # default
    res = api.post(f"/api/v1/projects/{pid}/items/bulk", json={"action": "priority", "priority": 7,
                                                                  "item_ids": ids[:5]})
    assert res.status_code == 200, res.text
    before = _priorities(ctx, pid)
    summary = model_service.process_project(ctx, pid)
    assert "prioritized" not in summary
    assert _priorities(ctx, pid) == before
    res = api.patch(f"/api/v1/projects/{pid}/models/settings", json={"active_learning": "sideways"})
    assert res.status_code == 422 and res.json()["code"] == "validation_failed"
    # auto-labeling's bound needs human labels the model did not choose: the calibration slice
    res = api.patch(f"/api/v1/projects/{pid}/models/settings",
                    json={"active_learning": "uncertainty", "auto_label": True, "calibration_fraction": 0})
    assert res.status_code == 422
    assert res.json()["errors"][0]["code"] == "auto_label_needs_calibration"
