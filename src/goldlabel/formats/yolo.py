"""YOLO detection, segmentation and pose labels, in a zip laid out as Ultralytics reads it.

``data.yaml`` names the splits and classes; ``labels/<split>/<stem>.txt`` holds one line per
object, all coordinates relative to the image size (0..1), classes numbered from 0 in
label-schema order:

* boxes (detect): ``class x_center y_center width height``;
* polygons (segment): ``class x1 y1 x2 y2 ...``, the polygon's vertices;
* keypoints (pose): ``class x_center y_center width height px1 py1 v1 ...``, the box around the
  labeled points, then every point of the skeleton in order (``0 0 0`` when not labeled; v as in
  COCO). ``data.yaml`` adds ``kpt_shape: [K, 3]``; K is the largest skeleton's size (a label with
  a shorter skeleton pads with ``0 0 0``), and ``kpt_names`` per class.
 Images given as ``data:`` URIs are written to
``images/<split>/<stem>.<ext>``; for the others ``images.csv`` lists split, stem and source, so
the training machine can fetch them into ``images/<split>/``.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from goldlabel.domain.errors import FieldError, GoldlabelError
from goldlabel.domain.splits import SPLITS
from goldlabel.formats.archive import ZipArchive
from goldlabel.formats.labeled import (
    LabeledItem,
    LabeledWriter,
    decode_data_uri,
    file_stem,
    image_size,
)

NAME = "yolo"
EXTENSIONS: tuple[str, ...] = ()
MEDIA_TYPE = "application/zip"
FILE_EXTENSION = "zip"
IMPORTS = False  # as items; ``read_labels`` reads labels for items a project has (services.imports)


def _yaml_string(text: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is a subset)."""
    import json

    return json.dumps(text, ensure_ascii=False)


class Writer(LabeledWriter):
    NAME = NAME
    KINDS = ("boxes", "polygons", "keypoints")

    def __init__(self, out, questions, **options) -> None:
        super().__init__(out, questions, **options)
        self.archive = ZipArchive(out)
        self.classes = {label: i for i, label in enumerate(self.question.labels)}
        self.sources = io.TextIOWrapper(self.archive.member("images.csv"), encoding="utf-8", newline="",
                                        write_through=True)
        self.sources_csv = csv.writer(self.sources, lineterminator="\n")
        self.sources_csv.writerow(["split", "stem", "external_id", "source"])

    def write_item(self, item: LabeledItem) -> None:
        question = self.question
        if question.coordinates == "pixel":
            size = image_size(question, item.data)
            if size is None:  # the schema checked pixel answers against these fields: unreachable
                raise ValueError(f"item {item.external_id!r}: pixel {question.kind} without an image size")
            width, height = size
        else:
            width = height = 1.0
        lines = []
        if question.kind == "boxes":
            for box in item.value:
                x, y, w, h = box["x"] / width, box["y"] / height, box["w"] / width, box["h"] / height
                lines.append(f"{self.classes[box['label']]} {x + w / 2:.6f} {y + h / 2:.6f} {w:.6f} {h:.6f}\n")
        elif question.kind == "polygons":
            for polygon in item.value:
                coords = " ".join(f"{x / width:.6f} {y / height:.6f}" for x, y in polygon["points"])
                lines.append(f"{self.classes[polygon['label']]} {coords}\n")
        else:
            k = self._kpt_count()
            for instance in item.value:
                names = question.skeleton(instance["label"]).points
                points = [instance["points"].get(name) for name in names]
                xs = [p["x"] / width for p in points if p]
                ys = [p["y"] / height for p in points if p]
                x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
                fields = [f"{p['x'] / width:.6f} {p['y'] / height:.6f} {p['v']}" if p else "0 0 0" for p in points]
                fields += ["0 0 0"] * (k - len(points))
                lines.append(f"{self.classes[instance['label']]} {(x0 + x1) / 2:.6f} {(y0 + y1) / 2:.6f} "
                             f"{x1 - x0:.6f} {y1 - y0:.6f} {' '.join(fields)}\n")
        stem = file_stem(item)
        self.archive.put(f"labels/{item.split}/{stem}.txt", "".join(lines).encode())
        source = item.data.get(question.source)
        decoded = decode_data_uri(source)
        if decoded is not None:
            self.archive.put(f"images/{item.split}/{stem}.{decoded[1]}", decoded[0])
        else:
            self.sources_csv.writerow([item.split, stem, item.external_id, source or ""])

    def _kpt_count(self) -> int:
        return max(len(s.points) for s in self.question.skeletons)

    def finish(self) -> None:
        keys = {"train": "train", "validation": "val", "test": "test"}
        task = {"boxes": "detection", "polygons": "segmentation", "keypoints": "pose"}[self.question.kind]
        lines = [f"# goldlabel export: YOLO {task} labels", "path: .",
                 *(f"{keys[s]}: images/{s}" for s in SPLITS), "names:"]
        lines += [f"  {i}: {_yaml_string(label)}" for label, i in self.classes.items()]
        if self.question.kind == "keypoints":
            lines.append(f"kpt_shape: [{self._kpt_count()}, 3]")
            lines.append("kpt_names:")
            for label, i in self.classes.items():
                names = ", ".join(_yaml_string(n) for n in self.question.skeleton(label).points)
                lines.append(f"  {i}: [{names}]")
        self.archive.put("data.yaml", ("\n".join(lines) + "\n").encode())
        self.sources.detach()
        self.archive.close()


