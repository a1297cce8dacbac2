"""JSON Lines: one item per line, e.g. ``{"external_id": "x1", "data": {"text": "..."}}``.

Blank lines are skipped; a line that is not valid JSON becomes an error entry carrying its line
number, so the import report lists it and the rest of the file is still checked.
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
                yield line, FieldError((), "bad_json", f"not valid JSON: {exc}", line)


class Writer:
    """Writes export records (see services.exports) one JSON object per line."""

    def __init__(self, out: BinaryIO, questions: list[str], *, include_predictions: bool, include_gold: bool) -> None:
        self.out = out
        self.include_predictions = include_predictions
        self.include_gold = include_gold

    def write_batch(self, records: list[tuple]) -> None:
        """Records in the layout of ``formats.registry.EXPORT_RECORD``."""
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
        if chunks:
            chunks.append(b"")
            self.out.write(b"\n".join(chunks))

    def close(self) -> None:
        pass
