"""The project model inside the platform: embeddings of the items, training on the human final
labels, predictions as pre-labels, calibrated auto-labeling with audits, and the label-error
audit. The maths is ``goldlabel.models``; this module reads and writes the database around it.

One pass over a project (:func:`process_project`, run by the background worker in
``services/model_worker.py`` and by ``POST /projects/{id}/models/train``):

1. embed items that have no embedding yet, in batches (labeled items first); a text whose
   content hash another item already has reuses that vector (never embedded twice). Items
   without a label wait until a model exists (or one is trained in this pass) or active
   learning is on: nothing reads their vectors before;
2. predict the newly embedded items with the current model version (pre-labels);
3. retrain when asked to, or once ``retrain_every`` new final labels arrived: a cross-fitted
   logistic regression (``goldlabel.models.ProjectModel``); its out-of-fold probabilities give
   the held-out accuracy, the ECE, the auto-label threshold (Clopper-Pearson, fixed-sequence) and
   the label-error audit; then every embedded item gets a prediction of the new version;
4. with auto-labeling on, items above the threshold become final with consensus source
   ``auto``; a random ``audit_fraction`` of them stays with the humans instead; with
   ``review_calibration_slice`` (the default) the threshold is chosen on reviewed slice labels
   only, and each training run sends the final calibration-slice items to review;
5. audits the humans finished are compared with the model's label; when their bound says the
   auto-labels' accuracy is below the target, auto-labeling switches itself off (an event, a
   reason shown in the console).

A model or an embedder that fails records its error (console, API, event log) and leaves the
items with the humans: nothing here is on the annotate path, so the queue never waits for it.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from goldlabel.domain.errors import FieldError, GoldlabelError, invalid, not_found
from goldlabel.domain.label_schema import LabelSchema
from goldlabel.services import external_models
from goldlabel.services.access import Actor, load_project
from goldlabel.services.context import Context
from goldlabel.storage import consensus_events as records
from goldlabel.storage import models as model_store
from goldlabel.storage import projects as project_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx
from goldlabel.storage.secrets import install_secret

log = logging.getLogger(__name__)

EMBED_BATCH = 256
PREDICT_BATCH = 5000
AUTO_BATCH = 500
HOLD_MS = 10 * 60 * 1000
#: items humans answered whose vectors the diversity step treats as covered
LABELED_SAMPLE = 2000
#: label-error audit rows kept per version (most suspicious first)
MAX_ISSUES = 500
ISSUES_LIMIT_MAX = 500


class ModelSettings(BaseModel):
    """A project's model settings (``GET/PATCH /projects/{id}/models/settings``)."""

    model_config = ConfigDict(extra="forbid")

    question: str | None = Field(None, description="The choice question the model learns; default the first.")
    retrain_every: int = Field(50, ge=1, le=1_000_000, description="Retrain after this many new final labels.")
    min_labels: int = Field(20, ge=4, le=1_000_000, description="Final labels needed before the first model.")
    auto_label: bool = Field(False, description="Let the model make items final above its calibrated threshold.")
    target: float = Field(0.95, gt=0.5, lt=1, description="Accuracy the auto-labels must reach (bounded).")
    delta: float = Field(0.05, gt=0, lt=0.5, description="Risk level of the bound (1 - delta confidence).")
    audit_fraction: float = Field(0.05, ge=0, le=1, description="Share of auto-label candidates sent to humans.")
    model_annotator: bool = Field(True, description="Count the model's prediction as one more annotator's "
                                  "answer in the consensus (its skill learned where humans answered).")
    active_learning: Literal["off", "uncertainty", "uncertainty_diversity"] = Field(
        "off", description="Queue order from the model: off (priorities stay yours), uncertainty, or "
                           "uncertainty_diversity (uncertain and spread out in embedding space).")
    active_batch: int = Field(100, ge=1, le=10_000, description="Items the diversity step ranks first per pass.")
    calibration_fraction: float = Field(
        0.05, ge=0, le=0.5, description="Share of the items in the calibration slice: uniformly random (a keyed "
        "hash of the item id), labeled by humans only, the only labels the auto-label threshold is chosen on.")
    review_calibration_slice: bool = Field(
        True, description="With auto-labeling on: each calibration-slice item goes to review once final, and the "
        "threshold is chosen on reviewed (and gold) slice labels only, so the guarantee is against the reviewer, "
        "not the crowd; auto-labeling waits until enough slice items are reviewed. Off: crowd consensus counts "
        "by its confidence.")
    external_model: str | None = Field(
        None, max_length=2000, description="An external model: an http(s) URL speaking the protocol, or the "
        "name of an entry point the operator registered (setting external_models); None: none.")
    external_role: Literal["predictor", "annotator"] = Field(
        "predictor", description="predictor: its predictions are pre-labels beside the project model's; "
        "annotator: it takes the project model's place as the item's model prediction (pre-label, one more "
        "annotator in the consensus, active-learning uncertainty).")
    external_batch: int = Field(32, ge=1, le=1000, description="Items per call to the external model.")


