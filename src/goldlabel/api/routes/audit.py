"""The audit log: admins read all of it, managers their projects' entries (services/audit.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool

from goldlabel.api.deps import ContextDep, CurrentActor
from goldlabel.schemas import AuditPage
from goldlabel.services import audit as audit_service

router = APIRouter(prefix="/audit", tags=["audit"])

MAX_ID = 2**63 - 1


class AuditFilters:
    def __init__(
        self,
        actor_id: Annotated[int | None, Query(ge=0, le=MAX_ID, description="Entries by this user.")] = None,
        actor_name: Annotated[str | None, Query(max_length=150, description="Entries by this name "
                                                "(failed logins carry the typed name).")] = None,
        action: Annotated[str | None, Query(max_length=60, description="One action, e.g. export.download.")]
        = None,
        project_id: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
        since: Annotated[int | None, Query(ge=0, le=MAX_ID, description="From this time (ms, inclusive).")]
        = None,
        until: Annotated[int | None, Query(ge=0, le=MAX_ID, description="Before this time (ms).")] = None,
    ) -> None:
        self.values = {"actor_id": actor_id, "actor_name": actor_name, "action": action,
                       "project_id": project_id, "since": since, "until": until}


@router.get("", response_model=AuditPage)
def list_audit(
    ctx: ContextDep,
    actor: CurrentActor,
    filters: Annotated[AuditFilters, Depends()],
    before: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Cursor: the last id of the "
                                        "previous page (entries come newest first).")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ID)] = 100,
) -> dict:
    limit = min(limit, ctx.settings.page_size_max)
    rows = audit_service.list_entries(ctx, actor, filters.values, before, limit)
    return {"items": rows, "next_before": rows[-1]["id"] if len(rows) == limit else None}


@router.get("/export", response_class=StreamingResponse,
            responses={200: {"description": "Every matching entry, oldest first.",
                             "content": {"text/csv": {}, "application/x-ndjson": {}}}})
def export_audit(
    ctx: ContextDep,
    actor: CurrentActor,
    filters: Annotated[AuditFilters, Depends()],
    format: Literal["csv", "jsonl"] = "jsonl",
) -> StreamingResponse:
    chunks = audit_service.export_entries(ctx, actor, filters.values, format)
    media_type = "text/csv" if format == "csv" else "application/x-ndjson"
    return StreamingResponse(iterate_in_threadpool(chunks), media_type=media_type,
                             headers={"Content-Disposition": f'attachment; filename="audit.{format}"'})
