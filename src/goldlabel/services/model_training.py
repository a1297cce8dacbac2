"""The project model's training and what follows from a trained version: predictions as
pre-labels, calibrated auto-labeling with its audits, queue priorities from active learning,
and the pre-label outcomes of the answers. Each step is one function the model worker's pass
calls (``services/model_worker.py``, ``process_project``); the maths is ``goldlabel.models``,
this module reads and writes the database around it."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from goldlabel.services.context import Context
from goldlabel.storage import consensus_events as records
from goldlabel.storage import models as model_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx

PREDICT_BATCH = 5000
AUTO_BATCH = 500
#: items humans answered whose vectors the diversity step treats as covered
LABELED_SAMPLE = 2000
#: label-error audit rows kept per version (most suspicious first)
MAX_ISSUES = 500


class ModelFailed(Exception):
    """An embedder or a model failed: recorded, the items stay with the humans."""


# ---------------------------------------------------------------- training


def _dump_params(model, labels: list[str]) -> bytes:
    buf = io.BytesIO()
    lr = model.final_
    np.savez(buf, coef=lr.coef_, intercept=lr.intercept_, classes=lr.classes_, mean=model._mean,
             scale=model._scale, n_classes=np.array(model.n_classes))
    return buf.getvalue()


def load_params(version: dict | None):
    """The version's fitted model, rebuilt from its stored weights (no pickle)."""
    if not version or not version.get("params"):
        return None
    from sklearn.linear_model import LogisticRegression

    from goldlabel.models import ProjectModel

    with np.load(io.BytesIO(version["params"]), allow_pickle=False) as f:
        model = ProjectModel(int(f["n_classes"]))
        lr = LogisticRegression()
        lr.coef_, lr.intercept_, lr.classes_ = f["coef"], f["intercept"], f["classes"]
        model.final_ = lr
        model._mean, model._scale = f["mean"], f["scale"]
    return model


def train_version(ctx: Context, project: dict, question, labeled: list, n_labels: int, settings: dict,
           summary: dict) -> dict | None:
    from goldlabel.models import DEFAULT_MODEL_ID, ProjectModel, find_label_issues, select_threshold

    pid = project["id"]
    labels = list(question.labels)
    code_of = {label: i for i, label in enumerate(labels)}
    rows = [(i, code_of[v], c, s) for i, v, c, s in labeled if v in code_of]
    with read_tx(ctx.engine) as conn:
        ids, X = model_store.fetch_vectors(conn, [r[0] for r in rows])
    by_id = {r[0]: r for r in rows}
    rows = [by_id[i] for i in ids]
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
        raise ModelFailed(f"training failed: {exc}") from exc
    oof = fit.oof_probas
    scores, predicted = oof.max(axis=1), oof.argmax(axis=1)
    sources = np.array([r[3] for r in rows])
    confident = np.array([r[2] for r in rows]) >= project["settings"].get("target_confidence", 0.95)
    # the calibration slice: labels humans settled firmly (gold, reviewed, final at high confidence)
    calib = (sources != "consensus") | confident
    threshold = select_threshold(scores[calib], predicted[calib] == y[calib], settings["target"], settings["delta"])
    metrics = {**fit.metrics, "accuracy": fit.metrics["oof_accuracy"], "calibration_items": int(calib.sum()),
               "classes": labels}
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
               "threshold": _json_safe(threshold.as_dict()), "params": _dump_params(model, labels),
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
        write_predictions(ctx, pid, version, question, batch_ids, model.predict_proba(vectors))
    # The items it trained on get their out-of-fold prediction instead: the re-fit learns the
    # model's skill as an annotator from these, and an in-sample score would flatter it.
    for start in range(0, len(ids), PREDICT_BATCH):
        write_predictions(ctx, pid, version, question, list(ids[start:start + PREDICT_BATCH]),
                           oof[start:start + PREDICT_BATCH])
    return version


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