# ---------------------------------------------------------------- reading (labels for existing items)


# A label file (or data.yaml, images.csv) unpacked from a zip is read whole: bounded here.
MAX_MEMBER_BYTES = 64 * 1024 * 1024


def open_members(source) -> dict[str, Callable[[], bytes]]:
    """The files of a YOLO folder or zip (a path or a stream), by their path inside it."""
    if isinstance(source, str | Path) and Path(source).is_dir():
        root = Path(source)
        return {p.relative_to(root).as_posix(): p.read_bytes for p in sorted(root.rglob("*"))
                if p.is_file() and not p.is_symlink()}
    try:
        archive = zipfile.ZipFile(source)
    except zipfile.BadZipFile as exc:
        raise GoldlabelError(f"a YOLO import is a folder or a .zip: {exc}", code="bad_yolo", status=422) from exc
    members = {}
    for info in archive.infolist():
        if info.is_dir():
            continue
        if info.file_size > MAX_MEMBER_BYTES and (info.filename.endswith((".txt", ".yaml", ".csv", ".names"))):
            raise GoldlabelError(f"{info.filename}: {info.file_size} bytes unpacked; a YOLO label file may hold "
                                 f"{MAX_MEMBER_BYTES} (a zip bomb?)", code="file_too_large", status=422)
        members[info.filename] = lambda n=info.filename: archive.read(n)
    return members


def _data_yaml(members: dict[str, Callable[[], bytes]]) -> tuple[str | None, Any]:
    """(name, parsed document) of the set's data.yaml (or dataset.yaml); (None, None) without one."""
    import yaml

    yaml_name = next((n for n in members if PurePosixPath(n).name in ("data.yaml", "dataset.yaml")), None)
    if yaml_name is None:
        return None, None
    try:
        return yaml_name, yaml.safe_load(members[yaml_name]())
    except yaml.YAMLError as exc:
        return yaml_name, FieldError((yaml_name,), "bad_yolo", f"{yaml_name}: not valid YAML: {exc}", None)


def _class_names(members: dict[str, Callable[[], bytes]], yaml_name: str | None, doc: Any
                 ) -> list[str] | FieldError:
    if isinstance(doc, FieldError):
        return doc
    if yaml_name is not None:
        names = doc.get("names") if isinstance(doc, dict) else None
        if isinstance(names, dict) and all(isinstance(k, int) for k in names):
            names = [names[k] for k in sorted(names)]
        if isinstance(names, list) and all(isinstance(n, str) for n in names):
            return names
        return FieldError((yaml_name, "names"), "bad_yolo", f"{yaml_name}: 'names' must list the class names", None)
    classes = next((n for n in members if PurePosixPath(n).name in ("classes.txt", "obj.names")), None)
    if classes is not None:
        return [line.strip() for line in members[classes]().decode("utf-8", "replace").splitlines() if line.strip()]
    return FieldError((), "bad_yolo", "no class names: add data.yaml (names) or classes.txt", None)


def _pose_layout(yaml_name: str | None, doc: Any, n_classes: int
                 ) -> tuple[int | None, int, dict[int, list[str]]] | FieldError:
    """(K or None when data.yaml does not say, values per point (2 or 3), point names per class)
    from data.yaml's ``kpt_shape`` and goldlabel's ``kpt_names``."""
    shape = doc.get("kpt_shape") if isinstance(doc, dict) else None
    names = doc.get("kpt_names") if isinstance(doc, dict) else None
    k, dims = None, 3
    if shape is not None:
        if not (isinstance(shape, list) and len(shape) == 2 and all(isinstance(v, int) for v in shape)
                and shape[0] > 0 and shape[1] in (2, 3)):
            return FieldError((yaml_name, "kpt_shape"), "bad_yolo",
                              f"{yaml_name}: kpt_shape must be [K, 2] or [K, 3]", None)
        k, dims = shape
    per_class: dict[int, list[str]] = {}
    if isinstance(names, dict):
        for cls, point_names in names.items():
            if isinstance(cls, int) and 0 <= cls < n_classes and isinstance(point_names, list) \
                    and all(isinstance(x, str) for x in point_names):
                per_class[cls] = point_names
    return k, dims, per_class


