"""File transfer: import an uploaded file, download an export."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from goldlabel.api.deps import ContextDep, CurrentActor
from goldlabel.domain.errors import FieldError, invalid
from goldlabel.schemas import ImportReport, ItemStatus
from goldlabel.services import exports as export_service
from goldlabel.services import imports as import_service

router = APIRouter(prefix="/projects/{project_id}", tags=["transfer"])

FormatName = Literal["jsonl", "ndjson", "csv", "parquet", "json", "labelstudio", "coco", "yolo"]
ExportFormat = Literal["jsonl", "csv", "parquet", "json", "coco", "yolo", "voc", "conll", "spacy", "hf"]

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary",
                                            "description": "A .jsonl / .ndjson, .csv, .parquet or .json (an array "
                                                           "of items) file; a Label Studio JSON export; a COCO "
                                                           ".json; a YOLO .zip."}},
                }
            }
        },
    }
}



@router.post(
    "/imports",
    response_model=ImportReport,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_UPLOAD_BODY,
    responses={413: {"description": "The upload exceeds max_upload_bytes."},
               422: {"description": "Rejected import; the problem carries the `report`."}},
)
async def upload_import(
    project_id: int,
    request: Request,
    ctx: ContextDep,
    actor: CurrentActor,
    on_conflict: Annotated[Literal["skip", "update"], Query()] = "skip",
    partial: bool = False,
    format: Annotated[FormatName | None, Query(description="Default: from the file's extension (and a .json "
                                               "file's content: Label Studio export, COCO).")] = None,
    target: Annotated[Literal["predictions", "gold"] | None,
                      Query(description="coco / yolo: import the boxes as predictions (default) or gold.")] = None,
    question: Annotated[str | None, Query(description="coco / yolo: the boxes question.")] = None,
    model_version: Annotated[str | None, Query(max_length=200,
                                               description="coco / yolo predictions: default the format name.")]
    = None,
    id_field: Annotated[str | None, Query(max_length=200, description="labelstudio: the data field holding "
                                          "the external_id (default: the task id).")] = None,
) -> dict:
    """Import a multipart upload (field ``file``): all-or-nothing unless ``partial=true``.
    Label Studio exports, COCO and YOLO: see docs/import-export.md#from-other-tools."""
    await run_in_threadpool(import_service.authorize_import, ctx, actor, project_id)
    # api.guard.RequestGuard bounds the body by max_upload_bytes, declared or as it arrives.
    # Starlette spools each file part to a SpooledTemporaryFile (memory, then disk) as it arrives.
    async with request.form(max_files=1, max_fields=20) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise invalid([FieldError(("body", "file"), "missing_file", "send the file as multipart field 'file'")])
        report = await run_in_threadpool(
            import_service.import_file, ctx, actor, project_id, upload.file,
            fmt=format, on_conflict=on_conflict, partial=partial, filename=upload.filename,
            target=target, question=question, model_version=model_version, id_field=id_field,
        )
    return report.to_dict()


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"description": "The export file, streamed.",
                     "content": {"application/x-ndjson": {}, "text/csv": {}, "application/vnd.apache.parquet": {},
                                 "application/json": {}, "application/zip": {}}}},
)
def download_export(
    project_id: int,
    ctx: ContextDep,
    actor: CurrentActor,
    format: ExportFormat = "jsonl",
    status_: Annotated[ItemStatus | None, Query(alias="status")] = None,
    include_predictions: bool = False,
    include_gold: Annotated[bool, Query(description="Needs the manage permission.")] = False,
    pseudonymous: Annotated[bool, Query(description="false (real usernames) needs the manage permission.")] = True,
    question: Annotated[str | None, Query(description="Training formats: the question to write.")] = None,
    min_confidence: Annotated[float | None, Query(ge=0, le=1, description="Training formats: confidence floor.")]
    = None,
) -> StreamingResponse:
    """Every item with its consensus answers, confidence and raw answers, streamed batch by batch."""
    job = export_service.prepare_export(
        ctx, actor, project_id, format, status=status_, include_gold=include_gold,
        include_predictions=include_predictions, pseudonymous=pseudonymous, question=question,
        min_confidence=min_confidence,
    )
    export_service.record_export(ctx, actor, job)
    return StreamingResponse(
        job.iter_bytes(),
        media_type=job.media_type,
        headers={"Content-Disposition": f'attachment; filename="{job.filename}"'},
    )
