"""A whole project's embedding, prediction or label-error audit pass as batches
(``goldlabel.models.scaleout``), in process or on Ray (``goldlabel models embed|predict|audit
PROJECT --ray [ADDRESS]``), for a project that outgrows the background worker's machine.

Each pass reads the project a batch at a time (keyset walks, so a 1M-item project never sits in
memory whole), hands the batches to the executor, and writes each result batch where the
background worker (services/models/) writes its own: vectors in ``embeddings`` (int8 + scale,
cached by content hash + model id, never embedded twice), the current version's predictions
through the same writer (the calibration slice and audits get none), the label issues of the
current version. The pass holds the project's model claim, as a worker pass does, so the
worker leaves the project alone meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from goldlabel.domain.errors import GoldlabelError, not_found
from goldlabel.models.embeddings import DEFAULT_MODEL_ID, Embedder, content_hash
from goldlabel.models.scaleout import (
    EmbedBatch,
    Executor,
    InProcess,
    MiniLMFiles,
    PredictBatch,
    RayExecutor,
    audit_pass,
)
from goldlabel.services.context import Context
from goldlabel.services.models.calibration import in_slice
from goldlabel.services.models.embedding import EMBED_BATCH, item_text
from goldlabel.services.models.predictions import PREDICT_BATCH, write_predictions
from goldlabel.services.models.settings import model_question, settings_of
from goldlabel.services.models.training import MAX_ISSUES, labeled_vectors
from goldlabel.services.models.worker import HOLD_MS
from goldlabel.storage import model_scaleout as scaleout_store
from goldlabel.storage import models as model_store
from goldlabel.storage import projects as project_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx

log = logging.getLogger(__name__)

PASSES = ("embed", "predict", "audit")


def executor_for(ray_address: str | None) -> Executor:
    """In process for None; on Ray otherwise: ``"local"`` starts a local Ray instance (or joins
    the cluster ``RAY_ADDRESS`` names), anything else is the address to join."""
    if ray_address is None:
        return InProcess()
    return RayExecutor(address=None if ray_address == "local" else ray_address)


def run_pass(ctx: Context, project_id: int, name: str, executor: Executor | None = None,
             embedder: Callable[[], Embedder] | None = None) -> dict[str, Any]:
    """Run one pass (``embed``, ``predict`` or ``audit``) over the project, holding its model
    claim; returns what it did (``busy``: another process holds the project)."""
    if name not in PASSES:
        raise ValueError(f"unknown pass {name!r}: one of {', '.join(PASSES)}")
    executor = executor or InProcess()
    now = now_ms()
    with write_tx(ctx.engine) as conn:
        project = project_store.fetch_project(conn, project_id)
        if project is None:
            raise not_found("project")
        state = model_store.ensure_state(conn, project_id, settings_of(None), now)
        if not model_store.claim_project(conn, project_id, now, HOLD_MS):
            return {"project_id": project_id, "pass": name, "busy": True}
    settings = settings_of(state)
    question = model_question(ctx.get_schema(project), settings)
    summary: dict[str, Any] = {"project_id": project_id, "pass": name,
                               "executor": type(executor).__name__}
    try:
        if question is None:
            raise GoldlabelError("the project model learns a choice question and this project has none",
                                 code="no_choice_question", status=409)
        if name == "embed":
            summary.update(_embed(ctx, project_id, executor, embedder or MiniLMFiles()))
        elif name == "predict":
            summary.update(_predict(ctx, project_id, question, settings, executor))
        else:
            summary.update(_audit(ctx, project_id, question, executor))
    finally:
        with write_tx(ctx.engine) as conn:
            model_store.update_state(conn, project_id, busy_until=None)
    return summary


def _hold(ctx: Context, project_id: int) -> None:
    """Extend the claim: a pass over a large project outlasts one HOLD_MS."""
    with write_tx(ctx.engine) as conn:
        model_store.update_state(conn, project_id, busy_until=now_ms() + HOLD_MS)


def _embed(ctx: Context, pid: int, executor: Executor, embedder: Callable[[], Embedder]) -> dict[str, Any]:
    """Items without a vector, EMBED_BATCH at a time in id order; texts whose content hash has a
    vector already (any project) reuse it, the others go to the executor, each text once."""
    model_id = getattr(embedder, "model_id", DEFAULT_MODEL_ID)
    pending: dict[str, list[int]] = {}  # content hash -> items waiting for its vector
    # embedded: items given a vector; texts: texts the embedder ran on; reused: items whose text had one
    counts = {"embedded": 0, "texts": 0, "reused": 0}

    def write(rows: list[tuple[int, str, bytes, float]]) -> None:
        now = now_ms()
        with write_tx(ctx.engine) as conn:
            model_store.insert_embeddings(conn, [
                {"item_id": i, "project_id": pid, "model_id": model_id, "content_hash": h, "vector": v,
                 "scale": s, "created_at": now} for i, h, v, s in rows])
            model_store.update_state(conn, pid, busy_until=now + HOLD_MS)

    def batches() -> Iterator[dict[str, np.ndarray]]:
        after = 0
        while True:
            with read_tx(ctx.engine) as conn:
                rows = scaleout_store.items_to_embed_after(conn, pid, after, EMBED_BATCH)
                if not rows:
                    return
                after = rows[-1][0]
                texts = [item_text(data) for _, data in rows]
                hashes = [content_hash(t) for t in texts]
                cached = model_store.cached_vectors(conn, model_id, hashes)
            if cached:
                reused = [(i, h, *cached[h]) for (i, _), h in zip(rows, hashes) if h in cached]
                write(reused)
                counts["embedded"] += len(reused)
                counts["reused"] += len(reused)
            # as the worker batches them: the batch's new texts, each once, in content-hash order
            todo = sorted({h: t for h, t in zip(hashes, texts) if h not in cached and h not in pending}.items())
            for (i, _), h in zip(rows, hashes):
                if h not in cached:
                    pending.setdefault(h, []).append(i)
            if todo:
                yield {"hash": np.array([h for h, _ in todo], dtype=object),
                       "text": np.array([t for _, t in todo], dtype=object)}

    for out in executor.map_batches(EmbedBatch(embedder), batches()):
        rows = [(i, h, v.tobytes(), s) for h, v, s in zip(out["hash"].tolist(), out["vector"], out["scale"].tolist())
                for i in pending.pop(str(h))]
        write(rows)
        counts["embedded"] += len(rows)
        counts["texts"] += len(out["hash"])
    # texts whose vector arrived before another item with the same text was read
    for h in list(pending):
        with read_tx(ctx.engine) as conn:
            cached = model_store.cached_vectors(conn, model_id, [h])
        reused = [(i, h, *cached[h]) for i in pending.pop(h)]
        write(reused)
        counts["embedded"] += len(reused)
        counts["reused"] += len(reused)
    return counts


def _predict(ctx: Context, pid: int, question: Any, settings: dict[str, Any], executor: Executor) -> dict[str, Any]:
    """The current version's predictions for the embedded items that have none of it yet (the
    items it trained on keep their out-of-fold predictions), PREDICT_BATCH at a time."""
    if settings["external_model"] and settings["external_role"] == "annotator":
        return {"skipped": "an external annotator's predictions are the project's model predictions"}
    with read_tx(ctx.engine) as conn:
        version = model_store.fetch_current_version(conn, pid, with_params=True)
    if version is None or not version.get("params"):
        return {"skipped": "no model version yet: train one first (goldlabel models train)"}
    name = model_store.MODEL_PREFIX + version["version"]

    def batches() -> Iterator[dict[str, np.ndarray]]:
        after = 0
        while True:
            with read_tx(ctx.engine) as conn:
                rows = scaleout_store.vectors_without_prediction(conn, pid, name, after, PREDICT_BATCH)
            if not rows:
                return
            after = rows[-1][0]
            # the calibration slice gets no model output (write_predictions): not even sent
            rows = [r for r, s in zip(rows, in_slice(ctx, [r[0] for r in rows], settings).tolist()) if not s]
            if rows:
                yield {"item_id": np.array([r[0] for r in rows], dtype=np.int64),
                       "vector": np.frombuffer(b"".join(r[1] for r in rows), dtype=np.int8).reshape(len(rows), -1),
                       "scale": np.array([r[2] for r in rows], dtype=np.float32)}

    done = 0
    for out in executor.map_batches(PredictBatch(bytes(version["params"])), batches()):
        write_predictions(ctx, pid, version, question, out["item_id"].tolist(), out["proba"], settings)
        _hold(ctx, pid)
        done += len(out["item_id"])
    return {"predicted": done, "version": version["version"]}


def _audit(ctx: Context, pid: int, question: Any, executor: Executor) -> dict[str, Any]:
    """The label-error audit over the human final labels, as a training run computes it (the
    same folds, the same out-of-fold probabilities, gold left out), written as the current
    version's label issues."""
    with read_tx(ctx.engine) as conn:
        version = model_store.fetch_current_version(conn, pid)
        labeled = model_store.fetch_training_labels(conn, pid, question.name)
    if version is None:
        return {"skipped": "no model version yet: train one first (goldlabel models train)"}
    labels = list(question.labels)
    ids, X, rows = labeled_vectors(ctx, question, labeled)  # the training run's rows and folds
    y = np.array([r[1] for r in rows], dtype=np.int64)
    weight = np.array([max(r[2], 0.05) for r in rows])
    human = np.array([r[3] != "gold" for r in rows], dtype=bool)  # gold is the truth it is checked against
    if human.sum() < 2 or len(np.unique(y[human])) < 2 or len(np.unique(y)) < 2:
        return {"skipped": "too few embedded human labels of two classes to audit", "labels": len(y)}
    result = audit_pass(X, y, len(labels), weight, executor, audited=human)
    issues, human_ids, human_y = result.issues, np.asarray(ids)[human], y[human]
    issue_rows = [{"item_id": int(human_ids[index]), "question": question.name, "rank": rank + 1,
                   "given": labels[int(human_y[index])], "suggested": labels[int(issues.suggested[index])],
                   "self_confidence": float(issues.self_confidence[index])}
                  for rank, index in enumerate(issues.indices[:MAX_ISSUES].tolist())]
    with write_tx(ctx.engine) as conn:
        model_store.replace_label_issues(conn, pid, version["id"], issue_rows)
    return {"labels": len(y), "label_issues": len(issues.indices), "version": version["version"]}
