"""A training run: the cross-fitted project model over the embedded final labels, its
out-of-fold metrics, the auto-label threshold chosen on the calibration slice (reviewed labels
only with ``review_calibration_slice``, and only the part no earlier auto-labeling version would
have taken), the label-error audit, and the new version's predictions for every embedded item."""

from __future__ import annotations

from typing import Any

import numpy as np

from goldlabel.services.context import Context
from goldlabel.services.models.calibration import in_slice
from goldlabel.services.models.errors import ModelError
from goldlabel.services.models.predictions import PREDICT_BATCH, load_params, write_predictions
from goldlabel.services.models.settings import reviewed_slice_only
from goldlabel.storage import consensus_events as records
from goldlabel.storage import models as model_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx

#: label-error audit rows kept per version (most suspicious first)
MAX_ISSUES = 500


def labeled_vectors(ctx: Context, question, labeled: list) -> tuple[list[int], np.ndarray, list[tuple]]:
    """The embedded ones of ``labeled`` (``fetch_training_labels``' rows) whose label is one of
    the question's, in item-id order: (ids, their vectors, rows ``(item_id, label code,
    confidence, source, model_voted)``). The order makes the cross-fitting folds the same for a
    training run and the scale-out audit (services/model_scaleout.py), whatever order the
    database returns an IN list's rows in (on PostgreSQL, the heap's)."""
    code_of = {label: i for i, label in enumerate(question.labels)}
    rows = [(i, code_of[v], c, s, voted) for i, v, c, s, voted in labeled if v in code_of]
    with read_tx(ctx.engine) as conn:
        ids, X = model_store.fetch_vectors(conn, [r[0] for r in rows])
    order = np.argsort(np.asarray(ids, dtype=np.int64), kind="stable")
    ids, X = [ids[j] for j in order.tolist()], X[order]
    by_id = {r[0]: r for r in rows}
    return ids, X, [by_id[i] for i in ids]


