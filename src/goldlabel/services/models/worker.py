"""One pass of the model worker over a project (:func:`process_project`; the steps are the
package docstring's): claim the project, embed, train when due, ask the external model,
auto-label, check audits, record pre-label outcomes, set queue priorities; a failure is
recorded and the claim released."""

from __future__ import annotations

import time
from typing import Any

from goldlabel.services.context import Context
from goldlabel.services.models.autolabel import auto_label, check_finished_audits, send_slice_to_review
from goldlabel.services.models.embedding import embed_items
from goldlabel.services.models.errors import ModelError, record_error
from goldlabel.services.models.external import ask_external_model
from goldlabel.services.models.prelabels import record_prelabels
from goldlabel.services.models.priorities import prioritize
from goldlabel.services.models.settings import (
    ensure_state,
    model_question,
    reviewed_slice_only,
    settings_of,
    threshold_fits,
)
from goldlabel.services.models.training import train_version
from goldlabel.storage import models as model_store
from goldlabel.storage import projects as project_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx

#: how long a pass holds its claim on a project (another process skips it meanwhile)
HOLD_MS = 10 * 60 * 1000


def process_project(ctx: Context, project_id: int, *, train: bool = False, embed_budget_s: float = 20.0) -> dict:
    """One worker pass over the project (see the package docstring). Returns what it did;
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
    except ModelError as exc:
        summary["error"] = str(exc)
        record_error(ctx, project_id, str(exc))
    finally:
        with write_tx(ctx.engine) as conn:
            model_store.update_state(conn, project_id, busy_until=None)
    return summary


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
    # an attempt that could not train), then every retrain_every new labels; and at once when
    # auto-labeling needs a threshold chosen on reviewed slice labels and the current one is not
    due = (train or bool(state["train_requested"])
           or (current is not None and settings["auto_label"] and not threshold_fits(current, settings))
           or (n_labels >= settings["min_labels"]
               and new_labels >= (settings["retrain_every"] if current else 1)))
    # labeled items first when a training run is due: it needs their vectors
    if due:
        with read_tx(ctx.engine) as conn:
            labeled = model_store.fetch_training_labels(conn, pid, question.name)
        summary["embedded"] = embed_items(ctx, pid, current, question, [r[0] for r in labeled], deadline=None,
                                          settings=settings)
    # The other items only once something reads their vectors: a model (now, or trained in this
    # pass: its predictions), or active learning (its diverse cold start). Before, a new project's
    # every item was embedded at once on the serving process's cores, which halved the annotate
    # loop's rate at 1 annotator on 2 cores (docs/benchmarks.md, "Annotate loop").
    if current is not None or due or settings["active_learning"] != "off":
        deadline = time.monotonic() + embed_budget_s
        summary["embedded"] = summary.get("embedded", 0) + embed_items(ctx, pid, current, question, None,
                                                                       deadline, settings)
    else:
        summary.setdefault("embedded", 0)
    if due:
        current = train_version(ctx, project, question, labeled, n_labels, settings, summary)
        if reviewed_slice_only(settings):
            summary["sent_to_review"] = send_slice_to_review(ctx, pid, labeled, n_labels, settings)
    external_error = None
    if settings["external_model"]:
        summary["external_predicted"], external_error = ask_external_model(ctx, pid, question, settings)
        if external_error:
            summary["external_error"] = external_error
            record_error(ctx, pid, external_error)
    if (current is not None and settings["auto_label"] and current.get("threshold", {}).get("threshold") is not None
            and threshold_fits(current, settings)):
        summary["auto_labeled"] = auto_label(ctx, pid, question, current, settings)
    summary["audits_checked"] = check_finished_audits(ctx, pid, settings, state)
    summary["prelabels_recorded"] = record_prelabels(ctx, project, question, state)
    if settings["active_learning"] != "off":
        summary["prioritized"] = prioritize(ctx, pid, question, settings, current is not None)
    if state.get("last_error") and not external_error:  # this pass went through: the error is over
        with write_tx(ctx.engine) as conn:
            model_store.update_state(conn, pid, last_error=None, last_error_at=None)
