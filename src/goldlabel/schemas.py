"""The wire contract (pydantic): XCreate / XUpdate / XPublic per resource.

Shared by ``api/`` (request parsing, response documentation) and ``client/`` (the SDK).
Changing a model here changes the public API: do it on purpose.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Role = Literal["admin", "manager", "reviewer", "annotator"]
ItemStatus = Literal["open", "final", "needs_review"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QualitySettings(_In):
    """Quality knobs of a project (stored in ``projects.settings``)."""

    target_confidence: float = Field(0.95, gt=0, le=1, description="An item is final once P(top answer) reaches this.")
    gold_rate: float = Field(0.0, ge=0, le=1, description="Share of served items that are gold, when gold exists.")
    qualification_gold: int = Field(0, ge=0, description="Gold answers an annotator gives before real work.")
    qualification_accuracy: float = Field(0.0, ge=0, le=1, description="Gold accuracy needed to pass qualification.")
    suspend_below: float = Field(0.0, ge=0, le=1, description="Suspend an annotator whose estimated accuracy falls below.")
    show_predictions: bool = Field(False, description="Show model predictions to annotators as pre-labels.")
    max_leases_per_annotator: int = Field(4, ge=1, le=100, description="Live leases one annotator may hold (prefetch).")
    consensus_method: str = Field(
        "default", description="Aggregation method for choice questions: a name in goldlabel.quality.METHODS "
        "or an alias (goldlabel.quality.METHOD_ALIASES; \"default\" = the recommended DEFAULT_METHOD).")
    rating_tolerance: float | None = Field(
        None, gt=0, description="Rating questions: confidence is P(true rating within this of the consensus); "
        "default half a step (a twentieth of the range on a continuous scale).")
    text_similarity: float = Field(
        0.8, gt=0, le=1, description="Text questions: n-gram cosine similarity at which an answer agrees with the chosen one.")

    @field_validator("consensus_method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        # imported here: the SDK imports this module and needs the quality engine only to validate
        from goldlabel.quality import resolve_method

        resolve_method(value)  # a ValueError naming the valid methods -> 422
        return value


class ProjectCreate(_In):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    instructions: str = ""
    label_schema: dict[str, Any]
    overlap_min: int = Field(1, ge=1, le=1000)
    overlap_max: int | None = Field(None, ge=1, le=1000, description="Defaults to overlap_min.")
    lease_ttl_s: int | None = Field(None, ge=5, le=7 * 24 * 3600)
    settings: QualitySettings = Field(default_factory=QualitySettings)

    @model_validator(mode="after")
    def _overlap(self) -> ProjectCreate:
        if self.overlap_max is not None and self.overlap_max < self.overlap_min:
            raise ValueError("overlap_max must be >= overlap_min")
        return self


class ProjectUpdate(_In):
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = None
    instructions: str | None = None
    label_schema: dict[str, Any] | None = None
    overlap_min: int | None = Field(None, ge=1, le=1000)
    overlap_max: int | None = Field(None, ge=1, le=1000)
    lease_ttl_s: int | None = Field(None, ge=5, le=7 * 24 * 3600)
    settings: dict[str, Any] | None = Field(None, description="Partial QualitySettings; merged into the current ones.")


class ProjectPublic(BaseModel):
    id: int
    name: str
    description: str
    instructions: str
    label_schema: dict[str, Any]
    overlap_min: int
    overlap_max: int
    lease_ttl_s: int
    settings: dict[str, Any]
    created_at: int
    updated_at: int
    role: str | None = Field(None, description="The caller's role in this project.")
    counts: dict[str, int] | None = Field(None, description="Items per status (managers only).")


class UserCreate(_In):
    username: str = Field(min_length=1, max_length=150, pattern=r"^[A-Za-z0-9_.@+-]+$")
    role: Role = "annotator"
    password: str | None = Field(None, min_length=8, max_length=1024)
    display_name: str = ""


class UserUpdate(_In):
    display_name: str | None = None
    password: str | None = Field(None, min_length=8, max_length=1024)
    role: Role | None = None
    is_active: bool | None = None


class UserPublic(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    is_active: bool
    created_at: int


class TokenCreate(_In):
    name: str = Field("", max_length=200)


class TokenPublic(BaseModel):
    id: int
    user_id: int
    name: str
    prefix: str
    created_at: int
    last_used_at: int | None = None
    revoked_at: int | None = None
    token: str | None = Field(None, description="The secret token: present once, in the creation response.")


class MemberSet(_In):
    user_id: int
    role: Role = "annotator"


class MemberPublic(BaseModel):
    user_id: int
    username: str
    display_name: str
    role: str


class PredictionIn(_In):
    value: dict[str, Any]
    score: float | None = None
    model_version: str = ""


class ItemCreate(_In):
    external_id: str = Field(min_length=1, max_length=255)
    data: dict[str, Any]
    priority: int = 0
    meta: dict[str, Any] | None = None
    predictions: list[PredictionIn] | None = None
    gold: dict[str, Any] | None = Field(None, description="Known answer: makes the item a gold item.")


class ItemPublic(BaseModel):
    """An item as managers and reviewers see it."""

    id: int
    external_id: str
    data: dict[str, Any]
    meta: dict[str, Any] | None = None
    priority: int
    status: ItemStatus
    is_gold: bool
    answer_count: int
    target_overlap: int
    created_at: int
    updated_at: int


class TaskItem(BaseModel):
    """An item as an annotator sees it: nothing that tells gold from normal work (Q8)."""

    id: int
    data: dict[str, Any]
    predictions: list[dict[str, Any]] | None = None


class LeasePublic(BaseModel):
    token: str
    expires_at: int
    item: TaskItem


class AnswerSubmit(_In):
    lease_token: str = Field(min_length=1, max_length=200)
    value: dict[str, Any]
    duration_ms: int | None = Field(None, ge=0)


class LeaseAction(_In):
    lease_token: str = Field(min_length=1, max_length=200)


class AnswerPublic(BaseModel):
    id: int
    item_id: int
    annotator_id: int
    value: dict[str, Any]
    status: str
    duration_ms: int | None = None
    created_at: int
    updated_at: int


class SubmitResult(BaseModel):
    answer: AnswerPublic
    item_status: ItemStatus


class ConsensusPublic(BaseModel):
    question: str
    value: Any = None
    confidence: float | None = None
    method: str
    status: str
    contributions: Any = None
    agreement: float | None = Field(None, description="Share of answers matching the consensus value (choice).")
    updated_at: int


class ItemDetail(ItemPublic):
    answers: list[AnswerPublic]
    predictions: list[dict[str, Any]]
    consensus: list[ConsensusPublic]
    gold: dict[str, Any] | None = None


class ImportReport(BaseModel):
    ok: bool
    format: str
    rows: int = Field(description="Rows read from the file.")
    created: int
    updated: int
    skipped: int
    errors: list[dict[str, Any]] = Field(description="At most the first 100: line, loc, code, message.")
    error_count: int


class Page(BaseModel):
    items: list[Any]
    next_after: int | None = Field(None, description="Pass as ?after= to get the next page; null at the end.")


class EventPublic(BaseModel):
    id: int
    kind: str
    payload: dict[str, Any]
    created_at: int


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, Any]] = []
