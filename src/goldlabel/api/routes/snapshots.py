"""Snapshots: named, immutable exports, re-downloadable later."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from goldlabel.api.deps import ContextDep, CurrentActor
from goldlabel.schemas import SnapshotCreate, SnapshotPublic
from goldlabel.services import snapshots as snapshot_service

router = APIRouter(prefix="/projects/{project_id}/snapshots", tags=["transfer"])


@router.post("", response_model=SnapshotPublic, status_code=status.HTTP_201_CREATED,
             responses={409: {"description": "The project has a snapshot of that name."}})
async def create_snapshot(project_id: int, body: SnapshotCreate, ctx: ContextDep, actor: CurrentActor) -> dict:
    """Freeze the export these options describe under a name (review; gold and real usernames
    need manage). Runs the whole export before it answers."""
    return await run_in_threadpool(
        snapshot_service.create_snapshot, ctx, actor, project_id, body.name, body.format, status=body.status,
        include_gold=body.include_gold, include_predictions=body.include_predictions,
        pseudonymous=body.pseudonymous, question=body.question, min_confidence=body.min_confidence,
    )


@router.get("", response_model=list[SnapshotPublic])
async def list_snapshots(project_id: int, ctx: ContextDep, actor: CurrentActor) -> list[dict]:
    """The project's snapshots, newest first."""
    return await run_in_threadpool(snapshot_service.list_snapshots, ctx, actor, project_id)


@router.get("/{snapshot_id}/download", response_class=StreamingResponse,
            responses={200: {"description": "The frozen export, byte for byte."}})
async def download_snapshot(project_id: int, snapshot_id: int, ctx: ContextDep,
                            actor: CurrentActor) -> StreamingResponse:
    row = await run_in_threadpool(snapshot_service.download_snapshot, ctx, actor, project_id, snapshot_id)
    return StreamingResponse(
        iterate_in_threadpool(ctx.media.read(row["object_key"])),
        media_type=snapshot_service.media_type_of(row),
        headers={"Content-Disposition": f'attachment; filename="{snapshot_service.filename_of(row)}"',
                 "Content-Length": str(row["size_bytes"]), "ETag": f'"{row["sha256"]}"',
                 "X-Content-Type-Options": "nosniff"},
    )
