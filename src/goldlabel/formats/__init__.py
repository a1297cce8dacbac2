"""Import / export file formats, one module each (jsonl, csv_format, parquet,
json_array).

Each module has ``NAME``, ``EXTENSIONS``, ``MEDIA_TYPE``, ``read_rows(stream)`` yielding
``(line, row dict | FieldError)`` with bounded memory (json_array
reads its file whole), and a ``Writer`` for exports.
"""

from goldlabel.formats.registry import FORMATS, detect_format, get_format

__all__ = ["FORMATS", "detect_format", "get_format"]
