"""The project model's background worker: a thread of the serving process that, about every
``model_interval_s``, runs one pass (:func:`process_project`) over each project with a choice
question. Like the re-fit scheduler it runs at a lower CPU priority than the annotate loop, and
a project one process works on is left alone by the others (``model_state.busy_until``).

One pass over a project (:func:`process_project`, run by this worker and by
``POST /projects/{id}/models/train``):

1. embed items that have no embedding yet, in batches (labeled items first); a text whose
   content hash another item already has reuses that vector (never embedded twice);
2. predict the newly embedded items with the current model version (pre-labels);
3. retrain when asked to, or once ``retrain_every`` new final labels arrived: a cross-fitted
   logistic regression (``goldlabel.models.ProjectModel``); its out-of-fold probabilities give
   the held-out accuracy, the ECE, the auto-label threshold (Clopper-Pearson, fixed-sequence) and
   the label-error audit; then every embedded item gets a prediction of the new version;
4. with auto-labeling on, items above the threshold become final with consensus source
   ``auto``; a random ``audit_fraction`` of them stays with the humans instead;
5. audits the humans finished are compared with the model's label; when their bound says the
   auto-labels' accuracy is below the target, auto-labeling switches itself off (an event, a
   reason shown in the console).

A model or an embedder that fails records its error (console, API, event log) and leaves the
items with the humans: nothing here is on the annotate path, so the queue never waits for it.
The steps after embedding are ``services/model_training.py``; the manager's use cases and read
models (settings, status, training on demand) are ``services/model_management.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from goldlabel.services.background import BackgroundLoop
from goldlabel.services.context import Context
from goldlabel.services.model_settings import ensure_state, model_question, settings_of
from goldlabel.services.model_training import (
    ModelFailed,
    auto_label_confident,
    check_finished_audits,
    load_params,
    prioritize,
    record_prelabels,
    train_version,
    write_predictions,
)
from goldlabel.storage import consensus_events as records
from goldlabel.storage import models as model_store
from goldlabel.storage import projects as project_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx

log = logging.getLogger(__name__)

EMBED_BATCH = 256
HOLD_MS = 10 * 60 * 1000
# Nicer than the process, as the re-fit thread is (services/refit.py).
MODEL_NICE = 10


class ModelWorker(BackgroundLoop):
    thread_name = "goldlabel-models"
    failure = "model worker pass failed"
    nice = MODEL_NICE
    join_timeout_s = 30.0

    def __init__(self, ctx: Context, interval_s: float) -> None:
        super().__init__(interval_s)
        self.ctx = ctx

    @classmethod
    def start_if(cls, ctx: Context) -> ModelWorker | None:
        """A started worker, or None when ``model_interval_s`` is 0 (the worker is off)."""
        if ctx.settings.model_interval_s <= 0:
            return None
        worker = cls(ctx, ctx.settings.model_interval_s)
        worker.start()
        return worker

    def run_once(self) -> list[dict]:
        """One pass over every project whose schema has a choice question."""
        with read_tx(self.ctx.engine) as conn:
            projects = model_store.list_projects_for_models(conn)
        done = []
        for project in projects:
            if self.stopping:
                break
            if not self.ctx.get_schema(project).choice_questions():
                continue
            done.append(process_project(self.ctx, project["id"], embed_budget_s=max(1.0, self.interval_s * 2)))
        return done



# ---------------------------------------------------------------- embedder


def _default_embedder():
    from goldlabel.models import MiniLMEmbedder

    return MiniLMEmbedder(batch_size=64, threads=1)


_embed_lock = threading.Lock()


def embedder_for(ctx: Context):
    """The context's embedder, made on first use (``ctx.model_embedder_factory`` may name
    another: anything with ``model_id``, ``dim`` and ``embed(texts)``). A factory that fails
    raises here, every time, so the error is recorded where it happens."""
    with _embed_lock:
        embedder = ctx.__dict__.get("_model_embedder")
        if embedder is None:
            factory = ctx.__dict__.get("model_embedder_factory") or _default_embedder
            embedder = factory()
            ctx.__dict__["_model_embedder"] = embedder
        return embedder


def item_text(data: Any) -> str:
    """The text of an item that the embedder reads: ``data["text"]`` when there is one, else its
    string fields in order, joined."""
    if isinstance(data, str):
        return data
    if isinstance(data, dict):
        if isinstance(data.get("text"), str):
            return data["text"]
        return "\n".join(v for v in data.values() if isinstance(v, str))
    return ""


# ---------------------------------------------------------------- one pass over a project


def process_project(ctx: Context, project_id: int, *, train: bool = False, embed_budget_s: float = 20.0) -> dict:
    """One worker pass over the project (see the module docstring). Returns what it did;
    ``busy``: another process holds the project; ``error``: what failed (also recorded)."""
    now = now_ms()
    with write_tx(ctx.engine) as conn:
        project = project_store.fetch_project(conn, project_id)
        if project is None:
            return {"project_id": project_id, "skipped": "gone"}
        ensure_state(conn, project_id, now)
        if not model_store.claim_project(conn, project_id, now, HOLD_MS):
            return {"project_id": project_id, "busy": True}
    summary: dict[str, Any] = {"project_id": project_id}
    try:
        _process(ctx, project, summary, train, embed_budget_s)
    except ModelFailed as exc:
        summary["error"] = str(exc)
        _record_error(ctx, project_id, str(exc))
    finally:
        with write_tx(ctx.engine) as conn:
            model_store.update_state(conn, project_id, busy_until=None)
    return summary


def _record_error(ctx: Context, project_id: int, message: str) -> None:
    now = now_ms()
    message = message[:2000]
    with write_tx(ctx.engine) as conn:
        state = model_store.fetch_state(conn, project_id)
        if state and state.get("last_error") != message:  # one event per new error, not per pass
            records.insert_event(conn, project_id, "model.failed", {"error": message}, now)
        model_store.update_state(conn, project_id, last_error=message, last_error_at=now)


def _process(ctx: Context, project: dict, summary: dict, train: bool, embed_budget_s: float) -> None:
    pid = project["id"]
    with read_tx(ctx.engine) as conn:
        state = model_store.fetch_state(conn, pid)
    settings = settings_of(state)
    schema = ctx.get_schema(project)
    question = model_question(schema, settings)
    if question is None:
        summary["skipped"] = "no choice question"
        return
    with read_tx(ctx.engine) as conn:
        n_labels = model_store.count_training_labels(conn, pid, question.name)  # a count, every pass
        current = model_store.fetch_current_version(conn, pid, with_params=True)
    new_labels = n_labels - state["labels_at_train"]
    # the first model as soon as min_labels are there (retried only when labels were added since
    # an attempt that could not train), then every retrain_every new labels
    due = (train or bool(state["train_requested"])
           or (n_labels >= settings["min_labels"]
               and new_labels >= (settings["retrain_every"] if current else 1)))
    # labeled items first when a training run is due: it needs their vectors
    if due:
        with read_tx(ctx.engine) as conn:
            labeled = model_store.fetch_training_labels(conn, pid, question.name)
        summary["embedded"] = _embed(ctx, pid, current, question, [r[0] for r in labeled], deadline=None)
    deadline = time.monotonic() + embed_budget_s
    summary["embedded"] = summary.get("embedded", 0) + _embed(ctx, pid, current, question, None, deadline)
    if due:
        current = train_version(ctx, project, question, labeled, n_labels, settings, summary)
    if current is not None and settings["auto_label"] and current.get("threshold", {}).get("threshold") is not None:
        summary["auto_labeled"] = auto_label_confident(ctx, pid, question, current, settings)
    summary["audits_checked"] = check_finished_audits(ctx, pid, settings, state)
    summary["prelabels_recorded"] = record_prelabels(ctx, project, question, state)
    if settings["active_learning"] != "off":
        summary["prioritized"] = prioritize(ctx, pid, question, settings, current is not None)
    if state.get("last_error"):  # this pass went through: the error is over
        with write_tx(ctx.engine) as conn:
            model_store.update_state(conn, pid, last_error=None, last_error_at=None)


def _embed(ctx: Context, pid: int, current: dict | None, question, only: list[int] | None,
           deadline: float | None) -> int:
    from goldlabel.models import content_hash

    done = 0
    try:
        embedder = embedder_for(ctx)
    except Exception as exc:  # a missing wheel, a broken model file: recorded, humans go on
        raise ModelFailed(f"the embedder could not be loaded: {exc}") from exc
    model = load_params(current) if current else None
    ids_left = list(only) if only is not None else None
    while deadline is None or time.monotonic() < deadline:
        with read_tx(ctx.engine) as conn:
            if ids_left is not None:
                if not ids_left:
                    break
                chunk, ids_left = ids_left[:EMBED_BATCH * 4], ids_left[EMBED_BATCH * 4:]
                rows = model_store.items_to_embed(conn, pid, len(chunk), chunk)
                if not rows:
                    continue
            else:
                rows = model_store.items_to_embed(conn, pid, EMBED_BATCH)
                if not rows:
                    break
            texts = [item_text(data) for _, data in rows]
            hashes = [content_hash(t) for t in texts]
            cached = model_store.cached_vectors(conn, embedder.model_id, hashes)
        todo = sorted({h: t for h, t in zip(hashes, texts) if h not in cached}.items())
        if todo:
            try:
                vectors = np.asarray(embedder.embed([t for _, t in todo]), dtype=np.float32)
            except Exception as exc:
                raise ModelFailed(f"the embedder failed on a batch of {len(todo)} texts: {exc}") from exc
            if vectors.shape != (len(todo), embedder.dim) or not np.isfinite(vectors).all():
                raise ModelFailed(f"the embedder returned vectors of shape {vectors.shape} (or not finite), "
                                  f"expected ({len(todo)}, {embedder.dim})")
            blobs, scales = model_store.encode_vectors(vectors)
            for (h, _), b, s in zip(todo, blobs, scales.tolist()):
                cached[h] = (b, s)
        now = now_ms()
        with write_tx(ctx.engine) as conn:
            model_store.insert_embeddings(conn, [
                {"item_id": i, "project_id": pid, "model_id": embedder.model_id, "content_hash": h,
                 "vector": cached[h][0], "scale": cached[h][1], "created_at": now}
                for (i, _), h in zip(rows, hashes)])
        done += len(rows)
        if model is not None:
            ids = [i for i, _ in rows]
            vectors = model_store.decode_vectors([cached[h][0] for h in hashes], [cached[h][1] for h in hashes])
            write_predictions(ctx, pid, current, question, ids, model.predict_proba(vectors))
    return done