DEFAULTS = ModelSettings().model_dump()


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


# ---------------------------------------------------------------- the calibration slice

SLICE_SECRET = "calibration_slice_key"  # nosec B105  # the name of the install secret, not a secret


def slice_key(ctx: Context) -> bytes:
    """The install's calibration-slice key (``install_secrets``: 32 random bytes, made once, kept
    in the database so every process agrees on the slice)."""
    key = ctx.__dict__.get("_calibration_slice_key")
    if key is None:
        key = bytes.fromhex(install_secret(ctx.engine, SLICE_SECRET, lambda: secrets.token_hex(32)))
        ctx.__dict__["_calibration_slice_key"] = key
    return key


def in_slice(ctx: Context, item_ids, settings: dict) -> np.ndarray:
    """Which of these items are in the project's calibration slice (goldlabel.models.calibration_slice)."""
    from goldlabel.models import calibration_slice

    return calibration_slice(np.asarray(item_ids, dtype=np.int64), slice_key(ctx), settings["calibration_fraction"])


# ---------------------------------------------------------------- settings and state


def model_question(schema: LabelSchema, settings: dict):
    """The choice question the model learns, or None (a project without one has no model)."""
    questions = schema.choice_questions()
    if settings.get("question"):
        return next((q for q in questions if q.name == settings["question"]), None)
    return questions[0] if questions else None


def annotator_question(conn, project: dict, schema: LabelSchema) -> str | None:
    """The question the project model answers as one more annotator (its ``model_annotator``
    setting on and a ready version there), or None: the re-fit learns its skill there."""
    state = model_store.fetch_state(conn, project["id"])
    settings = _settings(state)
    question = model_question(schema, settings)
    if state is None or not settings["model_annotator"] or question is None:
        return None
    if settings["external_model"] and settings["external_role"] == "annotator":
        return question.name  # the external model's predictions are the votes
    return question.name if model_store.fetch_current_version(conn, project["id"]) is not None else None


def _settings(state: dict | None) -> dict:
    return {**DEFAULTS, **((state or {}).get("settings") or {})}


def reviewed_slice_only(settings: dict) -> bool:
    """Whether the auto-label bound takes reviewed (and gold) slice labels only, and final slice
    items go to review: the setting ``review_calibration_slice`` while auto-labeling is on."""
    return bool(settings["auto_label"] and settings["review_calibration_slice"])


def _threshold_fits(version: dict, settings: dict) -> bool:
    """A version's threshold may auto-label under these settings: with reviewed slice labels
    required, only one chosen on them (a version trained before the setting, or before
    auto-labeling was turned on, bounded on crowd consensus and is retrained first)."""
    return not reviewed_slice_only(settings) or (version.get("threshold") or {}).get("labels") == "reviewed"


def _ensure_state(conn, project_id: int, now: int) -> dict:
    return model_store.ensure_state(conn, project_id, dict(DEFAULTS), now)


