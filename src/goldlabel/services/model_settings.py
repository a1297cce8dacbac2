"""A project model's settings and state, as every part of the platform reads them: the
manager's use cases (``services/model_management.py``), the model worker's pass
(``services/model_worker.py``) and the re-fit, which counts the model as one more annotator
(``annotator_question``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from goldlabel.domain.label_schema import LabelSchema
from goldlabel.storage import models as model_store


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


DEFAULTS = ModelSettings().model_dump()


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
    settings = settings_of(state)
    question = model_question(schema, settings)
    if state is None or not settings["model_annotator"] or question is None:
        return None
    return question.name if model_store.fetch_current_version(conn, project["id"]) is not None else None


def settings_of(state: dict | None) -> dict:
    """A project's model settings: the defaults, overridden by what its manager set."""
    return {**DEFAULTS, **((state or {}).get("settings") or {})}


def ensure_state(conn, project_id: int, now: int) -> dict:
    return model_store.ensure_state(conn, project_id, dict(DEFAULTS), now)

