"""Media in: a folder, a zip or uploaded files become items whose data points at the media
store. Media out: a project's media object, checked and typed for serving.

One item per file. Its external_id is the file's path relative to the root (``cats/01.jpg``);
its data names the file by kind: ``{"image": URL}``, ``{"audio": URL}``, ``{"video": URL}``,
``{"pdf": URL, "pages": N}``, or the text itself (``{"text": ...}``) for a UTF-8 text file, plus
``file_name``. URL is the same-origin ``/api/v1/projects/<id>/media/<sha256>.<ext>``: the store is
content-addressed, so importing the same folder again stores nothing twice and, with
``on_conflict=skip`` (the default), creates nothing twice — an interrupted import is resumed by
running it again. An optional sidecar (JSONL or CSV, with a ``file`` column holding the relative
path) adds data fields, meta, priority, predictions and gold to the item of that file.

Refused, each with its file and a stable code (and nothing imported unless ``partial``): archive
entries that escape the root (``..``, absolute paths), symlinks that point out of the root, file
names with control characters, PDFs that cannot be read or have no pages, files over
``max_media_bytes`` (counted on the bytes read, so a zip entry that lies about its size is caught
too), and files of a type that is not media.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from goldlabel.domain.errors import FieldError, GoldlabelError, not_found
from goldlabel.domain.media_types import SNIFF_BYTES, MediaType, sniff
from goldlabel.formats import detect_format
from goldlabel.services import audit
from goldlabel.services.access import Actor, fetch_project_role, load_project
from goldlabel.services.context import Context
from goldlabel.services.import_rows import ImportReport, ingest_rows
from goldlabel.services.imports import authorize_import
from goldlabel.services.media_in_place import InPlaceObject, load_reference, open_reference, reference_key
from goldlabel.storage.engine import read_tx
from goldlabel.storage.media import object_key

# A UTF-8 text file up to this size becomes the item's text; a larger one is refused.
MAX_TEXT_BYTES = 1024 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SHA = re.compile(r"^([0-9a-f]{64})(?:\.[a-z0-9]{1,5})?$")
_SKIPPED = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


@dataclass(slots=True)
class MediaFile:
    """A file offered for import: its path relative to the root and how to read it."""

    path: str
    open: Callable[[], BinaryIO]


def media_url(project_id: int, sha256: str, media_type: MediaType) -> str:
    return f"/api/v1/projects/{int(project_id)}/media/{sha256}.{media_type.extension}"


def _error(index: int, path: str, code: str, message: str) -> tuple[int, FieldError]:
    return index, FieldError(("file", path), code, f"{path}: {message}", index)


def _check_name(path: str) -> str | None:
    if _CONTROL.search(path):
        return "the file name contains control characters"
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or path.startswith(("/", "\\")) or "\\" in path:
        return "the path escapes the import root"
    return None


def walk_directory(root: str | os.PathLike[str]) -> Iterator[MediaFile | tuple[str, str, str]]:
    """Every regular file under ``root`` in path order; symlinks are followed only when they stay
    inside ``root``. Yields ``(path, code, message)`` for a file that is refused."""
    base = Path(root).resolve()
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or name in _SKIPPED:
                continue
            full = Path(dirpath) / name
            rel = full.relative_to(base).as_posix()
            if full.is_symlink():
                target = full.resolve()
                if not target.is_relative_to(base):
                    yield rel, "symlink_outside_root", "a symbolic link to a file outside the import root"
                    continue
                if not target.is_file():
                    continue
            if not full.is_file():
                continue
            yield MediaFile(rel, lambda full=full: full.open("rb"))


def walk_zip(archive: zipfile.ZipFile) -> Iterator[MediaFile | tuple[str, str, str]]:
    """Every file entry of the zip in name order."""
    for info in sorted(archive.infolist(), key=lambda i: i.filename):
        if info.is_dir():
            continue
        name = info.filename
        leaf = PurePosixPath(name).name
        if leaf.startswith(".") or leaf in _SKIPPED or name.startswith("__MACOSX/"):
            continue
        # Unix mode bits in the high word: a symbolic link stored in the archive.
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            yield name, "symlink_outside_root", "a symbolic link inside the archive"
            continue
        yield MediaFile(name, lambda info=info: archive.open(info))


class _TooLarge(Exception):
    pass


def _spool(source: BinaryIO, limit: int) -> tuple[Any, str, bytes, int]:
    """Copy ``source`` to a temporary file, hashing as it goes and stopping past ``limit``
    bytes: (file at 0, sha256, first bytes, size)."""
    digest = hashlib.sha256()
    out = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - the caller closes it
    head = b""
    size = 0
    try:
        while chunk := source.read(256 * 1024):
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            if len(head) < SNIFF_BYTES:
                head += chunk[: SNIFF_BYTES - len(head)]
            digest.update(chunk)
            out.write(chunk)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out, digest.hexdigest(), head, size


def _load_sidecar(path_or_stream: str | os.PathLike[str] | BinaryIO | None, filename: str | None
                  ) -> tuple[dict[str, tuple[int, dict]], list[tuple[int, FieldError]]]:
    """Sidecar rows by their ``file`` (or ``external_id``) value, with their line numbers."""
    if path_or_stream is None:
        return {}, []
    if isinstance(path_or_stream, (str, os.PathLike)):
        path = Path(path_or_stream)
        module = detect_format(filename or path.name)
        with path.open("rb") as stream:
            entries = list(module.read_rows(_file_column_as_key(stream, module.NAME)))
    else:
        module = detect_format(filename or getattr(path_or_stream, "name", None))
        entries = list(module.read_rows(_file_column_as_key(path_or_stream, module.NAME)))
    rows: dict[str, tuple[int, dict]] = {}
    errors: list[tuple[int, FieldError]] = []
    for line, row in entries:
        if isinstance(row, FieldError):
            errors.append((line, FieldError(("sidecar", *row.loc), row.code, f"sidecar: {row.message}", line)))
            continue
        key = row.pop("file", None) if isinstance(row, dict) else None
        key = key if key is not None else (row.get("external_id") if isinstance(row, dict) else None)
        if not isinstance(key, str) or not key:
            errors.append((line, FieldError(("sidecar", "file"), "missing_file_column",
                                            "sidecar: each row needs a 'file' naming the file's relative path",
                                            line)))
            continue
        rows[key] = (line, row)
    return rows, errors


def _file_column_as_key(stream: BinaryIO, fmt: str) -> BinaryIO:
    """A CSV sidecar's ``file`` column is its key: the CSV reader knows the key as ``external_id``
    (every other column would become a data field), so the header cell is renamed."""
    if fmt != "csv":
        return stream
    header = stream.readline()
    cells = header.rstrip(b"\r\n").split(b",")
    if b"file" in cells and b"external_id" not in cells:
        header = header.replace(b"file", b"external_id", 1) if cells[0] == b"file" else b",".join(
            b"external_id" if c == b"file" else c for c in cells) + b"\n"
    return io.BufferedReader(_Prefixed(header, stream))  # type: ignore[arg-type]


class _Prefixed(io.RawIOBase):
    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        super().__init__()
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def media_rows(ctx: Context, project_id: int, files: Iterable[MediaFile | tuple[str, str, str]],
               sidecar: dict[str, tuple[int, dict]]) -> Iterator[tuple[int, Any]]:
    """``(index, item row | FieldError)`` per file: each file's bytes are stored (once per
    content) on the way."""
    store = ctx.media
    limit = ctx.settings.max_media_bytes
    for index, entry in enumerate(files, start=1):
        if isinstance(entry, tuple):
            yield _error(index, *entry)
            continue
        problem = _check_name(entry.path)
        if problem:
            yield _error(index, entry.path, "path_escapes_root" if "escapes" in problem else "bad_file_name", problem)
            continue
        try:
            with entry.open() as source:
                spooled, sha, head, size = _spool(source, limit)
        except _TooLarge:
            yield _error(index, entry.path, "file_too_large", f"larger than max_media_bytes ({limit} bytes)")
            continue
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            yield _error(index, entry.path, "unreadable_file", f"cannot be read: {exc}")
            continue
        with spooled:
            media_type = sniff(head)
            name = PurePosixPath(entry.path).name
            data: dict[str, Any] = {"file_name": name}
            if media_type.kind == "text":
                if size > MAX_TEXT_BYTES:
                    yield _error(index, entry.path, "file_too_large",
                                 f"a text file becomes the item's text, up to {MAX_TEXT_BYTES} bytes")
                    continue
                try:
                    data["text"] = spooled.read().decode("utf-8")
                except UnicodeDecodeError as exc:
                    yield _error(index, entry.path, "bad_text", f"not UTF-8 text (byte {exc.start})")
                    continue
            elif media_type.kind in ("image", "audio", "video", "pdf"):
                if media_type.kind == "pdf":
                    try:
                        data["pages"] = count_pdf_pages(spooled.read())
                    except GoldlabelError as exc:
                        yield _error(index, entry.path, exc.code, str(exc))
                        continue
                    spooled.seek(0)
                key = object_key(project_id, sha)
                if not store.exists(key):
                    store.put(key, spooled, size)
                data[media_type.kind] = media_url(project_id, sha, media_type)
            else:
                yield _error(index, entry.path, "unsupported_media",
                             "not an image, audio, video, PDF or UTF-8 text file (judged by its bytes)")
                continue
        row: dict[str, Any] = {"external_id": entry.path, "data": data}
        extra = sidecar.pop(entry.path, None)
        if extra is not None:
            extra_row = dict(extra[1])
            extra_row.pop("external_id", None)
            row["data"] = {**(extra_row.pop("data", None) or {}), **data}
            row.update(extra_row)
        yield index, row
    for path, (line, _row) in sidecar.items():
        yield line, FieldError(("sidecar", "file"), "unknown_file",
                               f"sidecar line {line}: no file {path!r} in the import", line)


def import_media(
    ctx: Context,
    actor: Actor | None,
    project_id: int,
    source: str | os.PathLike[str] | BinaryIO | list[MediaFile],
    *,
    sidecar: str | os.PathLike[str] | BinaryIO | None = None,
    sidecar_name: str | None = None,
    on_conflict: str = "skip",
    partial: bool = False,
) -> ImportReport:
    """Import a folder, a zip (a path or a stream) or a list of MediaFile: one item per file."""
    if actor is not None:
        authorize_import(ctx, actor, project_id)
    extra, sidecar_errors = _load_sidecar(sidecar, sidecar_name)

    def rows(files: Iterable[MediaFile | tuple[str, str, str]]) -> Iterator[tuple[int, Any]]:
        yield from sidecar_errors
        yield from media_rows(ctx, project_id, files, extra)

    if isinstance(source, list):
        return ingest_rows(ctx, actor, project_id, rows(source), fmt="media", on_conflict=on_conflict,
                           partial=partial)
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        return ingest_rows(ctx, actor, project_id, rows(walk_directory(source)), fmt="media",
                           on_conflict=on_conflict, partial=partial)
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise GoldlabelError(f"not a folder or a zip archive: {exc}", code="bad_archive", status=422) from exc
    with archive:
        return ingest_rows(ctx, actor, project_id, rows(walk_zip(archive)), fmt="media",
                           on_conflict=on_conflict, partial=partial)


@dataclass(frozen=True, slots=True)
class MediaObject:
    """A media object to serve: a file of the store (``in_place`` None) or an object in place,
    open for streaming (services.media_in_place). ``close`` it when done."""

    key: str
    size: int
    media_type: MediaType
    in_place: InPlaceObject | None = None

    @property
    def is_stored(self) -> bool:
        return self.in_place is None

    def close(self) -> None:
        if self.in_place is not None:
            self.in_place.close()


def read_media(ctx: Context, obj: MediaObject, start: int = 0, end: int | None = None) -> Iterator[bytes]:
    """Bytes [start, end) of the object, in chunks."""
    if obj.in_place is not None:
        yield from obj.in_place.read(start, end)
        return
    yield from ctx.media.read(obj.key, start, end)


def open_media(ctx: Context, actor: Actor, project_id: int, name: str, *, download: bool = False) -> MediaObject:
    """A media object of the project, if ``actor`` may see the project (404 otherwise).
    ``download``: a whole file is being sent (not a thumbnail or a later byte range), which the
    audit log records for reviewers and up; an annotator's reads are their work, not logged."""
    match = _SHA.match(name)
    if match is None:
        raise not_found("media")
    with read_tx(ctx.engine) as conn:
        load_project(conn, actor, project_id, "view")
        role = fetch_project_role(conn, actor, project_id)
    key = object_key(project_id, match.group(1))
    store = ctx.media
    size = store.size(key)
    in_place = None
    if size is None:
        # Not a stored file: an object referenced in place, opened now (through the outbound guard).
        url = load_reference(ctx, project_id, match.group(1))
        if url is None:
            raise not_found("media")
        in_place = open_reference(ctx, url)
        key, size = reference_key(project_id, match.group(1)), in_place.size
    try:
        if download and role != "annotator":
            audit.record_now(ctx, actor, "media.download", project_id=project_id, target=("media", name))
        head = in_place.head if in_place is not None else b"".join(_take(store.read(key, 0, SNIFF_BYTES)))
    except BaseException:
        if in_place is not None:
            in_place.close()
        raise
    return MediaObject(key, size, sniff(head), in_place)