def _parse_line(parts: list[str], kind: str, names: list[str], pose: tuple[int | None, int, dict[int, list[str]]],
                where: str) -> dict[str, Any] | tuple[str, str]:
    """One label line as a shape (still in fractions of the image), or (code, message) saying
    what is wrong with it."""
    try:
        cls = int(parts[0])
        numbers = [float(p) for p in parts[1:]]
    except ValueError:
        return "bad_yolo", f"{where}: expected a class number followed by numbers"
    if not 0 <= cls < len(names):
        return "unknown_category", f"{where}: class {cls} is not among the {len(names)} class names"
    label = names[cls]
    if kind == "boxes":
        if len(numbers) not in (4, 5):
            return "bad_yolo", f"{where}: expected 'class x_center y_center width height' (5 numbers)"
        cx, cy, w, h = numbers[:4]
        box: dict[str, Any] = {"x": cx - w / 2, "y": cy - h / 2, "w": w, "h": h, "label": label}
        if len(numbers) == 5:
            box["score"] = numbers[4]
        return box
    if kind == "polygons":
        if len(numbers) % 2:
            return "bad_yolo", f"{where}: expected 'class x1 y1 x2 y2 ...' (x, y pairs), got {len(numbers)} coordinates"
        return {"points": [[numbers[i], numbers[i + 1]] for i in range(0, len(numbers), 2)], "label": label}
    k, dims, point_names = pose
    rest = numbers[4:]
    if k is None and len(rest) % 3 == 0:
        count = len(rest) // 3
    elif k is not None and len(rest) == k * dims:
        count = k
    else:
        want = f"{k} keypoints of {dims} values" if k is not None else "x y v per keypoint"
        return "bad_yolo", (f"{where}: expected 'class x_center y_center width height' and {want}, "
                            f"got {len(numbers)} numbers")
    coords = [(rest[i * dims], rest[i * dims + 1], rest[i * dims + 2] if dims == 3 else 2) for i in range(count)]
    return {"label": label, "coords": coords, "point_names": point_names.get(cls)}


def read_labels(members: dict[str, Callable[[], bytes]], kind: str = "boxes") -> Iterator[tuple[int, Any]]:
    """``(file number, label row | FieldError)`` per label file (``*.txt`` but classes.txt) of a
    YOLO set: ``{"names": [external_id candidates], "where", "units": "relative", "size": None,
    "shapes": [...]}``, still fractions of the image. By ``kind``: detect lines become boxes
    ``{"x", "y", "w", "h", "label", "score"?}`` (centre converted to the top-left corner);
    segment lines polygons ``{"points", "label"}``; pose lines ``{"label", "coords": [(x, y, v),
    ...], "point_names"}`` with K and the values per point from data.yaml's ``kpt_shape``
    (without it, x y v triples) and the names from ``kpt_names`` (a goldlabel export writes
    them; None otherwise). Each shape carries ``origin`` (``"line 3"``) and ``line``. Candidates: the
    external_id a goldlabel export listed in images.csv for the file's stem, then the stem itself
    (the service also matches it against the items' file names). A bad line refuses its file
    (``bad_yolo``, with the file and line number)."""
    yaml_name, doc = _data_yaml(members)
    names = _class_names(members, yaml_name, doc)
    if isinstance(names, FieldError):
        yield 0, names
        return
    pose = _pose_layout(yaml_name, doc, len(names)) if kind == "keypoints" else (None, 3, {})
    if isinstance(pose, FieldError):
        yield 0, pose
        return
    by_stem: dict[str, str] = {}
    listing = next((n for n in members if PurePosixPath(n).name == "images.csv"), None)
    if listing is not None:
        for row in csv.DictReader(io.StringIO(members[listing]().decode("utf-8", "replace"))):
            if row.get("stem") and row.get("external_id"):
                by_stem[row["stem"]] = row["external_id"]
    labels = sorted(n for n in members if n.endswith(".txt") and PurePosixPath(n).name not in ("classes.txt",)
                    and PurePosixPath(n).name != "obj.names")
    for number, name in enumerate(labels, start=1):
        stem = PurePosixPath(name).stem
        shapes, bad = [], None
        text = members[name]().decode("utf-8", "replace")
        for line_no, line in enumerate(text.splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            shape = _parse_line(parts, kind, names, pose, f"{name} line {line_no}")
            if isinstance(shape, tuple):
                bad = FieldError((name,), shape[0], shape[1], line_no)
                break
            shape["origin"], shape["line"] = f"line {line_no}", line_no
            shapes.append(shape)
        if bad is not None:
            yield number, bad
            continue
        candidates = [by_stem[stem]] if stem in by_stem else []
        yield number, {"names": [*candidates, stem], "where": f"file {name}", "units": "relative", "size": None,
                       "shapes": shapes}
