"""COCO object detection: ``annotations/instances_<split>.json`` per split, in a zip.

One image per labeled item, one annotation per box in its consensus label (``bbox`` in pixels,
``[x, y, width, height]``, top-left origin), categories numbered from 1 in label-schema order.
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
    KINDS = ("boxes",)

    def __init__(self, out, questions, **options) -> None:
        super().__init__(out, questions, **options)
        self.archive = ZipArchive(out)
        self.splits = {name: _Split() for name in SPLITS}
        self.categories = {label: i for i, label in enumerate(self.question.labels, start=1)}
        self.next_annotation = 1

    def write_item(self, item: LabeledItem) -> None:
        question = self.question
        size, boxes = pixel_boxes(question, item)
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
        for box in boxes:
            annotation = {
                "id": self.next_annotation, "image_id": item.id, "category_id": self.categories[box["label"]],
                "bbox": [box["x"], box["y"], box["w"], box["h"]], "area": box["w"] * box["h"],
                "iscrowd": 0, "segmentation": [],
            }
            _append(part.annotations, part.n_annotations, annotation)
            part.n_annotations += 1
            self.next_annotation += 1

    def finish(self) -> None:
        categories = orjson.dumps([{"id": i, "name": label, "supercategory": ""}
                                   for label, i in self.categories.items()])
        info = orjson.dumps({"description": f"goldlabel export, question {self.question.name!r}",
                             "version": "1.0"})
        for split, part in self.splits.items():
            if not part.n_images:
                part.images.close()
                part.annotations.close()
                continue
            out = self.archive.member(f"annotations/instances_{split}.json")
            out.write(b'{"info":' + info + b',"licenses":[],"images":[')
            for spool in (part.images, part.annotations):
                spool.seek(0)
                shutil.copyfileobj(spool, out, 1024 * 1024)
                spool.close()
                out.write(b'],"annotations":[' if spool is part.images else b'],"categories":')
            out.write(categories + b"}")
        self.archive.close()
