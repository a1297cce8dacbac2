"""Parquet, read one record batch at a time (bounded memory whatever the file size).

Import columns map like CSV's (see formats.columns); ``data``, ``meta``, ``gold`` and
``predictions`` may be nested (struct / list of struct) or JSON text. Export writes one row group
per batch: JSON-valued fields (data, meta, answer values) as JSON text, since their shape varies
from item to item and a Parquet schema is fixed per file; ``answers`` and ``predictions`` as
lists of structs.
"""

from __future__ import annotations

from collections.abc import Iterator
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
        fields += [(f"source.{q}", pa.string()) for q in questions]
        fields += [(f"reviewer.{q}", pa.string()) for q in questions]
        fields += [(f"reviewed_at.{q}", pa.int64()) for q in questions]
        fields.append(("answers", ANSWER_TYPE))
        if include_predictions:
            fields.append(("predictions", PREDICTION_TYPE))
        if include_gold:
            fields.append(("gold", pa.string()))
        self.schema = pa.schema(fields)
        self._writer = pq.ParquetWriter(out, self.schema, compression="zstd")

    def write_batch(self, records: list[tuple]) -> None:
        """Records in the layout of ``formats.registry.EXPORT_RECORD``; one row group each call."""
        if not records:
            return
        n = len(records)
        (ids, exts, datas, metas, priorities, statuses, golds_flag, consensus, answers, preds, golds) = zip(*records)
        questions = self.questions
        index = {q: k for k, q in enumerate(questions)}
        answer_cols = [[None] * n for _ in questions]
        confidence_cols = [[None] * n for _ in questions]
        source_cols = [[None] * n for _ in questions]
        reviewer_cols = [[None] * n for _ in questions]
        reviewed_cols = [[None] * n for _ in questions]
        for row, item_consensus in enumerate(consensus):
            for q, v, c, source, reviewer, reviewed_at in item_consensus:
                k = index.get(q)
                if k is not None:
                    answer_cols[k][row] = v
                    confidence_cols[k][row] = c
                    source_cols[k][row] = source
                    reviewer_cols[k][row] = reviewer
                    reviewed_cols[k][row] = reviewed_at
        arrays = [
            pa.array(ids, pa.int64()), pa.array(exts, pa.string()), pa.array(statuses, pa.string()),
            pa.array(priorities, pa.int64()), pa.array(golds_flag, pa.bool_()), pa.array(datas, pa.string()),
            pa.array(metas, pa.string()),
        ]
        arrays += [pa.array(col, pa.string()) for col in answer_cols]
        arrays += [pa.array(col, pa.float64()) for col in confidence_cols]
        arrays += [pa.array(col, pa.string()) for col in source_cols]
        arrays += [pa.array(col, pa.string()) for col in reviewer_cols]
        arrays += [pa.array(col, pa.int64()) for col in reviewed_cols]
        arrays.append(_list_of_structs(answers, ANSWER_TYPE))
        if self.include_predictions:
            arrays.append(_list_of_structs(preds, PREDICTION_TYPE))
        if self.include_gold:
            arrays.append(pa.array(golds, pa.string()))
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))

    def close(self) -> None:
        self._writer.close()


def _list_of_structs(per_row: tuple[tuple[tuple, ...], ...], list_type: pa.ListType) -> pa.Array:
    """Build a list<struct> column from per-row tuples, column by column (no dict per element)."""
    offsets = [0]
    total = 0
    for entries in per_row:
        total += len(entries)
        offsets.append(total)
    struct_type = list_type.value_type
    flat = [e for entries in per_row for e in entries]
    fields = list(zip(*flat)) if flat else [() for _ in range(struct_type.num_fields)]
    children = [pa.array(values, struct_type.field(k).type) for k, values in enumerate(fields)]
    values = pa.StructArray.from_arrays(children, fields=list(struct_type))
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values, type=list_type)
