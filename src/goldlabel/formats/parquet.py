"""Parquet, read one record batch at a time (bounded memory whatever the file size).

Import columns map like CSV's (see formats.columns); ``data``, ``meta``, ``gold`` and
``predictions`` may be nested (struct / list of struct) or JSON text. Export writes one row group
per batch: JSON-valued fields (data, meta, answer values) as JSON text, since their shape varies
from item to item and a Parquet schema is fixed per file; ``answers`` and ``predictions`` as
lists of structs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from goldlabel.domain.errors import FieldError
from goldlabel.formats.columns import HeaderError, build_row, plan_columns

NAME = "parquet"
EXTENSIONS = (".parquet", ".pq")
MEDIA_TYPE = "application/vnd.apache.parquet"
READ_BATCH_ROWS = 10_000

ANSWER_TYPE = pa.list_(pa.struct([
    ("annotator", pa.string()), ("value", pa.string()), ("created_at", pa.int64()), ("duration_ms", pa.int64()),
]))
PREDICTION_TYPE = pa.list_(pa.struct([("model_version", pa.string()), ("value", pa.string()), ("score", pa.float64())]))


def read_rows(stream: BinaryIO) -> Iterator[tuple[int, Any]]:
    """``(row number, row)``; row numbers count from 1 like data lines."""
    try:
        pf = pq.ParquetFile(stream)
    except (pa.ArrowException, OSError) as exc:
        yield 0, FieldError((), "bad_parquet", f"not a readable Parquet file: {exc}", 0)
        return
    try:
        plan = plan_columns(pf.schema_arrow.names)
    except HeaderError as exc:
        yield 0, exc.error
        return
    wanted = sorted({i for i, _, _ in plan})
    line = 0
    try:
        # No column projection: pyarrow reads dotted names ("data.text") as nested paths.
        for batch in pf.iter_batches(batch_size=READ_BATCH_ROWS):
            unread = [None] * batch.num_rows
            columns: list[list[Any]] = [unread] * batch.num_columns
            for i in wanted:  # columns the plan ignores are never converted
                columns[i] = batch.column(i).to_pylist()
            for values in zip(*columns):
                line += 1
                yield line, build_row(plan, values, line, is_text=False)
    except (pa.ArrowException, OSError) as exc:
        yield line + 1, FieldError((), "bad_parquet", f"unreadable Parquet data, reading stopped here: {exc}", line + 1)


class Writer:
    def __init__(self, out: BinaryIO, questions: list[str], *, include_predictions: bool, include_gold: bool) -> None:
        self.questions = questions
        self.include_predictions = include_predictions
        self.include_gold = include_gold
        fields = [
            ("id", pa.int64()), ("external_id", pa.string()), ("status", pa.string()), ("priority", pa.int64()),
            ("is_gold", pa.bool_()), ("data", pa.string()), ("meta", pa.string()),
        ]
        fields += [(f"answer.{q}", pa.string()) for q in questions]
        fields += [(f"confidence.{q}", pa.float64()) for q in questions]
        fields.append(("answers", ANSWER_TYPE))
        if include_predictions:
            fields.append(("predictions", PREDICTION_TYPE))
        if include_gold:
            fields.append(("gold", pa.string()))
        self.schema = pa.schema(fields)
        self._writer = pq.ParquetWriter(out, self.schema, compression="zstd")

    def write_batch(self, records: Iterable[dict[str, Any]]) -> None:
        records = list(records)
        if not records:
            return
        questions = self.questions
        cols: dict[str, list[Any]] = {
            "id": [r["id"] for r in records],
            "external_id": [r["external_id"] for r in records],
            "status": [r["status"] for r in records],
            "priority": [r["priority"] for r in records],
            "is_gold": [bool(r["is_gold"]) for r in records],
            "data": [r["data"] for r in records],
            "meta": [r["meta"] for r in records],
        }
        answer_cols = [[None] * len(records) for _ in questions]
        confidence_cols = [[None] * len(records) for _ in questions]
        index = {q: k for k, q in enumerate(questions)}
        for n, r in enumerate(records):
            for q, v, c in r["consensus"]:
                k = index.get(q)
                if k is not None:
                    answer_cols[k][n] = v
                    confidence_cols[k][n] = c
        for k, q in enumerate(questions):
            cols[f"answer.{q}"] = answer_cols[k]
        for k, q in enumerate(questions):
            cols[f"confidence.{q}"] = confidence_cols[k]
        cols["answers"] = [
            [{"annotator": a, "value": v, "created_at": t, "duration_ms": d} for a, v, t, d in r["answers"]]
            for r in records
        ]
        if self.include_predictions:
            cols["predictions"] = [
                [{"model_version": m, "value": v, "score": s} for m, v, s in r["predictions"]] for r in records
            ]
        if self.include_gold:
            cols["gold"] = [r["gold"] for r in records]
        arrays = [pa.array(cols[f.name], type=f.type) for f in self.schema]
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))

    def close(self) -> None:
        self._writer.close()
