"""What the console, the API and the CLI show of a project model: its status (settings, worker
progress and errors, auto-labeling and its audits, the model as an annotator, pre-label
outcomes, versions)."""

from __future__ import annotations

import numpy as np

from goldlabel.services.access import Actor
from goldlabel.services.context import Context
from goldlabel.services.models.settings import model_question, project_for, reviewed_slice_only, settings_of
from goldlabel.storage import models as model_store
from goldlabel.storage.engine import read_tx


def status(ctx: Context, actor: Actor | None, project_id: int) -> dict:
    """Settings, worker progress and errors, auto-labeling state with its achieved audit
    accuracy, and the versions with their metrics (newest first)."""
    from goldlabel.models import check_audits
    from goldlabel.models.autolabel import min_start_count

    with read_tx(ctx.engine) as conn:
        project = project_for(conn, actor, project_id, "review")
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


def prelabel_view(ctx: Context, actor: Actor | None, project_id: int) -> list[dict]:
    """Per annotator: how often they keep the model's pre-label unchanged, and on gold items
    their accuracy with and without a pre-label shown and how often they follow a wrong one
    (anchoring)."""
    with read_tx(ctx.engine) as conn:
        project_for(conn, actor, project_id, "review")
        rows = model_store.prelabel_stats(conn, project_id)
    for r in rows:
        r["keep_rate"] = r["kept"] / r["shown"] if r["shown"] else None
        r["gold_accuracy_shown"] = r["gold_shown_correct"] / r["gold_shown"] if r["gold_shown"] else None
        r["gold_accuracy_hidden"] = r["gold_hidden_correct"] / r["gold_hidden"] if r["gold_hidden"] else None
        r["follow_wrong_rate"] = r["followed_wrong"] / r["wrong_prelabels"] if r["wrong_prelabels"] else None
    return rows
