"""The checks of one import row, before anything is written: its keys and types, its gold
answer, predictions and (a Label Studio import's) answers against the label schema, the image
sources the workspace would refuse, and its data and meta as they will be stored (JSON limits,
size). Each problem is a FieldError with the row's line; services/import_rows.py writes the
rows that pass.
"""

from __future__ import annotations

from typing import Any

import orjson

from goldlabel.domain.errors import FieldError, GoldlabelError
from goldlabel.domain.json_limits import MESSAGES, check_json, printable, text_problem
from goldlabel.domain.label_schema import LabelSchema

ITEM_KEYS = frozenset({"external_id", "data", "priority", "meta", "predictions", "gold"})
# Keys an export writes (results, not input): ignored on import so an export re-imports as is.
EXPORT_KEYS = frozenset({"id", "status", "is_gold", "answer", "confidence", "source", "reviewer", "reviewed_at",
                         "answers"})
MAX_PRIORITY = 2**31 - 1


def check_row(row: Any, line: int, schema: LabelSchema, *, with_answers: bool = False
              ) -> tuple[dict | None, list[FieldError]]:
    """Validate one row by hand (no model per row: this runs a million times per import).

    ``with_answers``: the row may carry ``answers`` (``[{"annotator", "value", "created_at",
    "duration_ms"}]``, what a Label Studio import makes of annotations) and its predictions may
    answer some questions only; elsewhere ``answers`` is what an export wrote, and is ignored."""
    if row.__class__ is dict:
        # Fast path for the common row (no gold, no predictions, well-formed): plain type
        # checks only; anything unusual falls through to the full check below.
        get = row.get
        ext, data, meta, priority = get("external_id"), get("data"), get("meta"), get("priority", 0)
        if priority is None:
            priority = 0
        if (
            ext.__class__ is str and 0 < len(ext) <= 255 and ext.isascii() and "\x00" not in ext
            and data.__class__ is dict
            and priority.__class__ is int and -MAX_PRIORITY <= priority <= MAX_PRIORITY
            and (meta is None or meta.__class__ is dict)
            and get("gold") is None and get("predictions") is None
            and ITEM_KEYS.issuperset(row)
        ):
            return {"external_id": ext, "data": data, "priority": priority, "meta": meta, "gold": None,
                    "predictions": ()}, []
    if not isinstance(row, dict):
        return None, [FieldError((), "not_an_object", "each row must be a JSON object", line)]
    errors: list[FieldError] = []
    unknown = () if ITEM_KEYS.issuperset(row) else row.keys() - ITEM_KEYS - EXPORT_KEYS
    if unknown:
        errors.append(
            FieldError((min(unknown),), "unknown_field",
                       f"unknown field(s) {', '.join(sorted(unknown))}; expected {', '.join(sorted(ITEM_KEYS))}", line)
        )
    ext = row.get("external_id")
    if isinstance(ext, int) and not isinstance(ext, bool):
        ext = str(ext)
    if not isinstance(ext, str) or not ext or len(ext) > 255:
        errors.append(FieldError(("external_id",), "bad_external_id",
                                 "external_id must be a non-empty string of at most 255 characters", line))
    elif (code := text_problem(ext)) is not None:
        errors.append(FieldError(("external_id",), code, f"external_id: {MESSAGES[code]}", line))
        ext = printable(ext)
    data = row.get("data")
    if not isinstance(data, dict):
        errors.append(FieldError(("data",), "bad_data", "data must be a JSON object", line))
        data = None
    priority = row.get("priority", 0)
    if priority is None:
        priority = 0
    if not isinstance(priority, int) or isinstance(priority, bool) or abs(priority) > MAX_PRIORITY:
        errors.append(FieldError(("priority",), "bad_priority", "priority must be an integer", line))
    meta = row.get("meta")
    if meta is not None and not isinstance(meta, dict):
        errors.append(FieldError(("meta",), "bad_meta", "meta must be a JSON object", line))
    gold = row.get("gold")
    if gold is not None:
        gold = _check_answer(schema, gold, data, ("gold",), line, errors)
    preds = row.get("predictions")
    clean_preds: list[dict] = []
    if preds is not None:
        if not isinstance(preds, list):
            errors.append(FieldError(("predictions",), "bad_predictions", "predictions must be a list", line))
        else:
            for i, pred in enumerate(preds):
                clean = _check_prediction(schema, pred, data, i, line, errors, partial=with_answers)
                if clean is not None:
                    clean_preds.append(clean)
    clean_answers = _check_answers(schema, row.get("answers"), data, line, errors) if with_answers else ()
    # Data and meta are checked when they are serialised (encode_row); answers here.
    if gold is not None:
        errors.extend(check_json(gold, ("gold",), line=line))
    for i, pred in enumerate(clean_preds):
        errors.extend(check_json(pred["value"], ("predictions", i, "value"), line=line))
    if errors:
        return None, errors
    return {
        "external_id": ext,
        "data": data,
        "priority": priority,
        "meta": meta,
        "gold": gold,
        "predictions": clean_preds,
        "answers": clean_answers,
    }, []


