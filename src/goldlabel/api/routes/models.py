"""The project model: status and versions, training on demand, settings (auto-labeling), and
the label-error audit (docs/models.md)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from goldlabel.api.deps import ContextDep, CurrentActor
from goldlabel.services import models as model_service

router = APIRouter(prefix="/projects/{project_id}/models", tags=["models"])


class ModelSettingsUpdate(BaseModel):
    """The settings to change; the others keep their values (see ``GET .../models``)."""

    model_config = ConfigDict(extra="forbid")

    question: str | None = Field(None, description="The choice question the model learns.")
    retrain_every: int | None = Field(None, description="Retrain after this many new final labels.")
    min_labels: int | None = Field(None, description="Final labels needed before the first model.")
    auto_label: bool | None = Field(None, description="Auto-label above the calibrated threshold.")
    target: float | None = Field(None, description="Accuracy the auto-labels must reach, with the bound.")
    delta: float | None = Field(None, description="Risk level of the bound.")
    audit_fraction: float | None = Field(None, description="Share of auto-label candidates sent to humans.")
    model_annotator: bool | None = Field(None, description="Count the model's prediction as one more annotator.")
    active_learning: Literal["off", "uncertainty", "uncertainty_diversity"] | None = Field(
        None, description="Queue order from the model (off leaves the priorities as they are).")
    active_batch: int | None = Field(None, description="Items the diversity step ranks first per pass.")
    calibration_fraction: float | None = Field(
        None, description="Share of the items in the calibration slice (uniformly random, humans only).")
    review_calibration_slice: bool | None = Field(
        None, description="With auto-labeling on: final slice items go to review and the threshold is chosen on "
        "reviewed (and gold) slice labels only (default true).")
    external_model: str | None = Field(
        None, description="An external model: an http(s) URL speaking the protocol, or a registered entry "
        "point's name; null: none.")
    external_role: Literal["predictor", "annotator"] | None = Field(
        None, description="predictor (pre-labels) or annotator (takes the project model's place).")
    external_batch: int | None = Field(None, description="Items per call to the external model.")


@router.get("")
def model_status(project_id: int, ctx: ContextDep, actor: CurrentActor) -> dict[str, Any]:
    """Settings, embedding progress, the last error, auto-labeling (threshold, audits and their
    achieved accuracy) and the model versions with their metrics, newest first."""
    return model_service.status(ctx, actor, project_id)


@router.post("/train")
def train_model(project_id: int, ctx: ContextDep, actor: CurrentActor) -> dict[str, Any]:
    """Embed what the labeled items need and train a new version now (``queued``: true when
    another process is working on the project's model; its worker trains next)."""
    return model_service.request_training(ctx, actor, project_id)


@router.patch("/settings")
def update_model_settings(project_id: int, body: ModelSettingsUpdate, ctx: ContextDep,
                          actor: CurrentActor) -> dict[str, Any]:
    """Change the model settings (managers); answers the status as ``GET .../models`` does."""
    return model_service.update_settings(ctx, actor, project_id, body.model_dump(exclude_unset=True))


@router.get("/audit")
def label_audit(project_id: int, ctx: ContextDep, actor: CurrentActor,
                limit: int = Query(100, description="At most this many, most suspicious first (1..500).")
                ) -> list[dict[str, Any]]:
    """Final labels the newest model version calls likely wrong (confident learning on its
    out-of-fold probabilities), ranked: item, given label, suggested label, self-confidence."""
    return model_service.label_audit(ctx, actor, project_id, limit)


class IssuesToReview(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_ids: list[int] = Field(description="Flagged items to send back to review (1..500).")


@router.post("/audit/review")
def send_issues_to_review(project_id: int, body: IssuesToReview, ctx: ContextDep,
                          actor: CurrentActor) -> dict[str, Any]:
    """Send flagged items back to review with the audit's reason (items whose final label came
    from the answers; reviewed, gold and auto-labeled ones are skipped) → ``{sent, skipped}``."""
    return model_service.send_issues_to_review(ctx, actor, project_id, body.item_ids)
