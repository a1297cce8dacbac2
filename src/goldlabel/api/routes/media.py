"""Media: upload files as items, serve a project's media (with HTTP Range and thumbnails)."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator, Iterator
from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.datastructures import UploadFile

from goldlabel.api.deps import ContextDep, CurrentActor
from goldlabel.domain.errors import FieldError, invalid
from goldlabel.schemas import ImportReport
from goldlabel.services import imports as import_service
from goldlabel.services import media as media_service
from goldlabel.services.context import Context

router = APIRouter(prefix="/projects/{project_id}", tags=["media"])

THUMB_SIZES = (128, 256, 512)
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
MAX_UPLOAD_FILES = 1000


def _headers(obj: media_service.MediaObject, name: str) -> dict[str, str]:
    disposition = "inline" if obj.media_type.inline else "attachment"
    return {
        # The bytes decided the type; the browser must not guess another (an image that is
        # really HTML stays inert), and nothing served here may run script even if opened.
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
        "Content-Disposition": f'{disposition}; filename="{name}"',
        "Cache-Control": "private, max-age=31536000, immutable",
        "Accept-Ranges": "bytes",
        "ETag": f'"{obj.key.rsplit("/", 1)[1]}"',
    }


@router.get(
    "/media/{name}",
    response_class=StreamingResponse,
    responses={200: {"description": "The file, typed by its bytes."}, 206: {"description": "A byte range."},
               307: {"description": "media_serve=redirect: a short-lived signed URL."},
               416: {"description": "The range lies outside the file."},
               502: {"description": "An object referenced in place could not be fetched (media_fetch_refused, "
                                    "media_fetch_failed, media_too_large)."}},
)
async def get_media(
    project_id: int,
    name: str,
    request: Request,
    ctx: ContextDep,
    actor: CurrentActor,
    thumb: Annotated[int | None, Query(description="A JPEG thumbnail at most this wide: 128, 256 or 512.")] = None,
    page: Annotated[int | None, Query(ge=1, le=100_000,
                                      description="A PDF's page (from 1), rendered by the server as PNG.")] = None,
) -> Response:
    """A media object of the project (404 for non-members). Images, audio, video and PDF render
    inline; anything else (SVG, HTML, unknown bytes) is an attachment. An object the item
    references in place (s3://, file://) is streamed by the server from where it lies, same-origin."""
    if thumb is not None and thumb not in THUMB_SIZES:
        raise invalid([FieldError(("query", "thumb"), "bad_thumb_size",
                                  f"thumb must be one of {', '.join(map(str, THUMB_SIZES))}")])
    requested = request.headers.get("range", "")
    # One entry per download, not per byte range a video player asks for.
    whole = thumb is None and page is None and (not requested or requested.replace(" ", "").startswith("bytes=0-"))
    obj = await run_in_threadpool(partial(media_service.open_media, download=whole),
                                  ctx, actor, project_id, name)
    # An object in place is an open file or S3 answer: the body stream closes it once sent; every
    # other answer closes it here.
    try:
        response = await _answer(request, ctx, obj, name, thumb, page)
    except BaseException:
        await run_in_threadpool(obj.close)
        raise
    if not isinstance(response, StreamingResponse):
        await run_in_threadpool(obj.close)
    return response


async def _answer(request: Request, ctx: Context, obj: media_service.MediaObject, name: str, thumb: int | None,
                  page: int | None) -> Response:
    if page is not None:
        if thumb is not None:
            raise invalid([FieldError(("query", "page"), "bad_query", "ask for a thumbnail or a page, not both")])
        data = await run_in_threadpool(media_service.pdf_page, ctx, obj, page)
        headers = _headers(obj, f"{name}.page{page}.png")
        headers.pop("Accept-Ranges")
        headers["Content-Disposition"] = "inline"
        if not obj.is_stored:
            headers["Cache-Control"] = "private, no-cache"
        return Response(data, media_type="image/png", headers=headers)
    if thumb is not None:
        data = await run_in_threadpool(media_service.thumbnail, ctx, obj, thumb)
        headers = _headers(obj, f"{name}.thumb.jpg")
        headers.pop("Accept-Ranges")
        headers["Content-Disposition"] = "inline"
        if not obj.is_stored:
            headers["Cache-Control"] = "private, no-cache"
        return Response(data, media_type="image/jpeg", headers=headers)
    headers = _headers(obj, name)
    if not obj.is_stored:
        # An object in place may change where it lies: revalidate instead of keeping it forever.
        headers["Cache-Control"] = "private, no-cache"
        headers.pop("ETag")
    elif ctx.settings.media_serve == "redirect":
        url = ctx.media.signed_url(obj.key, ctx.settings.media_url_ttl_s, obj.media_type.content_type,
                                   headers["Content-Disposition"])
        if url is not None:
            return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})
    start, end, code = 0, obj.size, 200
    requested = request.headers.get("range")
    if requested:
        match = _RANGE.match(requested.strip())
        if match and (match.group(1) or match.group(2)):
            first, last = match.group(1), match.group(2)
            if first:
                start = int(first)
                end = min(obj.size, int(last) + 1) if last else obj.size
            else:  # the last N bytes
                start = max(0, obj.size - int(last))
            if start >= obj.size or end <= start:
                return Response(status_code=416, headers={"Content-Range": f"bytes */{obj.size}"})
            code = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{obj.size}"
    headers["Content-Length"] = str(end - start)
    if not obj.is_stored:
        # Open the range now (S3 is asked for it here), so a refusal is still an error answer.
        chunks = media_service.read_media(ctx, obj, start, end)
        first_chunk = await run_in_threadpool(next, chunks, b"")
        return StreamingResponse(_sent_then_closed(obj, first_chunk, chunks), status_code=code,
                                 media_type=obj.media_type.content_type, headers=headers)
    return StreamingResponse(iterate_in_threadpool(media_service.read_media(ctx, obj, start, end)), status_code=code,
                             media_type=obj.media_type.content_type, headers=headers)