def _check_answers(schema, answers, data, line, errors) -> list[dict]:
    clean: list[dict] = []
    if answers is None:
        return clean
    if not isinstance(answers, list):
        errors.append(FieldError(("answers",), "bad_answers", "answers must be a list", line))
        return clean
    for i, answer in enumerate(answers):
        loc = ("answers", i)
        name = answer.get("annotator") if isinstance(answer, dict) else None
        if not isinstance(name, str) or not 0 < len(name) <= 150 or text_problem(name) is not None:
            errors.append(FieldError(loc, "bad_answer", "an answer needs an 'annotator' name and a 'value'", line))
            continue
        try:
            value = schema.validate_answer(answer.get("value"), data, loc_prefix=(*loc, "value"), partial=True)
        except GoldlabelError as exc:
            errors.extend(FieldError(e.loc, e.code, e.message, line) for e in exc.errors)
            continue
        errors.extend(check_json(value, (*loc, "value"), line=line))
        created, duration = answer.get("created_at"), answer.get("duration_ms")
        clean.append({"annotator": name, "value": value,
                      "created_at": created if isinstance(created, int) and created > 0 else None,
                      "duration_ms": duration if isinstance(duration, int) and 0 <= duration < 2**31 else None})
    return clean


def check_image_sources(boxes, data: dict, line: int, http_hosts, fetch_schemes) -> list[FieldError]:
    errors: list[FieldError] = []
    for q in boxes:
        q.check_image_source(data, ("data",), errors, http_hosts, fetch_schemes)
    return [FieldError(e.loc, e.code, e.message, line) for e in errors]


def _check_answer(schema, value, data, loc, line, errors, partial: bool = False) -> dict | None:
    try:
        return schema.validate_answer(value, data, loc_prefix=loc, partial=partial)
    except GoldlabelError as exc:
        errors.extend(FieldError(e.loc, e.code, e.message, line) for e in exc.errors)
        return None


def _check_prediction(schema, pred, data, i, line, errors, partial: bool = False) -> dict | None:
    loc = ("predictions", i)
    if not isinstance(pred, dict) or "value" not in pred:
        errors.append(FieldError(loc, "bad_prediction", "a prediction is an object with a 'value'", line))
        return None
    score = pred.get("score")
    if score is not None and (not isinstance(score, (int, float)) or isinstance(score, bool)):
        errors.append(FieldError((*loc, "score"), "bad_score", "score must be a number", line))
        return None
    version = pred.get("model_version", "")
    if not isinstance(version, str) or len(version) > 200:
        errors.append(FieldError((*loc, "model_version"), "bad_model_version", "model_version must be a string", line))
        return None
    value = _check_answer(schema, pred["value"], data, (*loc, "value"), line, errors, partial)
    if value is None:
        return None
    return {"value": value, "score": None if score is None else float(score), "model_version": version}


def encode_row(row: dict, line: int, limit: int) -> tuple[str, str | None, list[FieldError]]:
    """The row's data and meta as stored (JSON text), or the errors that keep them out: too deep,
    unencodable text or integers (domain.json_limits), or larger than ``limit`` bytes."""
    texts: list[str | None] = []
    for key in ("data", "meta"):
        value = row[key]
        if value is None:
            texts.append(None)
            continue
        try:
            encoded = orjson.dumps(value)
        except orjson.JSONEncodeError:
            encoded = None
        errors = check_json(value, (key,), line=line, encoded=encoded)
        if errors:
            return "", None, errors
        if encoded is None:  # nothing storable refused, yet orjson did: a type JSON lacks
            return "", None, [FieldError((key,), "not_json", f"{key} holds a value JSON cannot represent", line)]
        if len(encoded) > limit:
            return "", None, [FieldError((key,), "too_large", f"{key} is {len(encoded)} bytes as JSON; "
                                         f"the limit is {limit} (setting max_item_bytes)", line)]
        texts.append(encoded.decode())
    return texts[0] or "", texts[1], []
