"""Pascal VOC: one ``Annotations/<stem>.xml`` per image and ``ImageSets/Main/<split>.txt`` lists,
in a zip. Box corners are in pixels, 1-based and inclusive as in the VOC devkit
(``xmin = x + 1``, ``xmax = x + w``, rounded). Images given as ``data:`` URIs go to ``JPEGImages/``.
"""

from __future__ import annotations

from xml.sax.saxutils import escape  # nosec B406  # escapes text for the VOC XML written here; parses nothing

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


# The document ElementTree wrote for a VOC annotation, byte for byte, as text: building an
# element tree per image was most of the export's time (benchmarks/media_formats.py: 996
# items/s at 1M items). Every value is an integer or passes through ``escape``.
_HEAD = "<?xml version='1.0' encoding='utf-8'?>\n<annotation><folder>JPEGImages</folder>"
_SIZE = ("<filename>{}</filename><size><width>{}</width><height>{}</height><depth>3</depth></size>"
         "<segmented>0</segmented>")
_OBJECT = ("<object><name>{}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>"
           "<bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax></bndbox></object>")


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
        parts = [_HEAD]
        if decoded is not None:
            filename = f"{stem}.{decoded[1]}"
            self.archive.put(f"JPEGImages/{filename}", decoded[0])
        else:
            filename = stem
            parts.append(f"<source><url>{escape(source)}</url></source>" if source else "<source><url /></source>")
        parts.append(_SIZE.format(escape(filename), round(size[0]), round(size[1])))
        for box in boxes:
            x, y = round(box["x"]), round(box["y"])
            parts.append(_OBJECT.format(escape(box["label"]), x + 1, y + 1, max(round(box["x"] + box["w"]), x + 1),
                                        max(round(box["y"] + box["h"]), y + 1)))
        parts.append("</annotation>")
        self.archive.put(f"Annotations/{stem}.xml", "".join(parts).encode())
        self.lists[item.split].write(stem.encode() + b"\n")

    def finish(self) -> None:
        labels = "\n".join(self.question.labels) + "\n"
        self.archive.put("labels.txt", labels.encode())
        self.archive.close()