def train_version(ctx: Context, project: dict, question, labeled: list, n_labels: int, settings: dict,
                  summary: dict) -> dict | None:
    """Train a version on ``labeled`` (the pass's ``fetch_training_labels`` rows) and store it with
    its metrics, threshold, label issues and predictions; returns it, or None when the labels
    cannot train a model yet (``summary["not_trained"]`` says why). A fit that fails is stored
    as a failed version and raises ModelError."""
    from goldlabel.models import DEFAULT_MODEL_ID, ProjectModel, find_label_issues, slice_threshold
    from goldlabel.models.scaleout import params_of

    pid = project["id"]
    labels = list(question.labels)
    ids, X, rows = labeled_vectors(ctx, question, labeled)
    y = np.array([r[1] for r in rows], dtype=np.int64)
    weight = np.array([max(r[2], 0.05) for r in rows])
    now = now_ms()
    embedder_id = getattr(ctx.__dict__.get("_model_embedder"), "model_id", DEFAULT_MODEL_ID)
    error = None
    if len(y) < settings["min_labels"]:
        error = f"{len(y)} embedded final labels; the first model needs {settings['min_labels']}"
    elif len(np.unique(y)) < 2:
        error = "every final label so far is the same class; a model needs two"
    if error is not None:
        with write_tx(ctx.engine) as conn:
            model_store.update_state(conn, pid, train_requested=False, labels_at_train=n_labels, updated_at=now)
        summary["trained"] = None
        summary["not_trained"] = error
        return None
    model = ProjectModel(len(labels), seed=0)
    try:
        fit = model.fit(X, y, weight)
    except Exception as exc:
        with write_tx(ctx.engine) as conn:
            model_store.insert_version(conn, project_id=pid, question=question.name, version="failed",
                                       embedder=embedder_id, status="failed", labels=len(y), error=str(exc)[:2000],
                                       created_at=now)
            model_store.update_state(conn, pid, train_requested=False, labels_at_train=n_labels, updated_at=now)
        raise ModelError(f"training failed: {exc}") from exc
    oof = fit.oof_probas
    scores, predicted = oof.max(axis=1), oof.argmax(axis=1)
    sources = np.array([r[3] for r in rows])
    # The threshold: on the calibration slice's human labels only, every one of them (gold,
    # reviewed or consensus at any confidence: keeping only the confident ones would keep the
    # easy items), with out-of-fold scores (the fold that scored an item never trained on it).
    # Against the truth, not the crowd: a label is right with its confidence (gold and reviewed
    # 1, a consensus its posterior), so an agreement still counts 1 - confidence of an error
    # (goldlabel.models.select_threshold); a label the model's own vote helped form (a slice
    # item predicted before it joined the slice) judges nothing: confidence 0, an error.
    calib = in_slice(ctx, ids, settings)
    label_confidence = np.array([0.0 if r[4] else 1.0 if r[3] in ("gold", "review") else min(max(r[2], 0.0), 1.0)
                                 for r in rows])
    # review_calibration_slice (with auto-labeling on): only reviewed and gold slice labels count,
    # the reviewer's label being the reference; the crowd's consensus on the slice, however
    # confident, does not (on zheng_product it was 6-8% wrong where its posterior claimed 2%)
    reviewed = np.isin(sources, ("gold", "review"))
    reviewed_only = reviewed_slice_only(settings)
    # A later round auto-labels only what earlier rounds left (the harder part), so its bound is
    # taken on the slice items no earlier round would have taken (goldlabel.models.taken_earlier).
    with read_tx(ctx.engine) as conn:
        earlier = model_store.fetch_auto_label_versions(conn, pid)
    taken = _taken_earlier(earlier, X, calib, question.name)
    usable = calib & ~taken & (reviewed if reviewed_only else True)
    threshold = slice_threshold(scores, predicted == y, usable, settings["target"], settings["delta"],
                                label_confidence=label_confidence)
    metrics = {**fit.metrics, "accuracy": fit.metrics["oof_accuracy"], "calibration_items": int(calib.sum()),
               "calibration_reviewed": int((calib & reviewed).sum()),
               "calibration_taken_earlier": int((calib & taken).sum()), "classes": labels}
    issue_rows = []
    human = sources != "gold"  # gold is the truth it is checked against
    if human.sum() >= 2 and len(np.unique(y[human])) >= 2:
        issues = find_label_issues(y[human], oof[human])
        human_ids = np.asarray(ids)[human]
        for rank, index in enumerate(issues.indices[:MAX_ISSUES].tolist()):
            issue_rows.append({"item_id": int(human_ids[index]), "question": question.name, "rank": rank + 1,
                               "given": labels[int(y[human][index])],
                               "suggested": labels[int(issues.suggested[index])],
                               "self_confidence": float(issues.self_confidence[index])})
        metrics["label_issues"] = len(issues.indices)
    version = {"project_id": pid, "question": question.name, "version": fit.version, "embedder": embedder_id,
               "status": "ready", "labels": len(y), "metrics": _json_safe(metrics),
               "threshold": _json_safe({**threshold.as_dict(), "labels": "reviewed" if reviewed_only else "all"}),
               "params": params_of(model),
               "created_at": now}
    with write_tx(ctx.engine) as conn:
        version_id = model_store.insert_version(conn, **version)
        model_store.replace_label_issues(conn, pid, version_id, issue_rows)
        model_store.update_state(conn, pid, train_requested=False, labels_at_train=n_labels, updated_at=now)
        records.insert_event(conn, pid, "model.trained", {
            "version_id": version_id, "version": fit.version, "labels": len(y),
            "accuracy": metrics["accuracy"], "ece": metrics["ece"], "threshold": threshold.threshold}, now)
    version["id"] = version_id
    summary["trained"] = {"id": version_id, "version": fit.version, "labels": len(y),
                          "accuracy": metrics["accuracy"], "ece": metrics["ece"], "threshold": threshold.threshold}
    with read_tx(ctx.engine) as conn:
        batches = list(model_store.iter_vectors(conn, pid, PREDICT_BATCH))
    for batch_ids, vectors in batches:
        write_predictions(ctx, pid, version, question, batch_ids, model.predict_proba(vectors), settings)
    # The items it trained on get their out-of-fold prediction instead: the re-fit learns the
    # model's skill as an annotator from these, and an in-sample score would flatter it.
    for start in range(0, len(ids), PREDICT_BATCH):
        write_predictions(ctx, pid, version, question, list(ids[start:start + PREDICT_BATCH]),
                           oof[start:start + PREDICT_BATCH], settings)
    return version


def _taken_earlier(versions: list[dict], X: np.ndarray, calib: np.ndarray, question: str) -> np.ndarray:
    """Which rows of X (calibration rows only) an earlier auto-labeling version would have taken:
    its model's score at or above its threshold. A version over vectors of another size (another
    embedder) cannot score these and is left out."""
    from goldlabel.models import taken_earlier

    rows = np.flatnonzero(calib)
    scores, thresholds = [], []
    for version in versions:
        t = (version.get("threshold") or {}).get("threshold")
        model = load_params(version) if version["question"] == question and t is not None else None
        if model is None or len(rows) == 0 or np.shape(model._mean)[-1] != X.shape[1]:
            continue
        scores.append(model.predict_proba(X[rows]).max(axis=1))
        thresholds.append(float(t))
    taken = np.zeros(len(X), dtype=bool)
    if scores:
        taken[rows] = taken_earlier(np.vstack(scores), np.array(thresholds))
    return taken


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, np.generic):
        return _json_safe(obj.item())
    return obj
