"""Pascal VOC: one ``Annotations/<stem>.xml`` per image and ``ImageSets/Main/<split>.txt`` lists,
in a zip. Box corners are in pixels, 1-based and inclusive as in the VOC devkit
(``xmin = x + 1``, ``xmax = x + w``, rounded). Images given as ``data:`` URIs go to ``JPEGImages/``.
"""

from __future__ import annotations

from xml.etree import ElementTree as ET  # nosec B405  # builds and writes VOC XML; never parses any

from goldlabel.domain.splits import SPLITS
from goldlabel.formats.archive import ZipArchive
from goldlabel.formats.labeled import (
    LabeledItem,
    LabeledWriter,
    decode_data_uri,
    file_stem,
    pixel_boxes,
    size_unknown,
)

NAME = "voc"
EXTENSIONS: tuple[str, ...] = ()
MEDIA_TYPE = "application/zip"
FILE_EXTENSION = "zip"
IMPORTS = False


def _sub(parent: ET.Element, tag: str, text: object | None = None) -> ET.Element:
    node = ET.SubElement(parent, tag)
    if text is not None:
        node.text = str(text)
    return node


class Writer(LabeledWriter):
    NAME = NAME
    KINDS = ("boxes",)

    def __init__(self, out, questions, **options) -> None:
        super().__init__(out, questions, **options)
        self.archive = ZipArchive(out)
        self.lists = {split: self.archive.member(f"ImageSets/Main/{split}.txt") for split in SPLITS}

    def write_item(self, item: LabeledItem) -> None:
        question = self.question
        size, boxes = pixel_boxes(question, item)
        if size is None:
            raise size_unknown(NAME, item, question)
        stem = file_stem(item)
        source = item.data.get(question.source)
        decoded = decode_data_uri(source)
        root = ET.Element("annotation")
        _sub(root, "folder", "JPEGImages")
        if decoded is not None:
            filename = f"{stem}.{decoded[1]}"
            self.archive.put(f"JPEGImages/{filename}", decoded[0])
        else:
            filename = stem
            _sub(_sub(root, "source"), "url", source or "")
        _sub(root, "filename", filename)
        size_node = _sub(root, "size")
        _sub(size_node, "width", round(size[0]))
        _sub(size_node, "height", round(size[1]))
        _sub(size_node, "depth", 3)
        _sub(root, "segmented", 0)
        for box in boxes:
            obj = _sub(root, "object")
            _sub(obj, "name", box["label"])
            _sub(obj, "pose", "Unspecified")
            _sub(obj, "truncated", 0)
            _sub(obj, "difficult", 0)
            bnd = _sub(obj, "bndbox")
            _sub(bnd, "xmin", round(box["x"]) + 1)
            _sub(bnd, "ymin", round(box["y"]) + 1)
            _sub(bnd, "xmax", max(round(box["x"] + box["w"]), round(box["x"]) + 1))
            _sub(bnd, "ymax", max(round(box["y"] + box["h"]), round(box["y"]) + 1))
        self.archive.put(f"Annotations/{stem}.xml", ET.tostring(root, encoding="utf-8", xml_declaration=True))
        self.lists[item.split].write(stem.encode() + b"\n")

    def finish(self) -> None:
        labels = "\n".join(self.question.labels) + "\n"
        self.archive.put("labels.txt", labels.encode())
        self.archive.close()
