"""Import a file into a project: JSONL, CSV, Parquet or a JSON array of items, streamed row by
row into services/import_rows.py, or a file of another tool (a Label Studio export; COCO or
YOLO labels for existing items: services/tool_imports.py). ``import_file`` is the documented
entry point (docs/import-export.md)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from goldlabel.domain.errors import GoldlabelError
from goldlabel.formats import detect_format, parquet
from goldlabel.services.access import Actor, load_project
from goldlabel.services.context import Context
from goldlabel.services.import_rows import ImportReport, ingest_rows
from goldlabel.storage.engine import read_tx

# Formats of other tools: a Label Studio export makes items; COCO and YOLO label existing items.
TOOL_FORMATS = ("labelstudio", "coco", "yolo")


def import_file(
    ctx: Context,
    actor: Actor | None,
    project_id: int,
    path_or_stream: str | os.PathLike | BinaryIO,
    *,
    fmt: str | None = None,
    on_conflict: str = "skip",
    partial: bool = False,
    filename: str | None = None,
    target: str | None = None,
    question: str | None = None,
    model_version: str | None = None,
    id_field: str | None = None,
    media_root: str | os.PathLike | None = None,
) -> ImportReport:
    """Import a JSONL / CSV / Parquet / JSON-array file (a path or a binary stream), streamed row by row,
    or a file of another tool (``fmt`` labelstudio, coco or yolo: services.tool_imports).

    The format is ``fmt`` when given, else the extension of the path (or of ``filename``, or of
    the stream's ``name``); a ``.json`` file that holds a Label Studio export or a COCO file is
    read as one. Parquet needs a seekable stream. Errors of the file itself (a
    malformed JSON line, a CSV row with the wrong number of cells) land in the same report as
    validation errors, with their line numbers. ``target`` (predictions or gold), ``question``
    and ``model_version`` go with coco and yolo; ``id_field`` and ``media_root`` (Label Studio's
    media folder, for the files uploaded into it) with labelstudio.
    """
    name = filename or (Path(path_or_stream).name if isinstance(path_or_stream, (str, os.PathLike))
                        else getattr(path_or_stream, "name", None))
    if fmt is None and isinstance(name, str) and name.lower().endswith(".json"):
        raw = Path(path_or_stream).read_bytes() if isinstance(path_or_stream, (str, os.PathLike)) \
            else path_or_stream.read()
        fmt = _sniff_json(raw) or "json"
        path_or_stream = io.BytesIO(raw)
    if fmt is not None and fmt.lower() in TOOL_FORMATS:
        return _import_tool_file(ctx, actor, project_id, path_or_stream, fmt.lower(), on_conflict=on_conflict,
                                 partial=partial, target=target, question=question, model_version=model_version,
                                 id_field=id_field, media_root=media_root)
    if target is not None or question is not None or model_version is not None:
        raise GoldlabelError("target, question and model_version go with a coco or yolo import",
                             code="bad_import_option", status=422)
    if isinstance(path_or_stream, (str, os.PathLike)):
        path = Path(path_or_stream)
        module = detect_format(filename or path.name, fmt)
        with path.open("rb", buffering=1024 * 1024) as stream:
            return ingest_rows(ctx, actor, project_id, _read_rows(ctx, module, stream), fmt=module.NAME,
                               on_conflict=on_conflict, partial=partial, empty_ok=False)
    module = detect_format(name, fmt)
    return ingest_rows(ctx, actor, project_id, _read_rows(ctx, module, path_or_stream), fmt=module.NAME,
                       on_conflict=on_conflict, partial=partial, empty_ok=False)


def _sniff_json(raw: bytes) -> str | None:
    """labelstudio or coco when a .json file holds one (by its content), else None. An array is
    judged by its first element alone (the reader decodes one element at a time)."""
    from goldlabel.formats import json_array, labelstudio

    if raw.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{":
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None  # the JSON-array reader reports where it breaks
        if isinstance(doc, dict) and all(isinstance(doc.get(k), list) for k in ("images", "annotations", "categories")):
            return "coco"
        return None
    first = next(iter(json_array.read_rows(io.BytesIO(raw))), None)
    if first is not None and labelstudio.looks_like_tasks(first[1]):
        return "labelstudio"
    return None


def _import_tool_file(ctx, actor, project_id, source, fmt: str, *, on_conflict, partial, target, question,
                      model_version, id_field, media_root=None) -> ImportReport:
    from goldlabel.formats import labelstudio
    from goldlabel.services import tool_imports

    if fmt == "labelstudio":
        if target is not None or question is not None or model_version is not None:
            raise GoldlabelError("a Label Studio export brings its own answers, predictions and gold; "
                                 "target, question and model_version go with coco and yolo",
                                 code="bad_import_option", status=422)
        options = labelstudio.Options(id_field=id_field)
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as stream:
                return tool_imports.import_labelstudio(ctx, actor, project_id, stream, on_conflict=on_conflict,
                                                       partial=partial, options=options, media_root=media_root)
        return tool_imports.import_labelstudio(ctx, actor, project_id, source, on_conflict=on_conflict,
                                               partial=partial, options=options, media_root=media_root)
    if id_field is not None or media_root is not None:
        raise GoldlabelError("id_field and media_root go with a labelstudio import", code="bad_import_option",
                             status=422)
    return tool_imports.import_labels(ctx, actor, project_id, source, fmt, target=target or "predictions",
                                      question=question, model_version=model_version, partial=partial)


def _read_rows(ctx: Context, module: Any, stream: BinaryIO) -> Iterable[tuple[int, Any]]:
    if module is parquet:  # compressed: bounded by what it decodes to as well as by its size
        settings = ctx.settings
        return parquet.read_rows(stream, parquet.ReadLimits(
            max_rows=settings.max_import_rows, expansion=settings.parquet_max_expansion,
            min_bytes=settings.parquet_min_decoded_bytes))
    return module.read_rows(stream)


def authorize_import(ctx: Context, actor: Actor, project_id: int) -> None:
    """Fail fast (404 / 403) before an upload is read; ingest_rows checks again in its transaction."""
    with read_tx(ctx.engine) as conn:
        load_project(conn, actor, project_id, "manage")