async def _sent_then_closed(obj: media_service.MediaObject, first: bytes,
                            chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    try:
        yield first
        async for chunk in iterate_in_threadpool(chunks):
            yield chunk
    finally:
        await run_in_threadpool(obj.close)


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "array", "items": {"type": "string", "format": "binary"},
                                 "description": "Media files (images, audio, video, PDF, UTF-8 text), "
                                                "or one .zip of them."},
                        "sidecar": {"type": "string", "format": "binary",
                                    "description": "Optional JSONL / CSV: a row per file (column `file`)."},
                    },
                }
            }
        },
    }
}


@router.post(
    "/media",
    response_model=ImportReport,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_UPLOAD_BODY,
    responses={413: {"description": "The upload exceeds max_upload_bytes."},
               422: {"description": "Rejected import; the problem carries the `report`."}},
)
async def upload_media(
    project_id: int,
    request: Request,
    ctx: ContextDep,
    actor: CurrentActor,
    on_conflict: Annotated[Literal["skip", "update"], Query()] = "skip",
    partial: bool = False,
) -> dict:
    """One item per uploaded file (external_id: the file name), or per file of one uploaded zip."""
    await run_in_threadpool(import_service.authorize_import, ctx, actor, project_id)
    # api.guard.RequestGuard bounds the body by max_upload_bytes, declared or as it arrives.
    # Starlette spools each file part to a SpooledTemporaryFile (memory, then disk) as it arrives.
    async with request.form(max_files=MAX_UPLOAD_FILES + 1, max_fields=20) as form:
        uploads = [u for u in form.getlist("file") if isinstance(u, UploadFile)]
        sidecar = form.get("sidecar")
        if not uploads:
            raise invalid([FieldError(("body", "file"), "missing_file",
                                      "send the files as multipart fields named 'file'")])
        sidecar_file = sidecar.file if isinstance(sidecar, UploadFile) else None
        sidecar_name = sidecar.filename if isinstance(sidecar, UploadFile) else None
        if len(uploads) == 1 and (uploads[0].filename or "").lower().endswith(".zip"):
            source: object = uploads[0].file
        else:
            source = [media_service.MediaFile(u.filename or f"upload-{i}", lambda u=u: _unclosed(u.file))
                      for i, u in enumerate(uploads, start=1)]
        report = await run_in_threadpool(
            media_service.import_media, ctx, actor, project_id, source, sidecar=sidecar_file,
            sidecar_name=sidecar_name, on_conflict=on_conflict, partial=partial,
        )
    return report.to_dict()



class _unclosed(io.RawIOBase):
    """The upload's spooled file, read from the start, left open for the form to close."""

    def __init__(self, file) -> None:
        super().__init__()
        file.seek(0)
        self._file = file

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def __exit__(self, *exc) -> None:
        pass
