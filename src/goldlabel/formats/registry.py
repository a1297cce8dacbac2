"""The file formats goldlabel reads and writes, by name or by file extension."""

from __future__ import annotations

from pathlib import PurePath
from types import ModuleType

from goldlabel.domain.errors import GoldlabelError
from goldlabel.formats import (
    coco,
    conll,
    csv_format,
    hf,
    json_array,
    jsonl,
    parquet,
    spacy_format,
    voc,
    yolo,
)

# What an export hands each format's Writer.write_batch: a list of tuples, in this order.
# JSON-valued fields are JSON text (embedded as is); ``consensus`` is ((question, value, confidence, source,
# reviewer, reviewed_at), ...) (source: consensus, review, gold or auto; reviewer: a pseudonym or
# username, with reviewed_at in ms, for a reviewed label, else None),
# ``answers`` ((annotator, value, created_at, duration_ms), ...), ``predictions``
# ((model_version, value, score), ...), ``gold`` JSON text or None.
EXPORT_RECORD = ("id", "external_id", "data", "meta", "priority", "status", "is_gold", "consensus", "answers",
                 "predictions", "gold")

FORMATS: dict[str, ModuleType] = {
    m.NAME: m for m in (jsonl, csv_format, parquet, json_array, coco, yolo, voc, conll, spacy_format, hf)
}
# Formats a project's items can be imported from (the training formats are export-only).
IMPORT_FORMATS = tuple(name for name, m in FORMATS.items() if getattr(m, "IMPORTS", True))
EXPORT_FORMATS = tuple(FORMATS)
ALIASES = {"ndjson": "jsonl", "pq": "parquet", "huggingface": "hf", "pascal_voc": "voc", "conll2003": "conll"}


def get_format(name: str) -> ModuleType:
    key = ALIASES.get(name.lower(), name.lower())
    module = FORMATS.get(key)
    if module is None:
        raise GoldlabelError(
            f"unknown format {name!r}; expected one of {', '.join(FORMATS)}", code="unknown_format", status=422
        )
    return module


def detect_format(filename: str | None, fmt: str | None = None) -> ModuleType:
    """The explicit import ``fmt`` if given, else the one the file extension names."""
    if fmt:
        module = get_format(fmt)
        if module.NAME not in IMPORT_FORMATS:
            raise GoldlabelError(
                f"{module.NAME} is an export format; import from one of {', '.join(IMPORT_FORMATS)}",
                code="unknown_format", status=422,
            )
        return module
    suffix = PurePath(filename or "").suffix.lower()
    for module in FORMATS.values():
        if suffix in module.EXTENSIONS:
            return module
    raise GoldlabelError(
        f"cannot tell the format of {filename or 'the upload'!r} from its extension; "
        f"name it .jsonl, .ndjson, .csv, .parquet or .json or pass the format ({', '.join(IMPORT_FORMATS)})",
        code="unknown_format",
        status=422,
    )
