"""Imports from where users come from: Label Studio's JSON export, and COCO / YOLO label files.

A Label Studio export becomes items, with predictions, gold and the answers of pseudonymous
annotators (formats.labelstudio converts, services.import_rows writes, one transaction). COCO and
YOLO files (boxes, polygons or keypoints) label items the project already has, as predictions
(pre-labels) or as gold: each
image is matched to an item by external_id, then by file name, then by file stem. All or
nothing unless partial, like every import.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from goldlabel.domain.errors import FieldError, GoldlabelError, forbidden
from goldlabel.formats import coco, labelstudio, yolo
from goldlabel.formats.labeled import image_size, pick_question
from goldlabel.services.access import Actor, load_project
from goldlabel.services.bulk_gc import fewer_gc_passes
from goldlabel.services.context import Context
from goldlabel.services.import_rows import GOLD_OVERLAP, ImportFailed, ImportReport, ingest_rows
from goldlabel.storage import consensus_events as records
from goldlabel.storage import imports as import_store
from goldlabel.storage import projects as project_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx
from goldlabel.storage.media import object_key

TARGETS = ("predictions", "gold")
UPLOAD_PREFIX = "/data/upload/"  # how a Label Studio export names a file uploaded into Label Studio
_MEDIA_URL = re.compile(r"^/api/v1/projects/(\d+)/media/([0-9a-f]{64})(?:\.[a-z0-9]{1,5})?$")


def _project(conn, actor: Actor | None, project_id: int) -> dict:
    if actor is not None:
        return load_project(conn, actor, project_id, "manage")
    project = project_store.fetch_project(conn, project_id)
    if project is None:
        raise forbidden("no such project")
    return project


# ---------------------------------------------------------------- Label Studio


def import_labelstudio(ctx: Context, actor: Actor | None, project_id: int, stream: BinaryIO, *,
                       on_conflict: str = "skip", partial: bool = False,
                       options: labelstudio.Options | None = None, media_root: str | os.PathLike | None = None,
                       ) -> ImportReport:
    """Import a Label Studio JSON export: tasks -> items, annotations -> answers of
    pseudonymous annotators (``ls-<user id>``), ground-truth annotations -> gold, predictions ->
    predictions (model version and score kept). See formats.labelstudio for the mapping.

    ``media_root`` (the local operator only): Label Studio's media folder. Files uploaded into
    Label Studio appear in the tasks as ``/data/upload/<project>/<file>``; with it, each is read
    from ``<media_root>/upload/<project>/<file>`` into the media store and the task points at
    the stored copy."""
    if media_root is not None and actor is not None:
        raise forbidden("only the local operator imports files from the server's disk")
    with read_tx(ctx.engine) as conn:
        schema = ctx.get_schema(_project(conn, actor, project_id))
    rows = labelstudio.item_rows(labelstudio.read_tasks(stream), schema, options)
    if media_root is not None:
        rows = _stored_uploads(ctx, project_id, rows, Path(media_root))
    return ingest_rows(ctx, actor, project_id, rows, fmt=labelstudio.NAME, on_conflict=on_conflict,
                       partial=partial, empty_ok=False, with_answers=True)


def _stored_uploads(ctx: Context, project_id: int, rows: Iterable[tuple[int, Any]], root: Path
                    ) -> Iterator[tuple[int, Any]]:
    from goldlabel.services.media import MediaFile, media_rows

    root = root.resolve()
    for line, row in rows:
        if not isinstance(row, dict):
            yield line, row
            continue
        errors = []
        for key, value in list(row["data"].items()):
            if not (isinstance(value, str) and value.startswith(UPLOAD_PREFIX)):
                continue
            path = (root / "upload" / value.removeprefix(UPLOAD_PREFIX)).resolve()
            if not path.is_relative_to(root):
                errors.append(FieldError(("data", key), "path_escapes_root",
                                         f"{value!r} leads out of the Label Studio media folder", line))
                continue
            opener = path.open if path.is_file() else _missing(path)
            name = "upload/" + value.removeprefix(UPLOAD_PREFIX)
            [(_, got)] = list(media_rows(ctx, project_id, [MediaFile(name, lambda o=opener: o("rb"))], {}))
            if isinstance(got, FieldError):
                errors.append(FieldError(("data", key), got.code, got.message, line))
                continue
            stored = [v for k, v in got["data"].items() if k != "file_name" and isinstance(v, str)]
            row["data"][key] = stored[0] if stored else got["data"].get("text", value)
        yield line, (tuple(errors) if errors else row)


def _missing(path: Path):
    def open_(_mode: str):
        raise FileNotFoundError(f"no file {path}")
    return open_


# ---------------------------------------------------------------- COCO / YOLO labels


SHAPE_KINDS = ("boxes", "polygons", "keypoints")


def import_labels(ctx: Context, actor: Actor | None, project_id: int, source: Any, fmt: str, *,
                  target: str = "predictions", question: str | None = None, model_version: str | None = None,
                  partial: bool = False) -> ImportReport:
    """The labels of a COCO file (a stream or path) or a YOLO folder / zip (a path) onto the
    project's items, as predictions (``model_version``, default the format name; a shape's
    ``score``, when the file has one, becomes the prediction's mean score) or as gold. What is
    read follows the question (the one named, else the project's first boxes, polygons or
    keypoints question): COCO ``bbox`` / ``segmentation`` polygons / ``keypoints`` named by the
    category, YOLO detect / segment / pose lines. Each shape is checked like an answer (a
    polygon with fewer than 3 points, one that crosses itself, a keypoint outside the image...),
    its error naming the image and the annotation or line. Returns the report: ``rows`` images
    read, ``updated`` items labeled."""
    if target not in TARGETS:
        raise GoldlabelError(f"import {fmt} as one of {', '.join(TARGETS)}", code="bad_import_target", status=422)
    if fmt not in (coco.NAME, yolo.NAME):
        raise GoldlabelError(f"labels import from coco or yolo, not {fmt!r}", code="unknown_format", status=422)
    with read_tx(ctx.engine) as conn:
        kind = pick_question(fmt, SHAPE_KINDS, ctx.get_schema(_project(conn, actor, project_id)), question).kind
    if fmt == coco.NAME:
        if isinstance(source, str) or hasattr(source, "__fspath__"):
            with open(source, "rb") as stream:
                entries = list(coco.read_labels(stream, kind))
        else:
            entries = list(coco.read_labels(source, kind))
    else:
        entries = list(yolo.read_labels(yolo.open_members(source), kind))
    report = ImportReport(format=fmt)
    max_errors = ctx.settings.import_max_errors
    version = fmt if model_version is None else model_version
    now = now_ms()
    with fewer_gc_passes(), write_tx(ctx.engine) as conn:
        project = _project(conn, actor, project_id)
        schema = ctx.get_schema(project)
        q = pick_question(fmt, (kind,), schema, question)
        import_store.serialize_imports(conn, project_id)
        index = _ItemIndex(import_store.fetch_item_names(conn, project_id))
        gold_rows, pred_rows, done = [], [], set()
        for n, entry in entries:
            report.rows += 1
            if isinstance(entry, FieldError):
                report.add_errors([entry], max_errors)
                continue
            where = entry["where"]
            found = index.find(entry["names"])
            if isinstance(found, str):
                report.add_errors([FieldError(("names",), found, f"{where}: " + (
                    f"no item of the project has the external_id or file name {entry['names'][-1]!r}"
                    if found == "item_not_found" else
                    f"several items match {entry['names'][-1]!r}; name the items by their full path"), n)],
                    max_errors)
                continue
            item_id, data = found
            if item_id in done:
                report.add_errors([FieldError(("names",), "duplicate_item", f"{where}: labels its item twice", n)],
                                  max_errors)
                continue
            shapes, error, sized = _to_question(ctx, project_id, q, entry, data)
            if error is not None:
                report.add_errors([FieldError((kind,), error[0], f"{where}: {error[1]}", n)], max_errors)
                continue
            origins = [(shape.pop("origin", None), shape.pop("line", None)) for shape in shapes]
            scores = [shape.pop("score") for shape in shapes if "score" in shape]
            try:
                value = schema.validate_answer({q.name: shapes}, data, loc_prefix=(kind,), partial=True)
            except GoldlabelError as exc:
                report.add_errors([_shape_error(e, where, origins, n) for e in exc.errors], max_errors)
                continue
            done.add(item_id)
            report.updated += 1
            if sized:  # pixel shapes are checked against the item's size fields: record them
                import_store.set_item_data(conn, item_id, data, now)
            if target == "gold":
                gold_rows.append({"item_id": item_id, "project_id": project_id, "value": value, "created_at": now})
            else:
                pred_rows.append({"item_id": item_id, "project_id": project_id, "created_at": now, "value": value,
                                  "model_version": version,
                                  "score": sum(scores) / len(scores) if scores else None})
        if report.error_count and not partial:
            conn.rollback()
            report.updated = 0
            raise ImportFailed(f"import rejected: {report.error_count} error(s); nothing was imported",
                               code="import_failed", status=422, errors=[], extra={"report": report.to_dict()})
        import_store.upsert_gold(conn, gold_rows)
        import_store.mark_gold(conn, [g["item_id"] for g in gold_rows], GOLD_OVERLAP)
        import_store.upsert_predictions(conn, pred_rows)
        records.insert_event(conn, project_id, "import.completed",
                             {k: v for k, v in report.to_dict().items() if k != "errors"}, now_ms())
    return report


def _shape_error(error: FieldError, where: str, origins: list[tuple[str | None, int | None]], n: int
                 ) -> FieldError:
    """A shape's validation error, saying which image and which annotation (COCO) or line
    (YOLO, whose line number it takes) it is about; the error is at ``(kind, question, i, ...)``."""
    loc = error.loc
    origin, line = (origins[loc[2]] if len(loc) > 2 and isinstance(loc[2], int) and 0 <= loc[2] < len(origins)
                    else (None, None))
    return FieldError(loc, error.code, f"{where}: {origin + ': ' if origin else ''}{error.message}",
                      n if line is None else line)


class _ItemIndex:
    """The project's items by external_id, by file name and by file stem (a media import names
    an item by its path; COCO by a file name; YOLO by a stem)."""

    def __init__(self, rows: list[tuple[int, str, dict]]) -> None:
        self.by_id: dict[str, tuple[int, dict]] = {}
        self.by_name: dict[str, list[tuple[int, dict]]] = {}
        self.by_stem: dict[str, list[tuple[int, dict]]] = {}
        for item_id, ext, data in rows:
            entry = (item_id, data)
            self.by_id[ext] = entry
            path = PurePosixPath(ext)
            self.by_name.setdefault(path.name, []).append(entry)
            self.by_stem.setdefault(path.stem, []).append(entry)
            name = data.get("file_name") if isinstance(data, dict) else None
            if isinstance(name, str) and name != path.name:
                self.by_name.setdefault(name, []).append(entry)
                self.by_stem.setdefault(PurePosixPath(name).stem, []).append(entry)

    def find(self, names: list[str]) -> tuple[int, dict] | str:
        for name in names:
            if name in self.by_id:
                return self.by_id[name]
        for table, key in ((self.by_name, PurePosixPath(names[-1]).name),
                           (self.by_stem, PurePosixPath(names[-1]).stem)):
            hits = {e[0]: e for e in table.get(key, ())}
            if len(hits) == 1:
                return next(iter(hits.values()))
            if len(hits) > 1:
                return "ambiguous_file"
        return "item_not_found"


def _to_question(ctx: Context, project_id: int, q: Any, entry: dict, data: dict
                 ) -> tuple[list[dict], tuple[str, str] | None, bool]:
    """The entry's shapes as the question's answer, in its coordinates (pixels or fractions),
    converting with the image size when they differ: the item's size fields, else the file's,
    else read from the image in the media store. The last element says whether ``data`` got
    size fields it lacked (pixel shapes need them)."""
    shapes = entry["shapes"]
    if q.kind == "keypoints":
        shapes, problem = _keypoint_instances(q, shapes)
        if problem is not None:
            return [], problem, False
    else:
        shapes = [dict(s) for s in shapes]
    want = "pixel" if q.coordinates == "pixel" else "relative"
    known = image_size(q, data)
    size = known or entry["size"] or _stored_image_size(ctx, project_id, data.get(q.source))
    sized = False
    if want == "pixel" and known is None and size is not None:
        data[q.width_field], data[q.height_field] = _number(size[0]), _number(size[1])
        sized = True
    if entry["units"] == want:
        return shapes, None, sized
    if size is None:
        return [], ("image_size_unknown", ("the image size is unknown (no width / height in the file or the "
                                           "item data, and the image is not in the media store)")), False
    w, h = size
    sx, sy = (w, h) if want == "pixel" else (1 / w, 1 / h)
    for shape in shapes:
        if q.kind == "boxes":
            shape["x"], shape["w"] = shape["x"] * sx, shape["w"] * sx
            shape["y"], shape["h"] = shape["y"] * sy, shape["h"] * sy
        elif q.kind == "polygons":
            shape["points"] = [[x * sx, y * sy] for x, y in shape["points"]]
        else:
            for point in shape["points"].values():
                point["x"], point["y"] = point["x"] * sx, point["y"] * sy
    return shapes, None, sized


def _keypoint_instances(q: Any, shapes: list[dict]) -> tuple[list[dict], tuple[str, str] | None]:
    """Keypoint instances ``{"label", "points": {name: {"x", "y", "v"}}}`` from the readers'
    ``coords``: named by the file (COCO's category ``keypoints``, goldlabel's ``kpt_names``), else
    by the label's skeleton in order. A point with v = 0 is not labeled and is left out."""
    out = []
    for shape in shapes:
        label, coords, names = shape["label"], shape["coords"], shape["point_names"]
        if names is None:
            if label not in q.labels:  # the schema check reports the label
                names = [f"#{i}" for i in range(len(coords))]
            else:
                names = list(q.skeleton(label).points)
                labeled = [i for i, c in enumerate(coords) if c[2] != 0]
                # YOLO pads a shorter skeleton with 0 0 0 up to the longest one (kpt_shape).
                if len(coords) < len(names) or (labeled and labeled[-1] >= len(names)):
                    return [], ("keypoint_count_mismatch",
                                (f"{shape.get('origin') or 'an instance'}: {len(coords)} keypoints, but the skeleton "
                                f"of {label!r} has {len(names)} ({', '.join(names)}); name them in the file"))
        points = {}
        for name, (x, y, v) in zip(names, coords, strict=False):
            if v == 0:
                continue
            points[name] = {"x": x, "y": y, "v": int(v) if float(v).is_integer() else v}
        if not points:
            continue  # COCO's crowd annotations label no point: no instance a keypoints answer can hold
        instance = {"label": label, "points": points}
        for key in ("origin", "line", "score"):
            if key in shape:
                instance[key] = shape[key]
        out.append(instance)
    return out, None


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _stored_image_size(ctx: Context, project_id: int, source: Any) -> tuple[float, float] | None:
    """(width, height) of an image in the media store (Pillow reads the header only)."""
    match = _MEDIA_URL.match(source) if isinstance(source, str) else None
    if match is None or int(match.group(1)) != project_id:
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        head = b"".join(ctx.media.read(object_key(project_id, match.group(2)), 0, 1024 * 1024))
        with Image.open(io.BytesIO(head)) as image:
            return float(image.width), float(image.height)
    except (OSError, UnidentifiedImageError, FileNotFoundError):
        return None
