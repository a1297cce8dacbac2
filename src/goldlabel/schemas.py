"""The wire contract (pydantic): XCreate / XUpdate / XPublic per resource.

Shared by ``api/`` (request parsing, response documentation) and ``client/`` (the SDK).
Changing a model here changes the public API: do it on purpose.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

Role = Literal["admin", "manager", "reviewer", "annotator"]
ItemStatus = Literal["open", "final", "needs_review"]
#: an item's status as a list shows it: "deleted" while a deleted item can still be restored
ItemFilterStatus = Literal["open", "final", "needs_review", "deleted"]


_LIMITS: Any = None


def _json_limits() -> Any:
    """goldlabel.domain.json_limits, imported on first use: the SDK imports this module and must
    not pull in the server's packages (tests/client/test_public_surface.py)."""
    global _LIMITS
    if _LIMITS is None:
        from goldlabel.domain import json_limits

        _LIMITS = json_limits
    return _LIMITS


class _In(BaseModel):
    """A request body. Every field must be storable (domain.json_limits): no NUL characters or
    lone surrogates in text, integers within 64 bits, JSON at most MAX_DEPTH levels deep; each
    refusal is a 422 with a stable code (issue 17, item 8). Models with ``no_nulls`` refuse an
    explicit ``null`` (``{"display_name": null}``): they change columns that cannot be NULL."""

    model_config = ConfigDict(extra="forbid")
    no_nulls: ClassVar[bool] = False

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any, info: ValidationInfo) -> Any:
        limits = _json_limits()
        kind = value.__class__
        if kind is str:
            code = limits.text_problem(value)
            if code is not None:
                raise PydanticCustomError(code, limits.MESSAGES[code])
        elif kind is int:
            if not limits.INT64_MIN <= value <= limits.INT64_MAX:
                raise PydanticCustomError("integer_out_of_range", limits.MESSAGES["integer_out_of_range"])
        elif kind is dict or kind is list:
            errors = limits.check_json(value)
            if errors:
                where = ".".join(str(p) for p in errors[0].loc)
                raise PydanticCustomError(errors[0].code, "{message}" + (" (at {where})" if where else ""),
                                          {"message": errors[0].message, "where": where})
        elif value is None and cls.no_nulls:
            raise PydanticCustomError("null_not_allowed", "{field} may be left out but not null",
                                      {"field": info.field_name})
        return value


