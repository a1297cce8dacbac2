"""Import / export file formats, one module each.

Item files (import and export): jsonl, csv_format, parquet, json_array. Training formats (export
only, each a zip): coco, yolo, voc (boxes), conll, spacy_format (spans), hf (every question).
Each module has ``NAME``, ``EXTENSIONS``, ``MEDIA_TYPE`` and a ``Writer`` for exports; the item
files also have ``read_rows(stream)`` yielding ``(line, row dict | FieldError)`` with bounded
memory (json_array reads its file whole).
"""

from goldlabel.formats.registry import (
    EXPORT_FORMATS,
    FORMATS,
    IMPORT_FORMATS,
    detect_format,
    get_format,
)

__all__ = ["EXPORT_FORMATS", "FORMATS", "IMPORT_FORMATS", "detect_format", "get_format"]
