"""A project model's settings (:class:`ModelSettings`, stored in its ``model_state`` row with the
worker's progress), the question the model learns, and the project lookup every entry point of
this package shares."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from goldlabel.domain.errors import not_found
from goldlabel.domain.label_schema import LabelSchema
from goldlabel.services.access import Actor, load_project
from goldlabel.storage import models as model_store
from goldlabel.storage import projects as project_store


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
    if settings["external_model"] and settings["external_role"] == "annotator":
        return question.name  # the external model's predictions are the votes
    return question.name if model_store.fetch_current_version(conn, project["id"]) is not None else None


def settings_of(state: dict | None) -> dict:
    """The model settings in a project's state: the defaults under the stored ones (no state: the
    defaults)."""
    return {**DEFAULTS, **((state or {}).get("settings") or {})}


def reviewed_slice_only(settings: dict) -> bool:
    """Whether the auto-label bound takes reviewed (and gold) slice labels only, and final slice
    items go to review: the setting ``review_calibration_slice`` while auto-labeling is on."""
    return bool(settings["auto_label"] and settings["review_calibration_slice"])


def threshold_fits(version: dict, settings: dict) -> bool:
    """A version's threshold may auto-label under these settings: with reviewed slice labels
    required, only one chosen on them (a version trained before the setting, or before
    auto-labeling was turned on, bounded on crowd consensus and is retrained first)."""
    return not reviewed_slice_only(settings) or (version.get("threshold") or {}).get("labels") == "reviewed"


def ensure_state(conn, project_id: int, now: int) -> dict:
    """The project's model state, made with the default settings when it has none."""
    return model_store.ensure_state(conn, project_id, dict(DEFAULTS), now)


def project_for(conn, actor: Actor | None, project_id: int, need: str) -> dict:
    """The project, loaded for the actor with the ``need`` role (``services.access.load_project``);
    no actor (the worker, the CLI, the demo): any project that exists."""
    if actor is None:
        project = project_store.fetch_project(conn, project_id)
        if project is None:
            raise not_found("project")
        return project
    return load_project(conn, actor, project_id, need)
