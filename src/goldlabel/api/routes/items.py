"""Items (browse, detail, delete and restore, bulk actions, report), the project's answers and events."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, status

from goldlabel.api.deps import ContextDep, CurrentActor, PageDep, page
from goldlabel.domain.errors import GoldlabelError
from goldlabel.schemas import (
    BulkItemsRequest,
    BulkItemsResult,
    ImportReport,
    ItemDetail,
    ItemFilterStatus,
    ItemReport,
    Page,
    RestoreItemsRequest,
    RestoreResult,
)
from goldlabel.services import import_rows
from goldlabel.services import items as item_service

router = APIRouter(prefix="/projects/{project_id}", tags=["items"])


@router.get("/items", response_model=Page)
def list_items(
    project_id: int,
    ctx: ContextDep,
    actor: CurrentActor,
    p: PageDep,
    status_: Annotated[
        ItemFilterStatus | None, Query(alias="status", description="`deleted`: items in their undo window.")
    ] = None,
    is_gold: bool | None = None,
    annotator_id: int | None = None,
    question: Annotated[str | None, Query(description="Consensus filters apply to this question.")] = None,
    label: Annotated[str | None, Query(description="Only items whose consensus for `question` is this label.")] = None,
    min_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
    disagreement: Annotated[
        bool, Query(description="Only items whose answers to `question` are not unanimous.")
    ] = False,
    q: Annotated[str | None, Query(min_length=1, max_length=200,
                                   description="Text in the item's data values or its external_id.")] = None,
    source: Annotated[Literal["consensus", "review", "gold", "auto"] | None,
                      Query(description="Where the item's label came from.")] = None,
    flag: Annotated[Literal["media_broken"] | None, Query(description="Items reported for this reason.")] = None,
    split: Annotated[Literal["train", "validation", "test"] | None, Query()] = None,
    meta: Annotated[list[str] | None, Query(description="`key=value` (repeatable): meta fields that must match.")]
    = None,
) -> dict:
    return item_service.list_items_page(
        ctx, actor, project_id, p.after, p.limit, status=status_, is_gold=is_gold, annotator_id=annotator_id,
        question=question, label=label, min_confidence=min_confidence, max_confidence=max_confidence,
        disagreement=disagreement, q=q, source=source, flag=flag, split=split, meta=parse_meta(meta),
    )


def parse_meta(pairs: list[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise GoldlabelError(f"meta filter {pair!r} is not key=value", code="bad_meta_filter", status=422)
        out[key.strip()] = value
    return out


@router.get("/items/{item_id}", response_model=ItemDetail)
def get_item(project_id: int, item_id: int, ctx: ContextDep, actor: CurrentActor) -> dict:
    return item_service.get_item(ctx, actor, project_id, item_id)


@router.delete("/items/{item_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_item(project_id: int, item_id: int, ctx: ContextDep, actor: CurrentActor) -> None:
    """Soft delete: hidden everywhere, restorable for `delete_undo_s` (POST .../items/restore)."""
    item_service.delete_item(ctx, actor, project_id, item_id)


@router.post("/items/bulk", response_model=BulkItemsResult)
def bulk_items(project_id: int, body: BulkItemsRequest, ctx: ContextDep, actor: CurrentActor) -> dict:
    """Send to review, set the priority of, or delete the given items or every item matching a
    filter (not only one page), in bounded batches; returns the counts."""
    return item_service.bulk_action(ctx, actor, project_id, body)


@router.post("/items/restore", response_model=RestoreResult)
def restore_items(project_id: int, body: RestoreItemsRequest, ctx: ContextDep, actor: CurrentActor) -> dict:
    """Undo a delete within `delete_undo_s`: by item ids, or every item one delete removed."""
    return item_service.restore_items(ctx, actor, project_id, body)


@router.post("/items/{item_ref}/report")
def report_item(project_id: int, item_ref: Annotated[str, Path(max_length=64)], body: ItemReport, ctx: ContextDep,
                actor: CurrentActor) -> dict:
    """The item cannot be answered (its media failed to load): flag it and send it to review.
    An annotator names the item as the lease shows it (its opaque reference) and gives their
    lease token (the lease is skipped); reviewers and managers may name it by id."""
    return item_service.report_item(ctx, actor, project_id, item_ref, body)


@router.get("/answers", response_model=Page)
def list_answers(project_id: int, ctx: ContextDep, actor: CurrentActor, p: PageDep) -> dict:
    return page(item_service.list_answers(ctx, actor, project_id, p.after, p.limit), p.limit)


@router.get("/events", response_model=Page)
def list_events(project_id: int, ctx: ContextDep, actor: CurrentActor, p: PageDep) -> dict:
    return page(item_service.list_events(ctx, actor, project_id, p.after, p.limit), p.limit)


@router.post("/items", response_model=ImportReport, status_code=status.HTTP_201_CREATED)
def create_items(
    project_id: int,
    body: list[dict[str, Any]],
    ctx: ContextDep,
    actor: CurrentActor,
    on_conflict: Annotated[Literal["skip", "update"], Query()] = "skip",
    partial: bool = False,
) -> dict:
    """Add items as a JSON array (same row format as a JSONL import; line = array index + 1)."""
    report = import_rows.ingest_rows(
        ctx, actor, project_id, enumerate(body, start=1), fmt="json", on_conflict=on_conflict, partial=partial
    )
    return report.to_dict()
