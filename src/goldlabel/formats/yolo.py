"""YOLO detection labels, in a zip laid out as Ultralytics reads it.

``data.yaml`` names the splits and classes; ``labels/<split>/<stem>.txt`` holds one line per box,
``class x_center y_center width height``, all relative to the image size (0..1), classes
numbered from 0 in label-schema order. Images given as ``data:`` URIs are written to
``images/<split>/<stem>.<ext>``; for the others ``images.csv`` lists split, stem and source, so
the training machine can fetch them into ``images/<split>/``.
"""

from __future__ import annotations

import csv
import io

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
IMPORTS = False


def _yaml_string(text: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is a subset)."""
    import json

    return json.dumps(text, ensure_ascii=False)


class Writer(LabeledWriter):
    NAME = NAME
    KINDS = ("boxes",)

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
                raise ValueError(f"item {item.external_id!r}: pixel boxes without an image size")
            width, height = size
        else:
            width = height = 1.0
        lines = []
        for box in item.value:
            x, y, w, h = box["x"] / width, box["y"] / height, box["w"] / width, box["h"] / height
            lines.append(f"{self.classes[box['label']]} {x + w / 2:.6f} {y + h / 2:.6f} {w:.6f} {h:.6f}\n")
        stem = file_stem(item)
        self.archive.put(f"labels/{item.split}/{stem}.txt", "".join(lines).encode())
        source = item.data.get(question.source)
        decoded = decode_data_uri(source)
        if decoded is not None:
            self.archive.put(f"images/{item.split}/{stem}.{decoded[1]}", decoded[0])
        else:
            self.sources_csv.writerow([item.split, stem, item.external_id, source or ""])

    def finish(self) -> None:
        keys = {"train": "train", "validation": "val", "test": "test"}
        lines = ["# goldlabel export: YOLO detection labels", "path: .",
                 *(f"{keys[s]}: images/{s}" for s in SPLITS), "names:"]
        lines += [f"  {i}: {_yaml_string(label)}" for label, i in self.classes.items()]
        self.archive.put("data.yaml", ("\n".join(lines) + "\n").encode())
        self.sources.detach()
        self.archive.close()
