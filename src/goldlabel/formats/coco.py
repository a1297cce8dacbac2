"""COCO object detection, segmentation and keypoints: ``annotations/instances_<split>.json``
(``person_keypoints_<split>.json`` for a keypoints question) per split, in a zip.

One image per labeled item, one annotation per object in its consensus label (``bbox`` in pixels,
``[x, y, width, height]``, top-left origin), categories numbered from 1 in label-schema order. A
``polygons`` question writes each polygon as ``segmentation`` (one ring, pixels) with its bbox and
area; a ``keypoints`` question writes ``keypoints`` (``[x, y, v] * K`` in the skeleton's order,
``0, 0, 0`` for a point not labeled) and ``num_keypoints``, and each category carries its
``keypoints`` names and ``skeleton`` (1-based index pairs), as COCO's person keypoints do.
Each annotation also carries ``goldlabel``: the item's confidence and external_id. Images given
as ``data:`` URIs are written into the zip (``images/<split>/``); others keep their URL in
``coco_url``. ``pycocotools.coco.COCO`` loads every file.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import orjson

from goldlabel.domain.errors import FieldError
from goldlabel.domain.splits import SPLITS
from goldlabel.formats.archive import SPOOL_BYTES, ZipArchive
from goldlabel.formats.labeled import (
    LabeledItem,
    LabeledWriter,
    decode_data_uri,
    file_stem,
    pixel_scale,
    size_unknown,
)

NAME = "coco"
EXTENSIONS: tuple[str, ...] = ()
MEDIA_TYPE = "application/zip"
FILE_EXTENSION = "zip"
IMPORTS = False  # as items; ``read_labels`` reads labels for items a project has (services.imports)


class _Split:
    """One split's images and annotations: a batch's images are gathered as dicts and its
    annotations as JSON texts, and written to the spools as one fragment each per batch (one
    ``orjson.dumps`` / one ``join`` and one write per batch, not per object: per-object calls
    were most of the export's time)."""

    def __init__(self) -> None:
        self.images = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed at close()
        self.annotations = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed at close()
        self.n_images = 0
        self.n_annotations = 0
        self.pending_images: list[dict[str, Any]] = []
        self.pending_annotations: list[str] = []

    def flush(self) -> None:
        if self.pending_images:
            if self.n_images:
                self.images.write(b",")
            self.images.write(orjson.dumps(self.pending_images)[1:-1])  # the elements, without brackets
        if self.pending_annotations:
            if self.n_annotations:
                self.annotations.write(b",")
            self.annotations.write(",".join(self.pending_annotations).encode())
        self.n_images += len(self.pending_images)
        self.n_annotations += len(self.pending_annotations)
        self.pending_images.clear()
        self.pending_annotations.clear()


def _suffix(source: str) -> str:
    """The file extension (with its dot, at most 6 characters) of a URL or path, without its query."""
    name = source.split("?", 1)[0].rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return name[dot:][:6] if dot > 0 else ""


class Writer(LabeledWriter):
    NAME = NAME
    KINDS = ("boxes", "polygons", "keypoints")

    def __init__(self, out, questions, **options) -> None:
        super().__init__(out, questions, **options)
        self.archive = ZipArchive(out)
        self.splits = {name: _Split() for name in SPLITS}
        self.categories = {label: i for i, label in enumerate(self.question.labels, start=1)}
        self.next_annotation = 1

    def _annotations(self, item: LabeledItem, first_id: int) -> tuple[tuple[float, float] | None, list[str]]:
        """The image size and the item's annotations as JSON texts (ids from ``first_id``), in pixels.

        Boxes, the hot kind, are formatted straight to JSON: building a dict per box for
        ``orjson`` and freeing it again cost twice the formatting (benchmarks/media_formats.py;
        ``repr`` of a float is its shortest round-trip form, as orjson writes it, and coordinates
        are finite: the label schema validates them)."""
        question = self.question
        size, sx, sy = pixel_scale(question, item)
        if size is None:
            return None, []
        image_id, n = item.id, first_id
        if question.kind == "boxes":
            categories = self.categories
            boxes = []
            for b in item.value:  # a plain loop: the export's hottest lines
                w, h = b["w"] * sx, b["h"] * sy
                boxes.append(f'{{"id":{n},"image_id":{image_id},"category_id":{categories[b["label"]]},"bbox":['
                             f'{b["x"] * sx!r},{b["y"] * sy!r},{w!r},{h!r}],"area":{w * h!r},"iscrowd":0,'
                             f'"segmentation":[]}}')
                n += 1
            return size, boxes
        out: list[dict[str, Any]] = []
        if question.kind == "polygons":
            for polygon in item.value:
                xs = [x * sx for x, _ in polygon["points"]]
                ys = [y * sy for _, y in polygon["points"]]
                ring = [c for xy in zip(xs, ys) for c in xy]
                area = abs(sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i] for i in range(len(xs)))) / 2
                out.append({"category_id": self.categories[polygon["label"]],
                            "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)],
                            "area": area, "iscrowd": 0, "segmentation": [ring]})
        else:
            for instance in item.value:
                skeleton = question.skeleton(instance["label"])
                flat: list[float] = []
                xs, ys = [], []
                for name in skeleton.points:
                    p = instance["points"].get(name)
                    if p is None:
                        flat += [0, 0, 0]
                    else:
                        flat += [p["x"] * sx, p["y"] * sy, p["v"]]
                        xs.append(p["x"] * sx)
                        ys.append(p["y"] * sy)
                bbox = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
                out.append({"category_id": self.categories[instance["label"]], "bbox": bbox,
                            "area": bbox[2] * bbox[3], "iscrowd": 0, "keypoints": flat, "num_keypoints": len(xs),
                            "segmentation": []})
        return size, [orjson.dumps({"id": n + k, "image_id": image_id, **body}).decode()
                      for k, body in enumerate(out)]

    def write_item(self, item: LabeledItem) -> None:
        question = self.question
        size, annotations = self._annotations(item, self.next_annotation)
        if size is None:
            raise size_unknown(NAME, item, question)
        part = self.splits[item.split]
        source = item.data.get(question.source)
        stem = file_stem(item)
        image: dict[str, Any] = {"id": item.id, "width": size[0], "height": size[1]}
        decoded = decode_data_uri(source)
        if decoded is not None:
            image["file_name"] = f"{stem}.{decoded[1]}"
            self.archive.put(f"images/{item.split}/{image['file_name']}", decoded[0])
        else:
            image["file_name"] = stem + _suffix(str(source or ""))
            if source:
                image["coco_url"] = source
        image["goldlabel"] = {"external_id": item.external_id, "confidence": item.confidence}
        part.pending_images.append(image)
        self.next_annotation += len(annotations)
        part.pending_annotations += annotations

    def end_batch(self) -> None:
        for part in self.splits.values():
            part.flush()

    def finish(self) -> None:
        self.end_batch()
        entries = []
        for label, i in self.categories.items():
            entry: dict[str, Any] = {"id": i, "name": label, "supercategory": ""}
            if self.question.kind == "keypoints":
                skeleton = self.question.skeleton(label)
                entry["keypoints"] = list(skeleton.points)
                entry["skeleton"] = [[a + 1, b + 1] for a, b in skeleton.edges]
            entries.append(entry)
        categories = orjson.dumps(entries)
        prefix = "person_keypoints" if self.question.kind == "keypoints" else "instances"
        info = orjson.dumps({"description": f"goldlabel export, question {self.question.name!r}",
                             "version": "1.0"})
        for split, part in self.splits.items():
            if not part.n_images:
                part.images.close()
                part.annotations.close()
                continue
            out = self.archive.member(f"annotations/{prefix}_{split}.json")
            out.write(b'{"info":' + info + b',"licenses":[],"images":[')
            for spool in (part.images, part.annotations):
                spool.seek(0)
                shutil.copyfileobj(spool, out, 1024 * 1024)
                spool.close()
                out.write(b'],"annotations":[' if spool is part.images else b'],"categories":')
            out.write(categories + b"}")
        self.archive.close()


