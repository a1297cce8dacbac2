"""JSON Lines: one item per line, e.g. ``{"external_id": "x1", "data": {"text": "..."}}``.

Blank lines are skipped; a line that is not valid JSON (or not UTF-8) becomes an error entry
carrying its line number and column, so the import report lists it and the rest of the file is still checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from goldlabel.domain.errors import FieldError

NAME = "jsonl"
EXTENSIONS = (".jsonl", ".ndjson")
MEDIA_TYPE = "application/x-ndjson"


def read_rows(stream: BinaryIO) -> Iterator[tuple[int, Any]]:
    """``(line number, row)`` per non-blank line; a malformed line yields a FieldError instead."""
    loads = orjson.loads
    for line, raw in enumerate(stream, start=1):
        if line == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            yield line, loads(raw)
        except orjson.JSONDecodeError as exc:
            if raw.strip():
                yield line, _line_error(raw, exc, line)


def _line_error(raw: bytes, exc: orjson.JSONDecodeError, line: int) -> FieldError:
    """Where on the line (the column; the line is the entry's) and why. orjson's own text counts
    lines and characters of this one line alone ("line 1 column 5 (char 4)"), which read wrongly
    next to the file's line number."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        column = len(raw[: bad.start].decode("utf-8", errors="replace")) + 1
        return FieldError((), "bad_encoding", f"column {column}: byte(s) "
                          f"{raw[bad.start : bad.end].hex(' ')} are not UTF-8; save the file as UTF-8", line)
    return FieldError((), "bad_json", f"column {exc.colno}: not valid JSON: {exc.msg}", line)


class Writer:
    """Writes export records (see services.exports) one JSON object per line."""

    def __init__(self, out: BinaryIO, questions: list[str], *, include_predictions: bool, include_gold: bool,
                 **_training_options: object) -> None:
        self.out = out
        self.include_predictions = include_predictions
        self.include_gold = include_gold

    def write_batch(self, records: list[tuple]) -> None:
        """Records in the layout of ``formats.registry.EXPORT_RECORD``."""
        chunks = self.encode(records)
        if chunks:
            chunks.append(b"")
            self.out.write(b"\n".join(chunks))

    def encode(self, records: list[tuple]) -> list[bytes]:
        """One JSON document (bytes) per record."""
        dumps = orjson.dumps
        Fragment = orjson.Fragment  # local alias for the hot loop
        with_predictions, with_gold = self.include_predictions, self.include_gold
        chunks = []
        for item_id, ext, data, meta, priority, status, is_gold, consensus, answers, preds, gold in records:
            doc = {
                "id": item_id,
                "external_id": ext,
                "status": status,
                "priority": priority,
                "is_gold": is_gold,
                "data": Fragment(data),
                "meta": None if meta is None else Fragment(meta),
                "answer": {q: Fragment(v) for q, v, *_ in consensus},
                "confidence": {q: c for q, _, c, *_ in consensus},
                "source": {q: s for q, _, _, s, _, _ in consensus},
                "reviewer": {q: r for q, _, _, _, r, _ in consensus if r is not None},
                "reviewed_at": {q: t for q, _, _, _, _, t in consensus if t is not None},
                "answers": [
                    {"annotator": a, "value": Fragment(v), "created_at": t, "duration_ms": d} for a, v, t, d in answers
                ],
            }
            if with_predictions:
                doc["predictions"] = [{"model_version": m, "value": Fragment(v), "score": sc} for m, v, sc in preds]
            if with_gold:
                doc["gold"] = None if gold is None else Fragment(gold)
            chunks.append(dumps(doc))
        return chunks

    def close(self) -> None:
        pass
