"""Pre-label outcomes on SQLite and PostgreSQL: the model worker records, per answer, whether the
model's pre-label was shown and kept unchanged, and on gold items whether the answer and the
pre-label were right; the status shows per annotator the keep rate, gold accuracy with and
without a pre-label, and how often a wrong pre-label was followed (anchoring)."""

from __future__ import annotations

import sqlalchemy as sa

from goldlabel.models import MiniLMEmbedder
from goldlabel.services import models as model_service
from goldlabel.services.models.settings import ensure_state
from goldlabel.services.queue import lease as lease_service
from goldlabel.services.queue import submit as submit_service
from goldlabel.storage import models as model_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx
from goldlabel.storage.tables import items

SCHEMA = {"questions": [{"name": "label", "kind": "choice", "labels": ["yes", "no"]}]}


def test_keep_rate_and_anchoring_per_annotator(factory, ctx):
    ctx.model_embedder_factory = lambda: MiniLMEmbedder(threads=1)
    yes_sayer, no_sayer = factory.make_user(), factory.make_user()
    project = factory.make_project(schema=SCHEMA, annotators=[yes_sayer, no_sayer], overlap_min=2, overlap_max=2,
                                   settings={"show_predictions": True, "qualification_gold": 3,
                                             "qualification_accuracy": 0.0})
    pid = project["id"]
    rows = [{"external_id": "g1", "data": {"text": "g1"}, "gold": {"label": "yes"}},
            {"external_id": "g2", "data": {"text": "g2"}, "gold": {"label": "yes"}},
            {"external_id": "g3", "data": {"text": "g3"}, "gold": {"label": "no"}},
            {"external_id": "n1", "data": {"text": "n1"}},
            {"external_id": "n2", "data": {"text": "n2"}},
            {"external_id": "n3", "data": {"text": "n3"}}]
    res = factory.api_as(project["manager"]).post(f"/api/v1/projects/{pid}/items", json=rows)
    assert res.status_code in (200, 201), res.text
    with read_tx(ctx.engine) as conn:
        ids = dict(conn.execute(sa.select(items.c.external_id, items.c.id).where(items.c.project_id == pid)).all())
    now = now_ms() - 1000  # written before the answers
    with write_tx(ctx.engine) as conn:
        ensure_state(conn, pid, now)
        model_store.replace_model_predictions(conn, pid, [
            {"item_id": ids[e], "model_version": model_store.MODEL_PREFIX + "v1", "value": {"label": v},
             "score": 0.9, "created_at": now}
            for e, v in (("g1", "yes"), ("g2", "no"), ("n1", "yes"), ("n2", "no"))])
    for annotator, label in ((yes_sayer, "yes"), (no_sayer, "no")):
        for _ in range(6):
            lease = lease_service.lease_next(ctx, annotator, pid)
            shown = factory.item_id(annotator, pid, lease["item"]["id"]) in {ids[e] for e in ("g1", "g2", "n1", "n2")}
            assert bool(lease["item"]["predictions"]) == shown
            submit_service.submit_answer(ctx, annotator, pid, lease["token"], {"label": label})
    summary = model_service.process_project(ctx, pid)
    assert summary["prelabels_recorded"] == 12, summary
    assert model_service.process_project(ctx, pid)["prelabels_recorded"] == 0  # each answer once
    stats = {r["annotator_id"]: r for r in model_service.status(ctx, project["manager"], pid)["prelabels"]}
    yes, no = stats[yes_sayer.id], stats[no_sayer.id]
    assert (yes["shown"], yes["kept"], yes["keep_rate"]) == (4, 2, 0.5)
    gold = (yes["gold_shown"], yes["gold_accuracy_shown"], yes["gold_hidden"], yes["gold_accuracy_hidden"])
    assert gold == (2, 1.0, 1, 0.0)
    assert (yes["wrong_prelabels"], yes["followed_wrong"], yes["follow_wrong_rate"]) == (1, 0, 0.0)
    assert (no["gold_accuracy_shown"], no["gold_accuracy_hidden"], no["follow_wrong_rate"]) == (0.0, 1.0, 1.0)
    # reviewers see it; annotators do not
    res = factory.api_as(yes_sayer).get(f"/api/v1/projects/{pid}/models")
    assert res.status_code in (403, 404)