def update_settings(ctx: Context, actor: Actor | None, project_id: int, changes: dict) -> dict:
    now = now_ms()
    with write_tx(ctx.engine) as conn:
        project = _load(conn, actor, project_id, "manage")
        state = _ensure_state(conn, project_id, now)
        merged = {**_settings(state), **changes}
        try:
            clean = ModelSettings(**merged).model_dump()
        except ValidationError as exc:
            raise invalid([FieldError(("settings",) + tuple(e["loc"]), "invalid_settings", e["msg"])
                           for e in exc.errors()]) from exc
        schema = ctx.get_schema(project)
        if model_question(schema, clean) is None:
            raise invalid([FieldError(("question",), "no_choice_question",
                                      "the project model learns a choice question; name one of the schema's")])
        if clean["auto_label"] and len(schema.questions) != 1:
            raise invalid([FieldError(("auto_label",), "auto_label_needs_one_question",
                                      "auto-labeling makes items final, so the schema must have one question "
                                      "(the model's)")])
        if clean["auto_label"] and clean["calibration_fraction"] == 0:
            raise invalid([FieldError(("calibration_fraction",), "auto_label_needs_calibration",
                                      "auto-labeling chooses its threshold on the calibration slice; give it a "
                                      "calibration_fraction above 0 (docs/models.md)")])
        if clean["external_model"]:
            why = external_models.check_target(ctx, clean["external_model"])
            if why is not None:
                raise invalid([FieldError(("external_model",), "bad_external_model", why)])
        if clean["auto_label"] and clean["external_model"] and clean["external_role"] == "annotator":
            raise invalid([FieldError(("external_role",), "auto_label_with_external_annotator",
                                      "auto-labeling uses the project model's calibrated threshold; an external "
                                      "annotator replaces its predictions (docs/models.md)")])
        values: dict[str, Any] = {"settings": clean, "updated_at": now}
        if clean["auto_label"] and not _settings(state)["auto_label"]:
            values.update(auto_label_since=now, auto_label_off_reason=None)
        if reviewed_slice_only(clean) and not reviewed_slice_only(_settings(state)):
            # the current threshold was chosen on crowd labels: choose it again on reviewed ones
            # (and send the final slice items to review) in the worker's next pass
            values.update(train_requested=True)
        model_store.update_state(conn, project_id, **values)
        records.insert_event(conn, project_id, "model.settings_changed", {"settings": clean}, now)
    return status(ctx, actor, project_id)


def _load(conn, actor: Actor | None, project_id: int, need: str) -> dict:
    if actor is None:
        project = project_store.fetch_project(conn, project_id)
        if project is None:
            raise not_found("project")
        return project
    return load_project(conn, actor, project_id, need)


def status(ctx: Context, actor: Actor | None, project_id: int) -> dict:
    """Settings, worker progress and errors, auto-labeling state with its achieved audit
    accuracy, and the versions with their metrics (newest first)."""
    from goldlabel.models import check_audits
    from goldlabel.models.autolabel import min_start_count

    with read_tx(ctx.engine) as conn:
        project = _load(conn, actor, project_id, "review")
        state = model_store.fetch_state(conn, project_id)
        settings = _settings(state)
        question = model_question(ctx.get_schema(project), settings)
        versions = model_store.list_versions(conn, project_id)
        embedded = model_store.count_embedded(conn, project_id)
        waiting = model_store.count_unembedded(conn, project_id)
        labels = model_store.count_training_labels(conn, project_id, question.name) if question else 0
        counts = model_store.auto_label_counts(conn, project_id)
        outcomes = model_store.audit_outcomes(conn, project_id, (state or {}).get("auto_label_since"))
    prelabels = prelabel_view(ctx, actor, project_id)
    check = check_audits(np.array(outcomes, dtype=bool), settings["target"], settings["delta"])
    current = next((v for v in versions if v["status"] == "ready"), None)
    metrics = (current or {}).get("metrics") or {}
    return {
        "project_id": project_id,
        "question": question.name if question else None,
        "settings": settings,
        "embeddings": {"embedded": embedded, "waiting": waiting},
        "labels": labels,
        "labels_at_train": (state or {}).get("labels_at_train", 0),
        "train_requested": bool((state or {}).get("train_requested")),
        "last_error": (state or {}).get("last_error"),
        "last_error_at": (state or {}).get("last_error_at"),
        "current_version": current,
        "auto_label": {
            "on": bool(settings["auto_label"]),
            "since": (state or {}).get("auto_label_since"),
            "off_reason": (state or {}).get("auto_label_off_reason"),
            "threshold": (current or {}).get("threshold"),
            **counts,
            "audited": check.n_audits,
            "audit_correct": check.correct,
            "audit_accuracy": None if check.n_audits == 0 else check.accuracy,
            "audit_lower": None if check.n_audits == 0 else check.lower,
            # review_calibration_slice: the bound takes reviewed slice labels only; the first
            # test needs calibration_needed of them (goldlabel.models.autolabel.min_start_count)
            "reviewed_slice_only": reviewed_slice_only(settings),
            "calibration_reviewed": metrics.get("calibration_reviewed"),
            "calibration_needed": min_start_count(settings["target"], settings["delta"]),
        },
        "annotator": _annotator_view((state or {}).get("annotator")) if settings["model_annotator"] else None,
        "prelabels": prelabels,
        "versions": versions,
    }


