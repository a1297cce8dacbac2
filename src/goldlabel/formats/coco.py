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
from pathlib import PurePosixPath
from typing import Any

import orjson

from goldlabel.domain.splits import SPLITS
from goldlabel.formats.archive import SPOOL_BYTES, ZipArchive
from goldlabel.formats.labeled import (
    LabeledItem,
    LabeledWriter,
    decode_data_uri,
    file_stem,
    pixel_boxes,
    pixel_scale,
    size_unknown,
)

NAME = "coco"
EXTENSIONS: tuple[str, ...] = ()
MEDIA_TYPE = "application/zip"
FILE_EXTENSION = "zip"
IMPORTS = False


class _Split:
    def __init__(self) -> None:
        self.images = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed at close()
        self.annotations = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed at close()
        self.n_images = 0
        self.n_annotations = 0


def _append(spool: Any, count: int, obj: dict[str, Any]) -> None:
    if count:
        spool.write(b",")
    spool.write(orjson.dumps(obj))


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
        if question.kind == "boxes":
            size, boxes = pixel_boxes(question, item)
            return size, [{"category_id": self.categories[b["label"]], "bbox": [b["x"], b["y"], b["w"], b["h"]],
                           "area": b["w"] * b["h"], "iscrowd": 0, "segmentation": []} for b in boxes]
        size, sx, sy = pixel_scale(question, item)
        if size is None:
            return None, []
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
            suffix = PurePosixPath(str(source or "").split("?", 1)[0]).suffix[:6]
            image["file_name"] = stem + suffix
            if source:
                image["coco_url"] = source
        image["goldlabel"] = {"external_id": item.external_id, "confidence": item.confidence}
        _append(part.images, part.n_images, image)
        part.n_images += 1
        for body in annotations:
            annotation = {"id": self.next_annotation, "image_id": item.id, **body}
            _append(part.annotations, part.n_annotations, annotation)
            part.n_annotations += 1
            self.next_annotation += 1

    def finish(self) -> None:
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
