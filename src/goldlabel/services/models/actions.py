"""What a manager asks of the project model: new settings (checked against the schema and each
other) and a training run now."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from goldlabel.domain.errors import FieldError, GoldlabelError, invalid
from goldlabel.services import external_models
from goldlabel.services.access import Actor
from goldlabel.services.context import Context
from goldlabel.services.models.settings import (
    ModelSettings,
    ensure_state,
    model_question,
    project_for,
    reviewed_slice_only,
    settings_of,
)
from goldlabel.services.models.views import status
from goldlabel.services.models.worker import process_project
from goldlabel.storage import consensus_events as records
from goldlabel.storage import models as model_store
from goldlabel.storage.engine import now_ms, write_tx


def update_settings(ctx: Context, actor: Actor | None, project_id: int, changes: dict) -> dict:
    now = now_ms()
    with write_tx(ctx.engine) as conn:
        project = project_for(conn, actor, project_id, "manage")
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
        if clean["auto_label"] and not settings_of(state)["auto_label"]:
            values.update(auto_label_since=now, auto_label_off_reason=None)
        if reviewed_slice_only(clean) and not reviewed_slice_only(settings_of(state)):
            # the current threshold was chosen on crowd labels: choose it again on reviewed ones
            # (and send the final slice items to review) in the worker's next pass
            values.update(train_requested=True)
        model_store.update_state(conn, project_id, **values)
        records.insert_event(conn, project_id, "model.settings_changed", {"settings": clean}, now)
    return status(ctx, actor, project_id)


def request_training(ctx: Context, actor: Actor | None, project_id: int, embed_budget_s: float = 20.0) -> dict:
    """Train now when no other process works on the project's model (the pass runs in this
    call: it embeds the labeled items the model needs, then others for up to ``embed_budget_s``
    seconds; the worker embeds and pre-labels the rest), else ask the worker to (``queued``: true)."""
    now = now_ms()
    with write_tx(ctx.engine) as conn:
        project = project_for(conn, actor, project_id, "manage")
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