def write_predictions(ctx: Context, pid: int, version: dict, question, ids: list[int], probas: np.ndarray) -> None:
    labels = list(question.labels)
    codes = probas.argmax(axis=1)
    scores = probas[np.arange(len(codes)), codes]
    now = now_ms()
    name = model_store.MODEL_PREFIX + version["version"]
    with write_tx(ctx.engine) as conn:
        model_store.replace_model_predictions(conn, pid, [
            {"item_id": i, "model_version": name, "value": {question.name: labels[c]}, "score": round(float(s), 6),
             "created_at": now}
            for i, c, s in zip(ids, codes.tolist(), scores.tolist())])



# ---------------------------------------------------------------- auto-labeling and its audits


def auto_label_confident(ctx: Context, pid: int, question, version: dict, settings: dict) -> int:
    from goldlabel.models import audit_mask

    threshold = version["threshold"]["threshold"]
    name = model_store.MODEL_PREFIX + version["version"]
    rng = np.random.default_rng()
    done = 0
    while True:
        with read_tx(ctx.engine) as conn:
            candidates = model_store.fetch_auto_label_candidates(conn, pid, name, threshold, AUTO_BATCH)
        if not candidates:
            return done
        audits = audit_mask(len(candidates), settings["audit_fraction"], rng)
        now = now_ms()
        with write_tx(ctx.engine) as conn:
            rows, events = [], []
            for (item_id, value, score), audit in zip(candidates, audits.tolist()):
                label = (value or {}).get(question.name)
                if audit:  # stays with the humans; compared with their label when final
                    rows.append({"item_id": item_id, "project_id": pid, "version_id": version["id"],
                                 "question": question.name, "label": label, "score": score, "audit": True,
                                 "created_at": now})
                    continue
                if not model_store.finalize_auto(conn, item_id, now):
                    continue  # leased or answered meanwhile: the humans have it
                records.set_reviewed_consensus(conn, item_id, pid, [{
                    "question": question.name, "value": label, "confidence": score, "method": "model",
                    "status": "final", "contributions": {"model_version": name}, "updated_at": now,
                    "source": "auto"}])
                rows.append({"item_id": item_id, "project_id": pid, "version_id": version["id"],
                             "question": question.name, "label": label, "score": score, "audit": False,
                             "created_at": now})
                events.append({"project_id": pid, "kind": "item.final", "created_at": now,
                               "payload": {"item_id": item_id, "status": "final", "by": "auto"}})
                done += 1
            model_store.insert_auto_labels(conn, rows)
            if events:
                records.insert_events(conn, events)
            if not rows:  # every candidate was taken by the queue meanwhile: try again next pass
                return done


def check_finished_audits(ctx: Context, pid: int, settings: dict, state: dict) -> int:
    from goldlabel.models import check_audits

    with read_tx(ctx.engine) as conn:
        finished = model_store.pending_audits(conn, pid)
    if not finished:
        return 0
    now = now_ms()
    with write_tx(ctx.engine) as conn:
        model_store.set_audit_results(conn, [(i, label == value) for i, _, label, value in finished])
        if not settings["auto_label"]:
            return len(finished)
        outcomes = model_store.audit_outcomes(conn, pid, state.get("auto_label_since"))
        check = check_audits(np.array(outcomes, dtype=bool), settings["target"], settings["delta"])
        if not check.keep_on:
            reason = (f"audits: {check.correct} of {check.n_audits} auto-labels right ({check.accuracy:.3f}); "
                      f"at delta {settings['delta']} their accuracy is below the target {settings['target']} "
                      f"(upper bound {check.upper:.3f})")
            model_store.update_state(conn, pid, settings={**settings, "auto_label": False},
                                     auto_label_off_reason=reason, updated_at=now)
            records.insert_event(conn, pid, "model.auto_label_off", {
                "reason": reason, "audits": check.n_audits, "correct": check.correct}, now)
    return len(finished)



# ---------------------------------------------------------------- active learning


