"""Parquet, read one record batch at a time (bounded memory whatever the file size).

Import columns map like CSV's (see formats.columns); ``data``, ``meta``, ``gold`` and
``predictions`` may be nested (struct / list of struct) or JSON text. Export writes one row group
per batch: JSON-valued fields (data, meta, answer values) as JSON text, since their shape varies
from item to item and a Parquet schema is fixed per file; ``answers`` and ``predictions`` as
lists of structs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
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


@dataclass(frozen=True)
class ReadLimits:
    """How far a Parquet file may expand when read (issue 17, item 9: a 24 KB file held 1 GB of
    item data). ``max_bytes`` is ``max(min_bytes, expansion x the file's size)`` of decoded
    (Arrow) data; ``max_rows`` counts rows. Both are checked against the file's metadata before
    anything is decoded, then against what is actually decoded, batch by batch."""

    max_rows: int = 10_000_000
    expansion: float = 50.0
    min_bytes: int = 64 * 1024**2

    def max_bytes(self, file_size: int) -> int:
        return max(self.min_bytes, int(self.expansion * file_size))


# One batch holds about this much decoded data (rows per batch shrink for wide rows), so what
# one batch can decode before the count stops it stays small.
BATCH_TARGET_BYTES = 16 * 1024**2
FIRST_BATCH_ROWS = 256


def _file_size(stream: BinaryIO) -> int:
    here = stream.tell()
    size = stream.seek(0, 2)
    stream.seek(here)
    return size


def read_rows(stream: BinaryIO, limits: ReadLimits | None = None) -> Iterator[tuple[int, Any]]:
    """``(row number, row)``; row numbers count from 1 like data lines. Past ``limits`` (default
    ``ReadLimits()``) reading stops with a ``too_large`` error."""
    limits = limits or ReadLimits()
    try:
        pf = pq.ParquetFile(stream)
        metadata = pf.metadata
        declared_rows = metadata.num_rows
        declared_bytes = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
        max_bytes = limits.max_bytes(_file_size(stream))
    except (pa.ArrowException, OSError, ValueError) as exc:
        yield 0, FieldError((), "bad_parquet", f"not a readable Parquet file: {exc}", 0)
        return
    if declared_rows > limits.max_rows:
        yield 0, FieldError((), "too_many_rows", f"the file holds {declared_rows} rows; an import takes at most "
                            f"{limits.max_rows} (setting max_import_rows)", 0)
        return
    if declared_bytes > max_bytes:
        yield 0, _too_large(declared_bytes, max_bytes, 0)
        return
    try:
        plan = plan_columns(pf.schema_arrow.names)
    except HeaderError as exc:
        yield 0, exc.error
        return
    wanted = sorted({i for i, _, _ in plan})
    # Rows per batch from the bytes per row seen so far (the metadata's at first, at most
    # FIRST_BATCH_ROWS rows: a dictionary-encoded column decodes to more than the metadata
    # says), so one batch decodes about BATCH_TARGET_BYTES and the count below overshoots its
    # limit by at most one batch.
    per_row = declared_bytes / declared_rows if declared_rows else 0.0
    line = 0
    decoded = 0
    try:
        for group in range(metadata.num_row_groups):
            batch_rows = max(1, min(READ_BATCH_ROWS if decoded else FIRST_BATCH_ROWS,
                                    int(BATCH_TARGET_BYTES / per_row) if per_row else READ_BATCH_ROWS))
            # No column projection: pyarrow reads dotted names ("data.text") as nested paths.
            for batch in pf.iter_batches(batch_size=batch_rows, row_groups=[group]):
                size = _decoded_bytes(batch)
                decoded += size
                if decoded > max_bytes:
                    yield line + 1, _too_large(decoded, max_bytes, line + 1)
                    return
                if line + batch.num_rows > limits.max_rows:
                    yield line + 1, FieldError((), "too_many_rows", f"more than {limits.max_rows} rows "
                                               "(setting max_import_rows)", line + 1)
                    return
                if batch.num_rows:
                    per_row = max(per_row, size / batch.num_rows)
                yield from _batch_rows(plan, wanted, batch, line)
                line += batch.num_rows
    except (pa.ArrowException, OSError) as exc:
        yield line + 1, FieldError((), "bad_parquet", f"unreadable Parquet data, reading stopped here: {exc}", line + 1)


def _decoded_bytes(batch: pa.RecordBatch) -> int:
    """The bytes a batch holds once decoded: a dictionary column (the file's own Arrow schema
    may ask for one) counts each row's value, not the dictionary once; nothing is expanded to
    count it."""
    total = 0
    for column in batch.columns:
        if pa.types.is_dictionary(column.type):
            values = column.dictionary
            if pa.types.is_string(values.type) or pa.types.is_binary(values.type) or \
                    pa.types.is_large_string(values.type) or pa.types.is_large_binary(values.type):
                lengths = pc.take(pc.binary_length(values), column.indices)
                total += int(pc.sum(lengths).as_py() or 0) + column.indices.nbytes
            else:
                total += column.indices.nbytes + (values.nbytes // max(1, len(values))) * len(column)
        else:
            total += column.nbytes
    return total


def _batch_rows(plan: Any, wanted: list[int], batch: pa.RecordBatch, line: int) -> Iterator[tuple[int, Any]]:
    unread = [None] * batch.num_rows
    columns: list[list[Any]] = [unread] * batch.num_columns
    for i in wanted:  # columns the plan ignores are never converted
        columns[i] = batch.column(i).to_pylist()
    for values in zip(*columns):
        line += 1
        yield line, build_row(plan, values, line, is_text=False)


def _too_large(size: int, limit: int, line: int) -> FieldError:
    return FieldError((), "too_large", f"the file decodes to {size} bytes or more; this import takes at most "
                      f"{limit} (settings parquet_max_expansion x the file size, at least "
                      "parquet_min_decoded_bytes)", line)


class Writer:
    def __init__(self, out: BinaryIO, questions: list[str], *, include_predictions: bool, include_gold: bool,
                 **_training_options: object) -> None:
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
