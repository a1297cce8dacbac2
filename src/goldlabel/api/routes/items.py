"""Items (browse, detail, delete), the project's answers and events."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status

from goldlabel.api.deps import ContextDep, CurrentActor, PageDep, page
from goldlabel.domain.errors import GoldlabelError
from goldlabel.schemas import ImportReport, ItemDetail, ItemStatus, Page
from goldlabel.services import imports as import_service
from goldlabel.services import items as item_service

router = APIRouter(prefix="/projects/{project_id}", tags=["items"])


@router.get("/items", response_model=Page)
def list_items(
    project_id: int,
    ctx: ContextDep,
    actor: CurrentActor,
    p: PageDep,
    status_: Annotated[ItemStatus | None, Query(alias="status")] = None,
    is_gold: bool | None = None,
    annotator_id: int | None = None,
    question: Annotated[str | None, Query(description="Consensus filters apply to this question.")] = None,
    label: Annotated[str | None, Query(description="Only items whose consensus for `question` is this label.")] = None,
    min_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
    disagreement: Annotated[
        bool, Query(description="Only items whose answers to `question` are not unanimous.")
    ] = False,
) -> dict:
    consensus_filters = (label, min_confidence, max_confidence)
    if question is None and (disagreement or any(f is not None for f in consensus_filters)):
        raise GoldlabelError(
            "label, confidence and disagreement filters need ?question=NAME", code="missing_question", status=422
        )
    rows = item_service.list_items(
        ctx, actor, project_id, p.after, p.limit, status=status_, is_gold=is_gold, annotator_id=annotator_id,
        question=question, label=label, min_confidence=min_confidence, max_confidence=max_confidence,
        disagreement=disagreement,
    )
    return page(rows, p.limit)


@router.get("/items/{item_id}", response_model=ItemDetail)
def get_item(project_id: int, item_id: int, ctx: ContextDep, actor: CurrentActor) -> dict:
    return item_service.get_item(ctx, actor, project_id, item_id)


@router.delete("/items/{item_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_item(project_id: int, item_id: int, ctx: ContextDep, actor: CurrentActor) -> None:
    item_service.delete_item(ctx, actor, project_id, item_id)


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
    report = import_service.ingest_rows(
        ctx, actor, project_id, enumerate(body, start=1), fmt="json", on_conflict=on_conflict, partial=partial
    )
    return report.to_dict()