# ---------------------------------------------------------------- reading (labels for existing items)

#: the question kinds ``read_labels`` reads, and what of an annotation each takes
READ_KINDS = {"boxes": "bbox", "polygons": "segmentation", "keypoints": "keypoints"}


def _bad(n: int, key: str, code: str, message: str) -> tuple[int, FieldError]:
    return n, FieldError(("annotations", n - 1, key), code, f"annotation {n}: {message}", None)


def _numbers(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)


def _shapes(ann: dict[str, Any], n: int, kind: str, label: str, category: dict[str, Any]
            ) -> list[dict[str, Any]] | tuple[int, FieldError]:
    """The shapes of one annotation (in pixels), or the error that refuses it."""
    origin = f"annotation {n}" + (f" (id {ann['id']})" if isinstance(ann.get("id"), int) else "")
    if kind == "boxes":
        bbox = ann.get("bbox")
        if not (_numbers(bbox) and len(bbox) == 4):
            return _bad(n, "bbox", "bad_coco", "bbox must be [x, y, width, height] numbers")
        return [{"x": float(bbox[0]), "y": float(bbox[1]), "w": float(bbox[2]), "h": float(bbox[3]),
                 "label": label, "origin": origin}]
    if kind == "polygons":
        segmentation = ann.get("segmentation")
        if isinstance(segmentation, dict):
            return _bad(n, "segmentation", "coco_rle_unsupported",
                        "segmentation is a run-length mask (RLE); a polygons question imports polygons "
                        "[[x1, y1, x2, y2, ...], ...]")
        if not (isinstance(segmentation, list) and segmentation and all(_numbers(r) for r in segmentation)):
            return _bad(n, "segmentation", "bad_coco",
                        "segmentation must be a non-empty list of polygons [x1, y1, x2, y2, ...]")
        out = []
        # An object split by an occluder is several rings: each becomes a polygon of the label.
        for ring in segmentation:
            if len(ring) % 2:
                return _bad(n, "segmentation", "bad_coco",
                            f"a polygon ring holds x, y pairs; this one has {len(ring)} numbers")
            out.append({"points": [[float(ring[i]), float(ring[i + 1])] for i in range(0, len(ring), 2)],
                        "label": label, "origin": origin})
        return out
    flat = ann.get("keypoints")
    if not (_numbers(flat) and flat and len(flat) % 3 == 0):
        return _bad(n, "keypoints", "bad_coco", "keypoints must be [x1, y1, v1, x2, y2, v2, ...] numbers")
    names = category.get("keypoints")
    if names is not None and not (isinstance(names, list) and all(isinstance(x, str) for x in names)):
        return _bad(n, "category_id", "bad_coco", f"category {label!r}: 'keypoints' must list the point names")
    if names is not None and len(names) != len(flat) // 3:
        return _bad(n, "keypoints", "keypoint_count_mismatch",
                    f"{len(flat) // 3} keypoints, but category {label!r} names {len(names)}")
    return [{"label": label, "coords": [(flat[i], flat[i + 1], flat[i + 2]) for i in range(0, len(flat), 3)],
             "point_names": names, "origin": origin}]


