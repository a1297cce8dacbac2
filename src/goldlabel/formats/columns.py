"""How flat columns (CSV, Parquet) map onto an item row.

A header is planned once; each row then costs one pass over the plan:

- ``external_id``, ``priority``: the item's fields.
- ``data``: a JSON object (CSV) or a struct / JSON string (Parquet) holding the whole data;
  ``data.<field>`` columns add or override one field each.
- ``meta`` (JSON object) and ``meta.<key>`` columns: the item's metadata.
- ``gold``, ``predictions``: JSON (CSV) or nested values / JSON strings (Parquet).
- ``id``, ``status``, ``is_gold``, ``answers``, ``answer.<question>``, ``confidence.<question>``,
  ``source.<question>``, ``reviewer.<question>``, ``reviewed_at.<question>``:
  written by an export and ignored on import, so an exported file re-imports as it is.
- any other column: a field of ``data`` (``text`` -> ``data.text``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from goldlabel.domain.errors import FieldError

# Columns an export writes that describe results, not input: skipped on import.
EXPORT_ONLY = frozenset({"id", "status", "is_gold", "answers"})
EXPORT_ONLY_PREFIXES = ("answer.", "confidence.", "source.", "reviewer.", "reviewed_at.")
JSON_FIELDS = ("data", "meta", "gold", "predictions")

# Plan entry kinds.
FIELD, JSON, DATA_KEY, META_KEY = range(4)


class HeaderError(ValueError):
    def __init__(self, error: FieldError) -> None:
        super().__init__(error.message)
        self.error = error


def plan_columns(names: Sequence[str]) -> list[tuple[int, int, str]]:
    """``(column index, kind, key)`` for every column that feeds the row."""
    seen: set[str] = set()
    plan: list[tuple[int, int, str]] = []
    for i, raw in enumerate(names):
        name = (raw or "").strip()
        if not name:
            raise HeaderError(FieldError((i,), "bad_header", f"column {i + 1} has no name", 1))
        if name in seen:
            raise HeaderError(FieldError((name,), "duplicate_column", f"column {name!r} appears twice", 1))
        seen.add(name)
        if name in EXPORT_ONLY or name.startswith(EXPORT_ONLY_PREFIXES):
            continue
        if name in ("external_id", "priority"):
            plan.append((i, FIELD, name))
        elif name in JSON_FIELDS:
            plan.append((i, JSON, name))
        elif name.startswith("data.") and len(name) > 5:
            plan.append((i, DATA_KEY, name[5:]))
        elif name.startswith("meta.") and len(name) > 5:
            plan.append((i, META_KEY, name[5:]))
        else:
            plan.append((i, DATA_KEY, name))
    if "external_id" not in seen:
        raise HeaderError(FieldError(("external_id",), "missing_column", "the file has no external_id column", 1))
    # The whole-object columns must come first so that per-field columns override them.
    plan.sort(key=lambda entry: entry[1] != JSON)
    return plan


def build_row(
    plan: list[tuple[int, int, str]], values: Sequence[Any], line: int, *, is_text: bool
) -> dict[str, Any] | FieldError:
    """One row dict from one record. ``is_text``: CSV (every cell a string, empty = absent)."""
    row: dict[str, Any] = {}
    data: dict[str, Any] | None = None
    meta: dict[str, Any] | None = None
    for i, kind, key in plan:
        value = values[i]
        if kind == DATA_KEY:
            if data is None:
                data = {}
            data[key] = value
        elif kind == FIELD:
            if is_text:
                if value == "":
                    continue
                if key == "priority":
                    try:
                        value = int(value)
                    except ValueError:
                        pass  # check_row reports bad_priority with the line
            row[key] = value
        elif kind == JSON:
            if value is None or (is_text and value == ""):
                continue
            if isinstance(value, (str, bytes)):
                try:
                    value = orjson.loads(value)
                except orjson.JSONDecodeError as exc:
                    return FieldError((key,), "bad_json", f"column {key!r} is not valid JSON: {exc}", line)
            if key == "data" and isinstance(value, dict):
                data = {**value, **(data or {})}
            elif key == "meta" and isinstance(value, dict):
                meta = {**value, **(meta or {})}
            elif key == "predictions" and isinstance(value, list):
                row[key] = [_decode_prediction(p) for p in value]
            else:
                row[key] = value
        else:  # META_KEY
            if is_text and value == "":
                continue
            if meta is None:
                meta = {}
            meta[key] = value
    if data is not None or "data" not in row:
        row["data"] = data if data is not None else {}
    if meta is not None:
        row["meta"] = meta
    return row


def _decode_prediction(pred: Any) -> Any:
    # Parquet exports store each prediction's value as JSON text (values differ per schema).
    if isinstance(pred, dict) and isinstance(pred.get("value"), str):
        try:
            return {**pred, "value": orjson.loads(pred["value"])}
        except orjson.JSONDecodeError:
            return pred
    return pred
