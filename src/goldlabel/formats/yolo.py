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
