"""What the training formats share: one labeled item per export record, for one question.

The export hands every writer records in the layout of ``formats.registry.EXPORT_RECORD``. The
training formats (COCO, YOLO, VOC, CoNLL, spaCy, Hugging Face) write one question's consensus
label, so a ``LabeledWriter`` picks that question (the one named, else the first of a kind the
format can hold), keeps the items whose consensus for it is known (and confident enough, when a
floor is set), and hands each to the format as a ``LabeledItem`` with its split.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, ClassVar

import orjson

from goldlabel.domain.errors import GoldlabelError
from goldlabel.domain.splits import DEFAULT_SPLIT_RATIOS, splits_of


@dataclass(slots=True)
class LabeledItem:
    id: int
    external_id: str
    data: dict[str, Any]
    split: str
    value: Any
    confidence: float | None
    status: str


def format_unsupported(fmt: str, kinds: Sequence[str], schema: Any, question: str | None) -> GoldlabelError:
    have = ", ".join(f"{q.name} ({q.kind})" for q in schema.questions)
    what = f"question {question!r}" if question else "a question"
    return GoldlabelError(
        f"the {fmt} format needs {what} of kind {' or '.join(kinds)}; this project has {have}",
        code="format_not_applicable", status=422,
    )


def pick_question(fmt: str, kinds: Sequence[str], schema: Any, question: str | None) -> Any:
    """The named question (it must be of a kind the format holds), else the first such."""
    for q in schema.questions:
        if (question is None or q.name == question) and q.kind in kinds:
            return q
    raise format_unsupported(fmt, kinds, schema, question)


class LabeledWriter:
    """Base of the training-format writers: subclasses set NAME and KINDS and implement
    ``write_item`` and ``finish``."""

    NAME: ClassVar[str]
    KINDS: ClassVar[tuple[str, ...]]

    def __init__(self, out: BinaryIO, questions: list[str], *, include_predictions: bool = False,
                 include_gold: bool = False, schema: Any = None, split_ratios: Sequence[float] | None = None,
                 question: str | None = None, min_confidence: float | None = None) -> None:
        if schema is None:
            raise GoldlabelError(f"the {self.NAME} format needs the label schema", code="format_not_applicable",
                                 status=422)
        self.out = out
        self.schema = schema
        self.question = pick_question(self.NAME, self.KINDS, schema, question)
        self.split_ratios = tuple(split_ratios or DEFAULT_SPLIT_RATIOS)
        self.min_confidence = min_confidence
        self.include_gold = include_gold
        self.written = 0

    @classmethod
    def check(cls, schema: Any, question: str | None) -> None:
        """Raise the error the writer would, before any byte of the export is written."""
        pick_question(cls.NAME, cls.KINDS, schema, question)

    def write_batch(self, records: list[tuple]) -> None:
        name = self.question.name
        floor = self.min_confidence
        loads = orjson.loads
        picked = []
        include_gold = self.include_gold
        for record in records:
            # The known answer first: a gold item's consensus is the crowd's (services/consensus.py
            # gold_decision), which the gold answer, when exported, overrules.
            gold = record[10]
            if include_gold and gold is not None and name in (gold_value := loads(gold)):
                value, confidence = gold_value[name], 1.0
            else:
                for entry in record[7]:  # the consensus rows
                    if entry[0] == name:
                        value, confidence = loads(entry[1]), entry[2]
                        break
                else:
                    continue  # no label yet: an unlabeled image is not an image with no objects
            if floor is not None and (confidence is None or confidence < floor):
                continue
            picked.append((record, value, confidence))
        splits = splits_of([record[1] for record, _, _ in picked], self.split_ratios)
        write_item = self.write_item
        for (record, value, confidence), split in zip(picked, splits, strict=True):
            write_item(LabeledItem(record[0], record[1], loads(record[2]), split, value, confidence, record[5]))
        self.written += len(picked)
        self.end_batch()

    def write_item(self, item: LabeledItem) -> None:
        raise NotImplementedError

    def end_batch(self) -> None:
        """Called after each batch: a writer that buffers per batch writes its buffer here."""

    def close(self) -> None:
        self.finish()

    def finish(self) -> None:
        raise NotImplementedError


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# an external_id file_stem keeps as it is (most of them: checked first, one match)
_KEPT = re.compile(r"(?![._])[A-Za-z0-9._-]{1,120}(?<![._])")


def file_stem(item: LabeledItem) -> str:
    """A file name stem from the external_id: safe characters only, the item id added when
    anything had to be replaced (two ids could otherwise meet in one name)."""
    if _KEPT.fullmatch(item.external_id):
        return item.external_id
    safe = _UNSAFE.sub("_", item.external_id).strip("._")[:120]
    if safe and safe == item.external_id:
        return safe
    return f"{safe or 'item'}_{item.id}"


_DATA_URI = re.compile(r"data:(image/[a-z0-9.+-]+)?(;base64)?,", re.IGNORECASE)
_IMAGE_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp",
                     "image/bmp": "bmp", "image/tiff": "tif"}


def decode_data_uri(source: object) -> tuple[bytes, str] | None:
    """(bytes, file extension) of a base64 ``data:image/...`` URI, else None (for anything else,
    a URL or a missing field)."""
    if not isinstance(source, str) or source[:5].lower() != "data:":
        return None
    match = _DATA_URI.match(source)
    if match is None or not match.group(2):
        return None
    try:
        raw = base64.b64decode(source[match.end():], validate=False)
    except (binascii.Error, ValueError):
        return None
    return raw, _IMAGE_EXTENSIONS.get((match.group(1) or "").lower(), "bin")


def image_size(question: Any, data: Mapping[str, Any]) -> tuple[float, float] | None:
    """(width, height) in pixels: the item data's size fields, else read from a data: URI."""
    width, height = data.get(question.width_field), data.get(question.height_field)
    if isinstance(width, int | float) and isinstance(height, int | float) and width > 0 and height > 0:
        return float(width), float(height)
    source = data.get(question.source)
    decoded = decode_data_uri(source)
    if decoded is None:
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(decoded[0])) as image:
            return float(image.width), float(image.height)
    except (UnidentifiedImageError, OSError):
        return None


def pixel_boxes(question: Any, item: LabeledItem) -> tuple[tuple[float, float] | None, list[dict[str, Any]]]:
    """The image size (None when unknown) and the item's boxes in pixels (empty when the size is
    unknown and the boxes are relative)."""
    size = image_size(question, item.data)
    if question.coordinates == "pixel":
        return size, list(item.value)
    if size is None:
        return None, []
    w, h = size
    return size, [{**b, "x": b["x"] * w, "y": b["y"] * h, "w": b["w"] * w, "h": b["h"] * h} for b in item.value]


def pixel_scale(question: Any, item: LabeledItem) -> tuple[tuple[float, float] | None, float, float]:
    """The image size (None when unknown) and the factors (sx, sy) that turn the question's
    coordinates into pixels (1 for pixel coordinates, the image size for relative ones)."""
    size = image_size(question, item.data)
    if size is None:
        return None, 1.0, 1.0
    if question.coordinates == "pixel":
        return size, 1.0, 1.0
    return size, size[0], size[1]


def size_unknown(fmt: str, item: LabeledItem, question: Any) -> GoldlabelError:
    return GoldlabelError(
        f"item {item.external_id!r}: the {fmt} format writes {question.kind} in pixels, but the image size is "
        f"unknown (relative coordinates, no {question.width_field!r}/{question.height_field!r} fields in "
        "the item data, and the image is not a data: URI)",
        code="image_size_unknown", status=422,
    )