def _take(chunks: Iterator[bytes]) -> list[bytes]:
    try:
        return list(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def thumbnail(ctx: Context, obj: MediaObject, width: int) -> bytes:
    """A JPEG at most ``width`` pixels wide (and high), upright by the image's EXIF orientation,
    made once per object and size and kept in the store beside it."""
    if obj.media_type.kind != "image":
        raise GoldlabelError("thumbnails are made of images only", code="not_an_image", status=422)
    store = ctx.media
    key = f"{obj.key}.thumb{int(width)}.jpg"
    # An object in place may change where it lies: its thumbnail is made afresh, not kept.
    if obj.is_stored and store.exists(key):
        return b"".join(_take(store.read(key)))
    from PIL import Image, ImageOps, UnidentifiedImageError

    raw = b"".join(_take(read_media(ctx, obj)))
    try:
        with Image.open(io.BytesIO(raw)) as image:
            # Refuse decompression bombs before decoding: Pillow's own limit warns first.
            if image.width * image.height > 200_000_000:
                raise GoldlabelError("the image is too large to thumbnail", code="image_too_large", status=422)
            upright = ImageOps.exif_transpose(image)
            upright.thumbnail((width, width))
            out = io.BytesIO()
            upright.convert("RGB").save(out, format="JPEG", quality=85)
    except (UnidentifiedImageError, OSError) as exc:
        raise GoldlabelError(f"the image cannot be decoded: {exc}", code="bad_image", status=422) from exc
    data = out.getvalue()
    if obj.is_stored:
        store.put(key, io.BytesIO(data), len(data))
    return data


# PDF pages are rendered on the server, to PNG, by PDFium (pypdfium2): the workspace shows a
# PDF as images, so no script, style or font of a PDF (or of a PDF viewer) reaches the page and
# its CSP stays as it is, and import can refuse a PDF that cannot be read or has no pages.
# PDFium is not thread-safe: one rendering at a time per process.
_PDFIUM = threading.Lock()
PDF_PAGE_WIDTH = 1400  # px: readable text at the workspace's width, zoomable twice over
_PDF_MAX_PIXELS = 1400 * 4000
_EMPTY_PAGE_TREE = re.compile(rb"/Count\s+0(?![0-9])")
_PAGE_OBJECT = re.compile(rb"/Type\s*/Page(?![A-Za-z])")


def _open_pdf(data: bytes) -> Any:
    import pypdfium2

    try:
        return pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        # PDFium refuses a document whose page tree is empty like a broken one (and its error
        # code is a process-wide leftover, so it cannot tell them apart): a refused file that is
        # whole (ends with %%EOF), has a page tree counting 0, no page object and no object
        # streams (where pages could hide) has no pages.
        if (b"%%EOF" in data[-1024:] and _EMPTY_PAGE_TREE.search(data) and not _PAGE_OBJECT.search(data)
                and b"/ObjStm" not in data):
            raise GoldlabelError("the PDF has no pages", code="pdf_no_pages", status=422) from exc
        raise GoldlabelError("not a readable PDF (it is damaged, cut short or encrypted)",
                             code="bad_pdf", status=422) from exc


def count_pdf_pages(data: bytes) -> int:
    """The number of pages of a PDF; ``bad_pdf`` when it cannot be read, ``pdf_no_pages`` when
    it has none (nothing to show an annotator)."""
    with _PDFIUM:
        pdf = _open_pdf(data)
        try:
            pages = len(pdf)
        finally:
            pdf.close()
    if pages < 1:
        raise GoldlabelError("the PDF has no pages", code="pdf_no_pages", status=422)
    return pages


def pdf_page(ctx: Context, obj: MediaObject, page: int) -> bytes:
    """Page ``page`` (from 1) of a PDF as a PNG ``PDF_PAGE_WIDTH`` pixels wide (less for a page
    so tall it would pass the pixel cap), made once and kept in the store beside the PDF."""
    if obj.media_type.kind != "pdf":
        raise GoldlabelError("pages are made of PDFs only", code="not_a_pdf", status=422)
    store = ctx.media
    key = f"{obj.key}.page{int(page)}.png"
    # An object in place may change where it lies: its pages are rendered afresh, not kept.
    if obj.is_stored and store.exists(key):
        return b"".join(_take(store.read(key)))
    raw = b"".join(_take(read_media(ctx, obj)))
    with _PDFIUM:
        pdf = _open_pdf(raw)
        try:
            if not 1 <= page <= len(pdf):
                raise GoldlabelError(f"the PDF has {len(pdf)} page(s), not a page {page}",
                                     code="no_such_page", status=404)
            sheet = pdf[page - 1]
            width, height = sheet.get_size()
            scale = min(PDF_PAGE_WIDTH / max(width, 1.0), (_PDF_MAX_PIXELS / max(width * height, 1.0)) ** 0.5)
            image = sheet.render(scale=scale).to_pil()
        except Exception as exc:
            if isinstance(exc, GoldlabelError):
                raise
            raise GoldlabelError(f"the page cannot be rendered: {exc}", code="bad_pdf", status=422) from exc
        finally:
            pdf.close()
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    data = out.getvalue()
    if obj.is_stored:
        store.put(key, io.BytesIO(data), len(data))
    return data