def _annotator_view(annotator: dict | None) -> dict | None:
    """The model as an annotator, as the console and the API show it: per confidence band its
    learned accuracy and the answers behind it (re-fit over items humans answered)."""
    if not annotator:
        return None
    bands = annotator["bands"]
    return {
        "question": annotator.get("question"),
        "fitted_at": annotator.get("fitted_at"),
        "n_answers": int(sum(annotator["n_answers"])),
        "bands": [{"from": b, "to": bands[i + 1] if i + 1 < len(bands) else 1.0, "accuracy": a, "n_answers": n}
                  for i, (b, a, n) in enumerate(zip(bands, annotator["accuracy"], annotator["n_answers"]))],
    }


def label_audit(ctx: Context, actor: Actor | None, project_id: int, limit: int = 100) -> list[dict]:
    """The newest version's likely label errors, most suspicious first."""
    if not 1 <= limit <= ISSUES_LIMIT_MAX:
        raise invalid([FieldError(("limit",), "bad_limit", f"limit must lie in 1..{ISSUES_LIMIT_MAX}")])
    with read_tx(ctx.engine) as conn:
        _load(conn, actor, project_id, "review")
        return model_store.list_label_issues(conn, project_id, limit)


def send_issues_to_review(ctx: Context, actor: Actor | None, project_id: int, item_ids: list[int]) -> dict:
    """Send flagged items back to review: each listed item that the label-error audit flagged and
    whose final label came from the answers (not a reviewer, gold or the model) becomes
    ``needs_review``, with an ``item.needs_review`` event that carries the reason."""
    if not 1 <= len(item_ids) <= ISSUES_LIMIT_MAX:
        raise invalid([FieldError(("item_ids",), "bad_item_ids", f"name 1..{ISSUES_LIMIT_MAX} items")])
    now = now_ms()
    sent = []
    with write_tx(ctx.engine) as conn:
        _load(conn, actor, project_id, "review")
        for issue in model_store.fetch_issues_for_review(conn, project_id, sorted(set(item_ids))):
            if not model_store.send_to_review(conn, issue["item_id"], now):
                continue
            reason = (f"label-error audit: {issue['question']} is {issue['given']!r}, the model suggests "
                      f"{issue['suggested']!r} (P(label) {issue['self_confidence']:.2f}, rank {issue['rank']})")
            records.insert_event(conn, project_id, "item.needs_review", {
                "item_id": issue["item_id"], "status": "needs_review", "by": "model_audit", "reason": reason}, now)
            sent.append(issue["item_id"])
    return {"sent": sent, "skipped": sorted(set(item_ids) - set(sent))}


def request_training(ctx: Context, actor: Actor | None, project_id: int, embed_budget_s: float = 20.0) -> dict:
    """Train now when no other process works on the project's model (the pass runs in this
    call: it embeds the labeled items the model needs, then others for up to ``embed_budget_s``
    seconds; the worker embeds and pre-labels the rest), else ask the worker to (``queued``: true)."""
    now = now_ms()
    with write_tx(ctx.engine) as conn:
        project = _load(conn, actor, project_id, "manage")
        state = _ensure_state(conn, project_id, now)
        if model_question(ctx.get_schema(project), _settings(state)) is None:
            raise GoldlabelError("the project model learns a choice question and this project has none",
                                 code="no_choice_question", status=409)
        model_store.update_state(conn, project_id, train_requested=True, updated_at=now)
    summary = process_project(ctx, project_id, train=True, embed_budget_s=embed_budget_s)
    if summary.get("busy"):
        return {"queued": True, "status": status(ctx, actor, project_id)}
    if summary.get("error"):
        raise GoldlabelError(f"training failed: {summary['error']}", code="model_failed", status=409)
    return {"queued": False, "summary": summary, "status": status(ctx, actor, project_id)}


