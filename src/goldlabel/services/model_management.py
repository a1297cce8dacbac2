"""What a manager does with the project model, and what the console, the API and the CLI show
of it: its settings, its status (worker progress, errors, auto-labeling with its audit accuracy,
the versions), the label-error audit and sending its items back to review, training on demand,
and per annotator how pre-labels are kept. The work itself is the model worker's pass
(``services/model_worker.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import ValidationError

from goldlabel.domain.errors import FieldError, GoldlabelError, invalid, not_found
from goldlabel.services.access import Actor, load_project
from goldlabel.services.context import Context
from goldlabel.services.model_settings import ModelSettings, ensure_state, model_question, settings_of
from goldlabel.services.model_worker import process_project
from goldlabel.storage import consensus_events as records
from goldlabel.storage import models as model_store
from goldlabel.storage import projects as project_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx

ISSUES_LIMIT_MAX = 500


def update_settings(ctx: Context, actor: Actor | None, project_id: int, changes: dict) -> dict:
    now = now_ms()
    with write_tx(ctx.engine) as conn:
        project = _load(conn, actor, project_id, "manage")
        state = ensure_state(conn, project_id, now)
        merged = {**settings_of(state), **changes}
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
        if clean["auto_label"] and clean["active_learning"] != "off":
            raise invalid([FieldError(("active_learning",), "auto_label_with_active_learning",
                                      "auto-labeling needs the humans' labels to be a sample the model did not "
                                      "choose; turn active_learning off to auto-label (docs/models.md)")])
        values: dict[str, Any] = {"settings": clean, "updated_at": now}
        if clean["auto_label"] and not settings_of(state)["auto_label"]:
            values.update(auto_label_since=now, auto_label_off_reason=None)
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

    with read_tx(ctx.engine) as conn:
        project = _load(conn, actor, project_id, "review")
        state = model_store.fetch_state(conn, project_id)
        settings = settings_of(state)
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
        state = ensure_state(conn, project_id, now)
        if model_question(ctx.get_schema(project), settings_of(state)) is None:
            raise GoldlabelError("the project model learns a choice question and this project has none",
                                 code="no_choice_question", status=409)
        model_store.update_state(conn, project_id, train_requested=True, updated_at=now)
    summary = process_project(ctx, project_id, train=True, embed_budget_s=embed_budget_s)
    if summary.get("busy"):
        return {"queued": True, "status": status(ctx, actor, project_id)}
    if summary.get("error"):
        raise GoldlabelError(f"training failed: {summary['error']}", code="model_failed", status=409)
    return {"queued": False, "summary": summary, "status": status(ctx, actor, project_id)}



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
