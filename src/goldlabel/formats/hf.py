"""Hugging Face datasets: one Parquet file per split (``data/<split>-00000.parquet``) in a zip,
with the ``datasets`` feature types in the Parquet schema metadata and a dataset card.

``datasets.load_dataset("parquet", data_files=...)`` (or ``load_dataset(folder)``, which reads the
card's ``configs``) gives a ``DatasetDict`` whose choice columns are ``ClassLabel`` (the label's
index, -1 where an item has no consensus yet) and multi_choice columns lists of ``ClassLabel``;
ratings are floats, text strings, spans and boxes lists of structs, rankings JSON text. Every
question has a ``<question>_confidence`` column. ``data`` and ``answers`` are JSON text.
Feature lists use the plain-list encoding, which every ``datasets`` release reads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from goldlabel.domain.errors import GoldlabelError
from goldlabel.domain.splits import DEFAULT_SPLIT_RATIOS, SPLITS, splits_of
from goldlabel.formats.archive import ZipArchive

NAME = "hf"
EXTENSIONS: tuple[str, ...] = ()
MEDIA_TYPE = "application/zip"
FILE_EXTENSION = "zip"
IMPORTS = False

_STRING = {"dtype": "string", "_type": "Value"}
_INT = {"dtype": "int64", "_type": "Value"}
_FLOAT = {"dtype": "float64", "_type": "Value"}
_SPAN = pa.struct([("start", pa.int64()), ("end", pa.int64()), ("label", pa.string())])
_BOX = pa.struct([("x", pa.float64()), ("y", pa.float64()), ("w", pa.float64()), ("h", pa.float64()),
                  ("label", pa.string())])


_POLYGON = pa.struct([("points", pa.list_(pa.list_(pa.float64()))), ("label", pa.string())])


def _column(question: Any) -> tuple[pa.DataType, Any]:
    """The Arrow type and the ``datasets`` feature of a question's label column."""
    kind = question.kind
    if kind == "choice":
        return pa.int64(), {"names": list(question.labels), "_type": "ClassLabel"}
    if kind == "multi_choice":
        return pa.list_(pa.int64()), [{"names": list(question.labels), "_type": "ClassLabel"}]
    if kind == "rating":
        return pa.float64(), _FLOAT
    if kind == "spans":
        return pa.list_(_SPAN), [{"start": _INT, "end": _INT, "label": _STRING}]
    if kind == "boxes":
        return pa.list_(_BOX), [{"x": _FLOAT, "y": _FLOAT, "w": _FLOAT, "h": _FLOAT, "label": _STRING}]
    if kind == "polygons":
        return pa.list_(_POLYGON), [{"points": [[_FLOAT]], "label": _STRING}]
    # text; ranking as JSON text (tie groups nest); keypoints as JSON text (points keyed by name)
    return pa.string(), _STRING


class Writer:
    def __init__(self, out, questions: list[str], *, include_predictions: bool = False, include_gold: bool = False,
                 schema: Any = None, split_ratios: Sequence[float] | None = None, question: str | None = None,
                 min_confidence: float | None = None) -> None:
        if schema is None:
            raise GoldlabelError("the hf format needs the label schema", code="format_not_applicable", status=422)
        self.questions = [q for q in schema.questions if question is None or q.name == question]
        if not self.questions:
            raise GoldlabelError(f"no question {question!r} in this project", code="format_not_applicable",
                                 status=422)
        self.split_ratios = tuple(split_ratios or DEFAULT_SPLIT_RATIOS)
        self.min_confidence = min_confidence
        self.archive = ZipArchive(out)
        self.sources = sorted({q.source for q in self.questions if isinstance(getattr(q, "source", None), str)})
        fields: list[tuple[str, pa.DataType]] = [("id", pa.int64()), ("external_id", pa.string()),
                                                 ("status", pa.string())]
        features: dict[str, Any] = {"id": _INT, "external_id": _STRING, "status": _STRING}
        for name in self.sources:
            fields.append((name, pa.string()))
            features[name] = _STRING
        for q in self.questions:
            arrow_type, feature = _column(q)
            fields += [(q.name, arrow_type), (f"{q.name}_confidence", pa.float64())]
            features[q.name] = feature
            features[f"{q.name}_confidence"] = _FLOAT
        fields += [("data", pa.string()), ("answers", pa.string())]
        features.update(data=_STRING, answers=_STRING)
        metadata = {b"huggingface": json.dumps({"info": {"features": features}}).encode()}
        self.schema = pa.schema(fields, metadata=metadata)
        self.features = features
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.written = 0

    def _writer(self, split: str) -> pq.ParquetWriter:
        writer = self.writers.get(split)
        if writer is None:
            sink = self.archive.member(f"data/{split}-00000.parquet")
            writer = self.writers[split] = pq.ParquetWriter(sink, self.schema, compression="zstd")
        return writer

    def _label(self, question: Any, value: Any) -> Any:
        kind = question.kind
        if value is None:
            return -1 if kind == "choice" else None
        if kind == "choice":
            return question.labels.index(value)
        if kind == "multi_choice":
            return [question.labels.index(v) for v in value]
        if kind in ("ranking", "keypoints"):
            return orjson.dumps(value).decode()
        return value

    def write_batch(self, records: list[tuple]) -> None:
        rows: dict[str, list[dict[str, Any]]] = {}
        loads, floor = orjson.loads, self.min_confidence
        splits = splits_of([r[1] for r in records], self.split_ratios)
        for (item_id, ext, data, _meta, _priority, status, _is_gold, consensus, answers, _preds, _gold), split in zip(
                records, splits, strict=True):
            by_question = {c[0]: (c[1], c[2]) for c in consensus}
            if floor is not None and any((by_question.get(q.name, (None, None))[1] or 0.0) < floor
                                         for q in self.questions):
                continue
            item_data = loads(data)
            row: dict[str, Any] = {"id": item_id, "external_id": ext, "status": status, "data": data,
                                   "answers": orjson.dumps([
                                       {"annotator": a, "value": orjson.Fragment(v), "created_at": t}
                                       for a, v, t, *_ in answers]).decode()}
            for name in self.sources:
                value = item_data.get(name)
                row[name] = value if isinstance(value, str) or value is None else orjson.dumps(value).decode()
            for q in self.questions:
                value_json, confidence = by_question.get(q.name, (None, None))
                row[q.name] = self._label(q, None if value_json is None else loads(value_json))
                row[f"{q.name}_confidence"] = confidence
            rows.setdefault(split, []).append(row)
        for split, batch in rows.items():
            self._writer(split).write_table(pa.Table.from_pylist(batch, schema=self.schema))
            self.written += len(batch)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        configs = "".join(f"  - split: {s}\n    path: data/{s}-*.parquet\n" for s in SPLITS if s in self.writers)
        card = (
            "---\nconfigs:\n- config_name: default\n  data_files:\n" + configs + "---\n\n"
            "# goldlabel export\n\nLabels with calibrated confidence, exported by goldlabel. Load with\n"
            "`datasets.load_dataset(\"parquet\", data_files={\"train\": \"data/train-00000.parquet\"})`.\n"
        )
        self.archive.put("README.md", card.encode())
        self.archive.close()