# ---------------------------------------------------------------- one pass over a project


def process_project(ctx: Context, project_id: int, *, train: bool = False, embed_budget_s: float = 20.0) -> dict:
    """One worker pass over the project (see the module docstring). Returns what it did;
    ``busy``: another process holds the project; ``error``: what failed (also recorded)."""
    now = now_ms()
    with write_tx(ctx.engine) as conn:
        project = project_store.fetch_project(conn, project_id)
        if project is None:
            return {"project_id": project_id, "skipped": "gone"}
        _ensure_state(conn, project_id, now)
        if not model_store.claim_project(conn, project_id, now, HOLD_MS):
            return {"project_id": project_id, "busy": True}
    summary: dict[str, Any] = {"project_id": project_id}
    try:
        _process(ctx, project, summary, train, embed_budget_s)
    except _ModelError as exc:
        summary["error"] = str(exc)
        _record_error(ctx, project_id, str(exc))
    finally:
        with write_tx(ctx.engine) as conn:
            model_store.update_state(conn, project_id, busy_until=None)
    return summary


class _ModelError(Exception):
    """An embedder or a model failed: recorded, the items stay with the humans."""


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
    settings = _settings(state)
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
    # an attempt that could not train), then every retrain_every new labels; and at once when
    # auto-labeling needs a threshold chosen on reviewed slice labels and the current one is not
    due = (train or bool(state["train_requested"])
           or (current is not None and settings["auto_label"] and not _threshold_fits(current, settings))
           or (n_labels >= settings["min_labels"]
               and new_labels >= (settings["retrain_every"] if current else 1)))
    # labeled items first when a training run is due: it needs their vectors
    if due:
        with read_tx(ctx.engine) as conn:
            labeled = model_store.fetch_training_labels(conn, pid, question.name)
        summary["embedded"] = _embed(ctx, pid, current, question, [r[0] for r in labeled], deadline=None,
                                    settings=settings)
    # The other items only once something reads their vectors: a model (now, or trained in this
    # pass: its predictions), or active learning (its diverse cold start). Before, a new project's
    # every item was embedded at once on the serving process's cores, which halved the annotate
    # loop's rate at 1 annotator on 2 cores (docs/benchmarks.md, "Annotate loop").
    if current is not None or due or settings["active_learning"] != "off":
        deadline = time.monotonic() + embed_budget_s
        summary["embedded"] = summary.get("embedded", 0) + _embed(ctx, pid, current, question, None, deadline,
                                                                       settings)
    else:
        summary.setdefault("embedded", 0)
    if due:
        current = _train(ctx, project, question, labeled, n_labels, settings, summary)
        if reviewed_slice_only(settings):
            summary["sent_to_review"] = _send_slice_to_review(ctx, pid, labeled, n_labels, settings)
    external_error = None
    if settings["external_model"]:
        summary["external_predicted"], external_error = _external(ctx, pid, question, settings)
        if external_error:
            summary["external_error"] = external_error
            _record_error(ctx, pid, external_error)
    if (current is not None and settings["auto_label"] and current.get("threshold", {}).get("threshold") is not None
            and _threshold_fits(current, settings)):
        summary["auto_labeled"] = _auto_label(ctx, pid, question, current, settings)
    summary["audits_checked"] = _check_audits(ctx, pid, settings, state)
    summary["prelabels_recorded"] = _record_prelabels(ctx, project, question, state)
    if settings["active_learning"] != "off":
        summary["prioritized"] = _prioritize(ctx, pid, question, settings, current is not None)
    if state.get("last_error") and not external_error:  # this pass went through: the error is over
        with write_tx(ctx.engine) as conn:
            model_store.update_state(conn, pid, last_error=None, last_error_at=None)