def read_labels(stream, kind: str = "boxes") -> Iterator[tuple[int, Any]]:
    """``(image number, label row | FieldError)`` per image of a COCO file (one
    ``instances_*.json`` or ``person_keypoints_*.json``): ``{"names": [external_id candidates],
    "where", "units": "pixel", "size": (width, height) | None, "shapes": [...]}``. What a shape
    is depends on ``kind``: boxes ``{"x", "y", "w", "h", "label"}`` from ``bbox``; polygons
    ``{"points": [[x, y], ...], "label"}``, one per ring of ``segmentation`` (a run-length mask
    is refused); keypoints ``{"label", "coords": [(x, y, v), ...], "point_names"}`` with the
    category's ``keypoints`` names (None when it has none). Each shape also has ``origin``
    (which annotation) and, when the annotation has one, ``score``. An annotation that is not
    an image's is refused by its number, as is one of a category the file does not define
    (``unknown_category``). Candidates: the ``goldlabel.external_id`` a goldlabel export wrote,
    then ``file_name``. An image without annotations is an image with no objects."""
    if kind not in READ_KINDS:
        raise ValueError(f"COCO labels are read for {', '.join(READ_KINDS)}, not {kind!r}")
    try:
        doc = orjson.loads(stream.read())
    except orjson.JSONDecodeError as exc:
        yield 0, FieldError((), "bad_json", f"not valid JSON: {exc}", None)
        return
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) \
            or not isinstance(doc.get("annotations"), list) or not isinstance(doc.get("categories"), list):
        yield 0, FieldError((), "bad_coco", "a COCO file is an object with 'images', 'annotations' and "
                            "'categories' lists", None)
        return
    categories: dict[Any, dict[str, Any]] = {}
    for c in doc["categories"]:
        if isinstance(c, dict) and isinstance(c.get("name"), str):
            categories[c.get("id")] = c
    image_ids = {image.get("id") for image in doc["images"] if isinstance(image, dict)}
    shapes: dict[Any, list[dict[str, Any]]] = {}
    for n, ann in enumerate(doc["annotations"], start=1):
        if not isinstance(ann, dict):
            yield _bad(n, "", "bad_coco", "an annotation is an object")
            continue
        category = categories.get(ann.get("category_id"))
        if category is None:
            yield _bad(n, "category_id", "unknown_category",
                       f"category_id {ann.get('category_id')!r} is not in 'categories'")
            continue
        if ann.get("image_id") not in image_ids:
            yield _bad(n, "image_id", "unknown_image", f"image_id {ann.get('image_id')!r} is not in 'images'")
            continue
        got = _shapes(ann, n, kind, category["name"], category)
        if isinstance(got, tuple):
            yield got
            continue
        if isinstance(ann.get("score"), int | float):
            for shape in got:
                shape["score"] = float(ann["score"])
        shapes.setdefault(ann["image_id"], []).extend(got)
    for n, image in enumerate(doc["images"], start=1):
        if not isinstance(image, dict) or not isinstance(image.get("file_name"), str):
            yield n, FieldError(("images", n - 1), "bad_coco", f"image {n}: needs a file_name", None)
            continue
        candidates = []
        own = image.get("goldlabel")
        if isinstance(own, dict) and isinstance(own.get("external_id"), str):
            candidates.append(own["external_id"])
        candidates.append(image["file_name"])
        width, height = image.get("width"), image.get("height")
        size = (float(width), float(height)) if isinstance(width, int | float) and isinstance(height, int | float) \
            and width > 0 and height > 0 else None
        yield n, {"names": candidates, "where": f"image {n} ({image['file_name']})", "units": "pixel",
                  "size": size, "shapes": shapes.get(image.get("id"), [])}