def prioritize(ctx: Context, pid: int, question, settings: dict, has_model: bool) -> int:
    """Queue priorities of the open embedded items from the project's active-learning policy
    (goldlabel.models.active_priorities), written where they changed; returns how many. The
    lease only reads the column (its index orders by priority first), so none of this is on the
    annotate path. Uncertainty is the margin of the combined posterior: the consensus where
    humans answered (with the model's vote when it is an annotator), else the model's score;
    an item with neither counts as fully uncertain. Before the first model: a diverse cold start."""
    from goldlabel.models import active_priorities, margin_uncertainty, top_probas

    n_classes = len(question.labels)
    parts = []
    with read_tx(ctx.engine) as conn:
        for rows in model_store.iter_priority_inputs(conn, pid, question.name):
            parts.append(np.array([(r[0], r[1], r[2], np.nan if r[3] is None else r[3],
                                    np.nan if r[4] is None else r[4]) for r in rows], dtype=np.float64))
        if not parts:
            return 0
        table = np.concatenate(parts)
        ids, old = table[:, 0].astype(np.int64), table[:, 1].astype(np.int64)
        top = np.where((table[:, 2] > 0) & ~np.isnan(table[:, 3]), table[:, 3], table[:, 4])
        uncertainty = None
        if has_model:
            uncertainty = np.where(np.isnan(top), 1.0, margin_uncertainty(top_probas(np.nan_to_num(top), n_classes)))

        def vectors(index: np.ndarray) -> np.ndarray:
            wanted = ids[index].tolist()
            got, vecs = model_store.fetch_vectors(conn, wanted)
            at = {item_id: j for j, item_id in enumerate(got)}
            return vecs[[at[i] for i in wanted]]

        _, labeled = model_store.fetch_vectors(conn, model_store.sample_answered_ids(conn, pid, LABELED_SAMPLE))
        new = active_priorities(uncertainty, len(ids), vectors, policy=settings["active_learning"],
                                batch=settings["active_batch"], labeled=labeled if len(labeled) else None)
    changed = np.flatnonzero(new != old)
    done = 0
    for start in range(0, len(changed), PREDICT_BATCH):
        chunk = changed[start:start + PREDICT_BATCH]
        with write_tx(ctx.engine) as conn:
            done += model_store.set_priorities(conn, pid, list(zip(ids[chunk].tolist(), new[chunk].tolist())))
    return done



# ---------------------------------------------------------------- pre-label outcomes


def record_prelabels(ctx: Context, project: dict, question, state: dict) -> int:
    """Record the pre-label outcome of every answer since the last pass (model_state's
    ``prelabel_cursor``): shown when the project shows predictions and the item's model
    prediction was written before the answer (a prediction is replaced, never updated, so it is
    the one the annotator saw); kept when the answer equals it; on gold items whether the answer
    and the pre-label were right. Returns how many were recorded."""
    pid = project["id"]
    showing = bool(project["settings"].get("show_predictions"))
    cursor, done = int(state.get("prelabel_cursor") or 0), 0
    while True:
        with read_tx(ctx.engine) as conn:
            rows = model_store.answers_for_prelabels(conn, pid, question.name, cursor, PREDICT_BATCH)
        if not rows:
            return done
        now = now_ms()
        out = []
        for answer_id, annotator_id, label, answered_at, is_gold, pre, pre_at, gold in rows:
            shown = showing and pre is not None and pre_at is not None and pre_at <= answered_at
            out.append({"answer_id": answer_id, "project_id": pid, "annotator_id": annotator_id, "shown": shown,
                        "kept": (label == pre) if shown else None, "is_gold": bool(is_gold),
                        "correct": (label == gold) if is_gold and gold is not None else None,
                        "prelabel_correct": (pre == gold) if shown and is_gold and gold is not None else None,
                        "created_at": now})
        cursor = rows[-1][0]
        with write_tx(ctx.engine) as conn:
            model_store.insert_prelabel_outcomes(conn, out)
            model_store.update_state(conn, pid, prelabel_cursor=cursor)
        done += len(out)