class QualitySettings(_In):
    """Quality knobs of a project (stored in ``projects.settings``)."""

    target_confidence: float = Field(0.95, gt=0, le=1, description="An item is final once P(top answer) reaches this.")
    gold_rate: float = Field(0.0, ge=0, le=1, description="Share of served items that are gold, when gold exists.")
    qualification_gold: int = Field(0, ge=0, description="Gold answers an annotator gives before real work.")
    qualification_accuracy: float = Field(
        0.8, ge=0, le=1,
        description="Share of the qualification gold an annotator must pass (each kind by its gold_* rule).")
    suspend_below: float = Field(0.0, ge=0, le=1,
                                 description="Suspend an annotator whose estimated accuracy falls below.")
    show_predictions: bool = Field(False, description="Show model predictions to annotators as pre-labels.")
    max_leases_per_annotator: int = Field(4, ge=1, le=100, description="Live leases one annotator may hold (prefetch).")
    consensus_method: str = Field(
        "default", description="Aggregation method for choice questions: a name in goldlabel.quality.METHODS "
        "or an alias (goldlabel.quality.METHOD_ALIASES; \"default\" = the recommended DEFAULT_METHOD).")
    rating_tolerance: float | None = Field(
        None, gt=0, description="Rating questions: confidence is P(true rating within this of the consensus); "
        "default half a step (a twentieth of the range on a continuous scale).")
    text_similarity: float = Field(
        0.8, gt=0, le=1,
        description="Text questions: n-gram cosine similarity at which an answer agrees with the chosen one.")
    # Gold: when an answer passes its gold item, per question kind (goldlabel.quality.gold; docs/quality.md).
    gold_rating_tolerance: float | None = Field(
        None, ge=0, description="Gold, rating: an answer passes within this distance of the gold rating; "
        "default half a step (exact on a stepped scale; a twentieth of the range on a continuous scale).")
    gold_multi_choice_min_jaccard: float = Field(
        0.5, ge=0, le=1, description="Gold, multi_choice: Jaccard overlap of the label sets needed to pass.")
    gold_spans_min_iou: float = Field(
        0.5, gt=0, le=1, description="Gold, spans: character IoU at which an answer span matches a gold span.")
    gold_spans_min_f1: float = Field(0.8, ge=0, le=1, description="Gold, spans: span F1 needed to pass.")
    gold_boxes_min_iou: float = Field(
        0.5, gt=0, le=1, description="Gold, boxes: IoU at which an answer box matches a gold box.")
    gold_boxes_min_f1: float = Field(0.8, ge=0, le=1, description="Gold, boxes: box F1 needed to pass.")
    gold_polygons_min_iou: float = Field(
        0.5, gt=0, le=1, description="Gold, polygons: IoU at which an answer polygon matches a gold polygon.")
    gold_polygons_min_f1: float = Field(0.8, ge=0, le=1, description="Gold, polygons: polygon F1 needed to pass.")
    gold_keypoints_min_oks: float = Field(
        0.5, gt=0, le=1, description="Gold, keypoints: object keypoint similarity (OKS) at which an answer "
        "instance matches a gold instance.")
    gold_keypoints_min_f1: float = Field(0.8, ge=0, le=1, description="Gold, keypoints: instance F1 needed to pass.")
    gold_ranking_min_tau: float = Field(
        0.5, ge=-1, le=1, description="Gold, ranking: Kendall's tau with the gold order needed to pass.")
    gold_text_min_similarity: float = Field(
        0.8, ge=0, le=1, description="Gold, text: normalized edit similarity needed to pass.")
    split_ratios: tuple[float, float, float] = Field(
        (0.8, 0.1, 0.1), description="Train, validation and test shares of the items (a stable hash of each "
        "external_id decides an item's split); the training export formats use them.")

    @field_validator("split_ratios")
    @classmethod
    def _split_ratios(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(not 0 <= share <= 1 for share in value) or abs(sum(value) - 1) > 1e-6:
            raise ValueError("split_ratios: three shares in [0, 1] (train, validation, test) summing to 1")
        return value
    no_annotator_left: Literal["review", "final"] = Field(
        "review", description="An open item that no eligible annotator is left to answer (every active annotator "
        "member answered or skipped it) goes to review, or is final with the consensus it has.")
    single_answer: Literal["review", "final"] = Field(
        "review", description="With overlap_max 1, an item whose one answer does not reach target_confidence goes "
        "to review, or is final with that answer (confidence as computed).")

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


class SchemaVersionPublic(BaseModel):
    """One label schema a project has had; answers keep the meaning of the version they were given under."""

    version: int
    label_schema: dict[str, Any]
    created_by: int | None
    created_at: int
    answers: int = Field(description="Answers given under this version (version 1: also those from before "
                         "versions were recorded).")


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
    schema_version: int = Field(1, description="The number of the current label_schema (see GET .../schema-versions).")
    role: str | None = Field(None, description="The caller's role in this project.")
    counts: dict[str, int] | None = Field(None, description="Items per status (managers only).")


class UserCreate(_In):
    username: str = Field(min_length=1, max_length=150, pattern=r"^[A-Za-z0-9_.@+-]+$")
    role: Role = "annotator"
    password: str | None = Field(None, min_length=8, max_length=1024)
    display_name: str = ""


class UserUpdate(_In):
    no_nulls: ClassVar[bool] = True
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


class TotpStatus(BaseModel):
    enabled: bool = Field(description="Two-factor login is on: a password login also asks for a code.")
    pending: bool = Field(description="An enrolment was started and waits for its first code.")
    enabled_at: int | None = None
    recovery_codes_left: int = 0
    required: bool = Field(description="The user's role must use two-factor login (totp_required_roles).")


class TotpEnrolment(BaseModel):
    secret: str = Field(description="Base32 secret for the authenticator app: shown this once.")
    otpauth_uri: str = Field(description="The same as an otpauth:// URI (for a QR code).")


class TotpCode(_In):
    code: str = Field(min_length=1, max_length=40, description="6 digits from the app (or a recovery code).")


class TotpDisable(_In):
    code: str | None = Field(None, max_length=40,
                             description="A current code or a recovery code; an admin turning off "
                             "another user's two-factor login needs none.")


class TotpRecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(description="Ten single-use codes, shown this once.")


class AuditEntry(BaseModel):
    id: int
    at: int = Field(description="Milliseconds since the epoch.")
    actor_id: int | None = Field(description="null: the local operator (CLI), or a failed login.")
    actor_name: str
    action: str
    project_id: int | None
    target_type: str
    target_id: str
    address: str = Field(description="Client address (logins only).")
    detail: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_before: int | None = Field(None, description="Pass as ?before= for the next (older) page; null at the end.")


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
    status: ItemFilterStatus
    is_gold: bool
    answer_count: int
    target_overlap: int
    created_at: int
    updated_at: int
    flag: str | None = Field(None, description="Why an annotator reported the item (media_broken), if one did.")
    flagged_by: int | None = None
    flagged_at: int | None = None
    deleted_at: int | None = Field(None, description="Set while the item is deleted and can still be restored.")



class ItemFilter(_In):
    """Which items a bulk action applies to: the item list's filters (every matching item, not
    only one page). An empty filter matches every (live) item of the project."""

    status: ItemFilterStatus | None = None
    is_gold: bool | None = None
    annotator_id: int | None = None
    question: str | None = Field(None, max_length=200)
    label: str | None = None
    min_confidence: float | None = Field(None, ge=0, le=1)
    max_confidence: float | None = Field(None, ge=0, le=1)
    disagreement: bool = False
    q: str | None = Field(None, min_length=1, max_length=200, description="Text in the data or the external_id.")
    source: Literal["consensus", "review", "gold", "auto"] | None = None
    flag: Literal["media_broken"] | None = None
    split: Literal["train", "validation", "test"] | None = None
    meta: dict[str, str] | None = Field(None, max_length=10, description="meta key = value, all must match.")


class BulkItemsRequest(_In):
    action: Literal["review", "priority", "delete"] = Field(
        description="review: open and final items go to review; priority: set `priority`; delete: soft "
        "delete (restorable for delete_undo_s)."
    )
    priority: int | None = Field(None, ge=-(2**31), le=2**31 - 1, description="For action priority.")
    item_ids: list[int] | None = Field(None, min_length=1, max_length=1000, description="These items ...")
    filter: ItemFilter | None = Field(None, description="... or every item matching this filter.")


class BulkItemsResult(BaseModel):
    action: str
    matched: int = Field(description="Items the selection matched.")
    changed: int = Field(description="Items the action changed (the others already were so).")
    batches: int = Field(description="Transactions the action ran in (bounded batches).")
    deleted_at: int | None = Field(None, description="delete: pass to items/restore to undo.")
    undo_until: int | None = Field(None, description="delete: restorable until this time (ms).")


class RestoreItemsRequest(_In):
    item_ids: list[int] | None = Field(None, min_length=1, max_length=1000)
    deleted_at: int | None = Field(None, description="Every item one delete removed (its deleted_at).")


class RestoreResult(BaseModel):
    restored: int


class ItemReport(_In):
    reason: Literal["media_broken"] = "media_broken"
    lease_token: str | None = Field(
        None, max_length=200, description="An annotator's lease on the item: it is skipped, not answered."
    )


class TaskItem(BaseModel):
    """An item as an annotator sees it: nothing that tells gold from normal work (Q8)."""

    id: str = Field(description="The item's opaque reference: the same for you every time you meet the item, "
                                "another for anyone else; it reveals nothing of the item's id or import "
                                "(docs/security.md).")
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


ItemRef = TypeVar("ItemRef", int, str)


class _Answer(BaseModel, Generic[ItemRef]):
    """The fields of an answer, declared once; ``ItemRef`` is how it names its item."""

    id: int
    item_id: ItemRef
    annotator_id: int
    value: dict[str, Any]
    status: str
    duration_ms: int | None = None
    created_at: int
    updated_at: int


# An answer as a manager sees it: the item by its id. (No docstring: it would become the
# schema's description in the OpenAPI document, which has none.)
class AnswerPublic(_Answer[int]):
    pass


class OwnAnswer(_Answer[str]):
    """An answer as its annotator sees it (the annotate loop): the item by its opaque
    reference (TaskItem.id), not its id."""


class SubmitResult(BaseModel):
    answer: OwnAnswer
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
    source: str = Field("consensus", description="Where the label came from: consensus (the answers), review "
                        "(accepted or fixed by a reviewer: final, kept by every re-fit), gold; auto is reserved.")
    reviewer_id: int | None = Field(None, description="Who accepted or fixed it (source review).")
    reviewed_at: int | None = Field(None, description="When it was reviewed (ms since the epoch).")


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
    answers: int = Field(0, description="Answers written (a Label Studio import's annotations).")
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


class SnapshotCreate(_In):
    name: str = Field(min_length=1, max_length=200, description="Unique in the project.")
    format: str = Field("jsonl",
                        description="Any export format: jsonl, csv, parquet, coco, yolo, voc, conll, spacy, hf.")
    status: ItemStatus | None = None
    include_gold: bool = False
    include_predictions: bool = False
    pseudonymous: bool = True
    question: str | None = None
    min_confidence: float | None = Field(None, ge=0, le=1)


class SnapshotPublic(BaseModel):
    id: int
    project_id: int
    name: str
    format: str
    options: dict[str, Any]
    item_count: int
    size_bytes: int
    sha256: str
    created_by: int | None
    created_at: int


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, Any]] = []
