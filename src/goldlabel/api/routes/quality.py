"""Quality: annotators (skill, gold record, status), agreement, re-fit, review."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from goldlabel.api.deps import ContextDep, CurrentActor
from goldlabel.schemas import _In
from goldlabel.services import annotators
from goldlabel.services import refit as refit_service
from goldlabel.services import review as review_service

router = APIRouter(prefix="/projects/{project_id}", tags=["quality"])


class AnnotatorStatusSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["active", "suspended"]


class ReviewCreate(_In):  # _In: text and values storable (no NUL, no lone surrogates)
    action: Literal["accept", "reject", "fix"]
    value: dict[str, Any] | None = Field(None, description="The corrected answer (fix only).")
    comment: str = Field("", max_length=5000)


@router.get("/annotators")
def list_annotators(project_id: int, ctx: ContextDep, actor: CurrentActor) -> list[dict[str, Any]]:
    """Every annotator who answered: answers, gold accuracy, skill with interval, status, evidence."""
    return annotators.list_annotators(ctx, actor, project_id)


@router.patch("/annotators/{annotator_id}")
def set_annotator_status(
    project_id: int, annotator_id: int, body: AnnotatorStatusSet, ctx: ContextDep, actor: CurrentActor
) -> dict[str, Any]:
    """Suspend or reinstate an annotator in this project."""
    return annotators.set_annotator_status(ctx, actor, project_id, annotator_id, body.status)


@router.get("/agreement")
def get_agreement(project_id: int, ctx: ContextDep, actor: CurrentActor) -> dict[str, Any]:
    """Krippendorff's alpha and Fleiss' kappa per choice question."""
    return annotators.compute_agreement(ctx, actor, project_id)


@router.post("/refit")
def refit(project_id: int, ctx: ContextDep, actor: CurrentActor) -> dict[str, Any]:
    """Re-fit the aggregation model now (it also runs in the background)."""
    return refit_service.refit_project(ctx, actor, project_id)


@router.post("/items/{item_id}/reviews", status_code=status.HTTP_201_CREATED)
def review_item(
    project_id: int, item_id: int, body: ReviewCreate, ctx: ContextDep, actor: CurrentActor
) -> dict[str, Any]:
    """Accept the consensus, reject the item back to the queue, or fix its answer."""
    return review_service.review_item(ctx, actor, project_id, item_id, body.action, body.value, body.comment)


@router.get("/items/{item_id}/reviews")
def list_reviews(project_id: int, item_id: int, ctx: ContextDep, actor: CurrentActor) -> list[dict[str, Any]]:
    return review_service.list_reviews(ctx, actor, project_id, item_id)
