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
IMPORTS = False  # as items; ``read_labels`` reads boxes for items a project has (services.imports)


class _Split:
    """One split's images and annotations: a batch's objects are gathered in lists and written
    to the spools as one JSON fragment each (one ``orjson.dumps`` and one write per batch, not
    per object: per-object calls were most of the export's time)."""

    def __init__(self) -> None:
        self.images = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed at close()
        self.annotations = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed at close()
        self.n_images = 0
        self.n_annotations = 0
        self.pending_images: list[dict[str, Any]] = []
        self.pending_annotations: list[dict[str, Any]] = []

    def flush(self) -> None:
        for spool, pending, count in ((self.images, self.pending_images, self.n_images),
                                      (self.annotations, self.pending_annotations, self.n_annotations)):
            if not pending:
                continue
            if count:
                spool.write(b",")
            spool.write(orjson.dumps(pending)[1:-1])  # the list's elements, without its brackets
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

    def _annotations(self, item: LabeledItem) -> tuple[tuple[float, float] | None, list[dict[str, Any]]]:
        """The image size and the item's annotations (without id and image_id), in pixels."""
        question = self.question
        size, sx, sy = pixel_scale(question, item)
        if size is None:
            return None, []
        if question.kind == "boxes":
            categories = self.categories
            return size, [{"category_id": categories[b["label"]], "bbox": [b["x"] * sx, b["y"] * sy, w, h],
                           "area": w * h, "iscrowd": 0, "segmentation": []}
                          for b in item.value for w, h in ((b["w"] * sx, b["h"] * sy),)]
        out = []
        if question.kind == "polygons":
            for polygon in item.value:
                xs = [x * sx for x, _ in polygon["points"]]
                ys = [y * sy for _, y in polygon["points"]]
                ring = [c for xy in zip(xs, ys) for c in xy]
                area = abs(sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i] for i in range(len(xs)))) / 2
                out.append({"category_id": self.categories[polygon["label"]],
                            "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)],
                            "area": area, "iscrowd": 0, "segmentation": [ring]})
            return size, out
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
            out.append({"category_id": self.categories[instance["label"]], "bbox": bbox, "area": bbox[2] * bbox[3],
                        "iscrowd": 0, "keypoints": flat, "num_keypoints": len(xs), "segmentation": []})
        return size, out

    def write_item(self, item: LabeledItem) -> None:
        question = self.question
        size, annotations = self._annotations(item)
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
        for body in annotations:
            body["id"] = self.next_annotation
            body["image_id"] = item.id
            part.pending_annotations.append(body)
            self.next_annotation += 1

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


def read_labels(stream) -> Iterator[tuple[int, Any]]:
    """``(image number, label row | FieldError)`` per image of a COCO detection file (one
    ``instances_*.json``): ``{"names": [external_id candidates], "where", "units": "pixel",
    "size": (width, height) | None, "boxes": [{"x", "y", "w", "h", "label", "score"?}]}``.
    Candidates: the ``goldlabel.external_id`` a goldlabel export wrote, then ``file_name``.
    An image without annotations is an image with no objects (an empty list)."""
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
    names: dict[Any, str] = {}
    for c in doc["categories"]:
        if isinstance(c, dict) and isinstance(c.get("name"), str):
            names[c.get("id")] = c["name"]
    boxes: dict[Any, list[dict[str, Any]]] = {}
    for n, ann in enumerate(doc["annotations"], start=1):
        bbox = ann.get("bbox") if isinstance(ann, dict) else None
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, int | float) for v in bbox)):
            yield n, FieldError(("annotations", n - 1, "bbox"), "bad_coco",
                                f"annotation {n}: bbox must be [x, y, width, height] numbers", None)
            continue
        label = names.get(ann.get("category_id"))
        if label is None:
            yield n, FieldError(("annotations", n - 1, "category_id"), "bad_coco",
                                f"annotation {n}: category_id {ann.get('category_id')!r} is not in 'categories'", None)
            continue
        box = {"x": float(bbox[0]), "y": float(bbox[1]), "w": float(bbox[2]), "h": float(bbox[3]), "label": label}
        if isinstance(ann.get("score"), int | float):
            box["score"] = float(ann["score"])
        boxes.setdefault(ann.get("image_id"), []).append(box)
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
                  "size": size, "boxes": boxes.get(image.get("id"), [])}