def _embed(ctx: Context, pid: int, current: dict | None, question, only: list[int] | None,
           deadline: float | None, settings: dict) -> int:
    from goldlabel.models import content_hash

    done = 0
    try:
        embedder = embedder_for(ctx)
    except Exception as exc:  # a missing wheel, a broken model file: recorded, humans go on
        raise _ModelError(f"the embedder could not be loaded: {exc}") from exc
    model = _load_params(current) if current else None
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
                raise _ModelError(f"the embedder failed on a batch of {len(todo)} texts: {exc}") from exc
            if vectors.shape != (len(todo), embedder.dim) or not np.isfinite(vectors).all():
                raise _ModelError(f"the embedder returned vectors of shape {vectors.shape} (or not finite), "
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
            _write_predictions(ctx, pid, current, question, ids, model.predict_proba(vectors), settings)
    return done


# ---------------------------------------------------------------- training


def _load_params(version: dict | None):
    """The version's fitted model, rebuilt from its stored weights (no pickle;
    ``goldlabel.models.scaleout`` writes and reads that format)."""
    if not version or not version.get("params"):
        return None
    from goldlabel.models.scaleout import model_from_params

    return model_from_params(version["params"])


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


def _train(ctx: Context, project: dict, question, labeled: list, n_labels: int, settings: dict,
           summary: dict) -> dict | None:
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
        raise _ModelError(f"training failed: {exc}") from exc
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
        _write_predictions(ctx, pid, version, question, batch_ids, model.predict_proba(vectors), settings)
    # The items it trained on get their out-of-fold prediction instead: the re-fit learns the
    # model's skill as an annotator from these, and an in-sample score would flatter it.
    for start in range(0, len(ids), PREDICT_BATCH):
        _write_predictions(ctx, pid, version, question, list(ids[start:start + PREDICT_BATCH]),
                           oof[start:start + PREDICT_BATCH], settings)
    return version


def _send_slice_to_review(ctx: Context, pid: int, labeled: list, n_labels: int, settings: dict) -> int:
    """review_calibration_slice: the calibration-slice items among ``labeled`` (the training
    run's final labels) whose label is the crowd's consensus go to review (``needs_review``, the
    review queue every reviewer works, an ``item.needs_review`` event with the reason). Accepted
    or fixed there, their label has source ``review`` and counts in the next bound. Gold items
    are never sent (their gold answer is the reference). Run after each training, so an item is
    sent at most ``retrain_every`` final labels after it became final. Returns how many."""
    ids = [r[0] for r in labeled if r[3] == "consensus"]
    if not ids:
        return 0
    wanted = [i for i, s in zip(ids, in_slice(ctx, ids, settings).tolist()) if s]
    if not wanted:
        return 0
    now = now_ms()
    reason = ("calibration slice: the auto-label threshold is chosen on reviewed slice labels only "
              "(setting review_calibration_slice)")
    with write_tx(ctx.engine) as conn:
        sent = model_store.send_final_to_review(conn, pid, wanted, now)
        if sent:
            records.insert_events(conn, [{"project_id": pid, "kind": "item.needs_review", "created_at": now,
                                          "payload": {"item_id": i, "status": "needs_review",
                                                      "by": "calibration_slice", "reason": reason}}
                                         for i in sent])
            # they left the final labels; their reviewed labels count as new ones when they return
            model_store.update_state(conn, pid, labels_at_train=max(0, n_labels - len(sent)))
    return len(sent)


def _taken_earlier(versions: list[dict], X: np.ndarray, calib: np.ndarray, question: str) -> np.ndarray:
    """Which rows of X (calibration rows only) an earlier auto-labeling version would have taken:
    its model's score at or above its threshold. A version over vectors of another size (another
    embedder) cannot score these and is left out."""
    from goldlabel.models import taken_earlier

    rows = np.flatnonzero(calib)
    scores, thresholds = [], []
    for version in versions:
        t = (version.get("threshold") or {}).get("threshold")
        model = _load_params(version) if version["question"] == question and t is not None else None
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


def _write_predictions(ctx: Context, pid: int, version: dict, question, ids: list[int], probas: np.ndarray,
                       settings: dict) -> None:
    """The items' predictions of ``version`` (replacing earlier ones), except on the calibration
    slice and on audits: their human labels judge the model, so they get no model output at all
    (no pre-label to anchor on, no model vote in their consensus, never an auto-label)."""
    if settings["external_model"] and settings["external_role"] == "annotator":
        return  # the external model's predictions are the items' model predictions
    labels = list(question.labels)
    codes = probas.argmax(axis=1)
    scores = probas[np.arange(len(codes)), codes]
    now = now_ms()
    name = model_store.MODEL_PREFIX + version["version"]
    ids = [int(i) for i in ids]
    sliced = in_slice(ctx, ids, settings)
    with write_tx(ctx.engine) as conn:
        audits = model_store.audit_item_ids(conn, pid, ids)
        blind = [i for i, s in zip(ids, sliced.tolist()) if s or i in audits]
        model_store.delete_model_predictions(conn, blind)
        blind_set = set(blind)
        model_store.replace_model_predictions(conn, pid, [
            {"item_id": i, "model_version": name, "value": {question.name: labels[c]}, "score": round(float(s), 6),
             "created_at": now}
            for i, c, s in zip(ids, codes.tolist(), scores.tolist()) if i not in blind_set])


# ---------------------------------------------------------------- external models

#: seconds a pass spends asking the external model (then the next pass goes on)
EXTERNAL_BUDGET_S = 20.0


def external_version(settings: dict) -> str:
    """The ``model_version`` of the external model's predictions: under the project model's
    prefix when it is the annotator (the consensus, the re-fit and active learning read those)."""
    name = "external:" + settings["external_model"]
    return model_store.MODEL_PREFIX + name if settings["external_role"] == "annotator" else name


def _external(ctx: Context, pid: int, question, settings: dict) -> tuple[int, str | None]:
    """Ask the external model for the open items it has not predicted yet, ``external_batch`` at
    a time, for up to EXTERNAL_BUDGET_S seconds; the calibration slice and audits are never sent
    (no model output there). Returns (predictions written, error or None). A call that fails
    (after its retries), times out or answers malformed ends the pass's asking: those items stay
    with the humans and the next pass asks again; predictions it gave for other items are kept."""
    from goldlabel.models.external import MalformedAnswer, build_request, parse_answer

    target, version = settings["external_model"], external_version(settings)
    labels = list(question.labels)
    deadline = time.monotonic() + EXTERNAL_BUDGET_S
    after, done = 0, 0
    while time.monotonic() < deadline:
        with read_tx(ctx.engine) as conn:
            rows = model_store.items_for_external(conn, pid, version, after, settings["external_batch"] * 4)
            if not rows:
                return done, None
            after = rows[-1][0]
            sliced = in_slice(ctx, [r[0] for r in rows], settings)
            audits = model_store.audit_item_ids(conn, pid, [r[0] for r in rows])
        rows = [r for r, s in zip(rows, sliced.tolist()) if not s and r[0] not in audits]
        for start in range(0, len(rows), settings["external_batch"]):
            batch = rows[start:start + settings["external_batch"]]
            request = build_request(pid, question.name, labels, batch)
            try:
                parsed = parse_answer(external_models.ask(ctx, target, request), [r[0] for r in batch], labels)
            except (external_models.ExternalModelError, MalformedAnswer) as exc:
                return done, f"external model {target}: {exc}"
            now = now_ms()
            out = [{"item_id": i, "model_version": version, "value": {question.name: label},
                    "score": round(score, 6), "created_at": now} for i, (label, score) in parsed.predictions.items()]
            with write_tx(ctx.engine) as conn:
                if settings["external_role"] == "annotator":
                    model_store.replace_model_predictions(conn, pid, out)
                else:
                    model_store.replace_predictions_of(conn, pid, version, out)
            done += len(out)
            if parsed.problems:
                more = f" (and {len(parsed.problems) - 3} more)" if len(parsed.problems) > 3 else ""
                return done, (f"external model {target}: malformed predictions: "
                              f"{'; '.join(parsed.problems[:3])}{more}")
    return done, None


# ---------------------------------------------------------------- auto-labeling and its audits


def _auto_label(ctx: Context, pid: int, question, version: dict, settings: dict) -> int:
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
        # a slice item has no prediction (_write_predictions); one written before the slice
        # existed is dropped here, never auto-labeled
        sliced = in_slice(ctx, [c[0] for c in candidates], settings)
        if sliced.any():
            with write_tx(ctx.engine) as conn:
                model_store.delete_model_predictions(conn, [c[0] for c, s in zip(candidates, sliced) if s])
            candidates = [c for c, s in zip(candidates, sliced.tolist()) if not s]
            if not candidates:
                continue
        audits = audit_mask(len(candidates), settings["audit_fraction"], rng)
        now = now_ms()
        with write_tx(ctx.engine) as conn:
            rows, events = [], []
            for (item_id, value, score), audit in zip(candidates, audits.tolist()):
                label = (value or {}).get(question.name)
                if audit:  # stays with the humans, without the model's output; compared with their label
                    model_store.delete_model_predictions(conn, [item_id])
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


def _check_audits(ctx: Context, pid: int, settings: dict, state: dict) -> int:
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


def _prioritize(ctx: Context, pid: int, question, settings: dict, has_model: bool) -> int:
    """Queue priorities of the open embedded items from the project's active-learning policy
    (goldlabel.models.active_priorities), written where they changed; returns how many. The
    lease only reads the column (its index orders by priority first), so none of this is on the
    annotate path. Uncertainty is the margin of the combined posterior: the consensus where
    humans answered (with the model's vote when it is an annotator), else the model's score;
    an item with neither counts as fully uncertain. Before the first model: a diverse cold start.

    The calibration slice is left out: its items keep the priority they have (0 unless a manager
    set one), and the model-ranked items get priorities below zero (the policy's order, shifted
    by ``PRIORITY_LEVELS + active_batch + 1``), so humans take the slice's items first, in the
    queue's own order, whatever the model thinks of them."""
    from goldlabel.models import PRIORITY_LEVELS, active_priorities, margin_uncertainty, top_probas

    n_classes = len(question.labels)
    parts = []
    with read_tx(ctx.engine) as conn:
        for rows in model_store.iter_priority_inputs(conn, pid, question.name):
            parts.append(np.array([(r[0], r[1], r[2], np.nan if r[3] is None else r[3],
                                    np.nan if r[4] is None else r[4]) for r in rows], dtype=np.float64))
        if not parts:
            return 0
        table = np.concatenate(parts)
        table = table[~in_slice(ctx, table[:, 0].astype(np.int64), settings)]
        if not len(table):
            return 0
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
        new = new - (PRIORITY_LEVELS + settings["active_batch"] + 1)
    changed = np.flatnonzero(new != old)
    done = 0
    for start in range(0, len(changed), PREDICT_BATCH):
        chunk = changed[start:start + PREDICT_BATCH]
        with write_tx(ctx.engine) as conn:
            done += model_store.set_priorities(conn, pid, list(zip(ids[chunk].tolist(), new[chunk].tolist())))
    return done


# ---------------------------------------------------------------- pre-label outcomes


def _record_prelabels(ctx: Context, project: dict, question, state: dict) -> int:
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


def prelabel_view(ctx: Context, actor: Actor | None, project_id: int) -> list[dict]:
    """Per annotator: how often they keep the model's pre-label unchanged, and on gold items
    their accuracy with and without a pre-label shown and how often they follow a wrong one
    (anchoring)."""
    with read_tx(ctx.engine) as conn:
        _load(conn, actor, project_id, "review")
        rows = model_store.prelabel_stats(conn, project_id)
    for r in rows:
        r["keep_rate"] = r["kept"] / r["shown"] if r["shown"] else None
        r["gold_accuracy_shown"] = r["gold_shown_correct"] / r["gold_shown"] if r["gold_shown"] else None
        r["gold_accuracy_hidden"] = r["gold_hidden_correct"] / r["gold_hidden"] if r["gold_hidden"] else None
        r["follow_wrong_rate"] = r["followed_wrong"] / r["wrong_prelabels"] if r["wrong_prelabels"] else None
    return rows
