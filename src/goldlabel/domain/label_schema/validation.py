"""Label schema validation shared by every kind: the kinds, the error codes, the limits, and
the helpers that report a field error."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from goldlabel.domain.errors import FieldError

KINDS = ("choice", "multi_choice", "rating", "text", "spans", "boxes", "ranking", "polygons", "keypoints")

#: Every error code this module emits, with what it means. Codes never change once published.
ERROR_CODES: dict[str, str] = {
    # schema
    "invalid_json": "the schema is a string that is not valid JSON",
    "missing_field": "a field the schema needs (questions, name, kind) is absent",
    "no_questions": "the schema has an empty question list",
    "bad_name": "a question name is not 1-64 of [A-Za-z0-9_-] starting with a letter or '_'",
    "duplicate_question": "two questions share a name",
    "unknown_kind": "a question's kind is not one of the supported kinds",
    "unknown_option": "a key that this question kind (or the schema) does not know; often a typo",
    "bad_option": "an option value outside its range, or inconsistent with another option",
    "empty_labels": "a question that needs labels has none",
    "duplicate_label": "a label appears twice (in the schema, or in one multi_choice answer)",
    "bad_label": "a label is empty or longer than 200 characters",
    # answers
    "wrong_type": "a value has the wrong JSON type (e.g. a string where a list is expected)",
    "unknown_question": "an answer key (or a looked-up name) is not a question of the schema",
    "missing_answer": "a required question has no answer (absent or null)",
    "unknown_label": "a label that is not among the question's labels",
    "too_few_selections": "a multi_choice answer selects fewer labels than min_selections",
    "too_many_selections": "a multi_choice answer selects more labels than max_selections",
    "out_of_range": "a rating outside [min, max]",
    "off_step": "a rating that is not min + k * step (e.g. 3.5 on an integer scale)",
    "too_short": "a text answer shorter than min_length",
    "too_long": "a text answer longer than max_length",
    "missing_field_value": "an object in an answer lacks a key (e.g. a span without 'end')",
    "unknown_field": "an object in an answer has a key it may not have",
    "empty_span": "a span with start >= end",
    "span_out_of_range": "a span with start < 0 or end > the length of the text",
    "span_text_mismatch": "a span's optional 'text' differs from the item text at [start, end)",
    "duplicate_span": "the same span (start, end, label) given twice",
    "overlapping_spans": "spans overlap while the question sets allow_overlap: false",
    "degenerate_box": "a box with w <= 0 or h <= 0",
    "box_out_of_bounds": "a box that does not lie inside the image",
    "duplicate_box": "the same box (x, y, w, h, label) given twice",
    "too_few_points": "a polygon with fewer than 3 distinct points",
    "too_many_points": "a polygon with more than 10,000 points",
    "self_intersection": "a polygon whose edges cross or touch each other",
    "degenerate_polygon": "a polygon that encloses no area (collinear points)",
    "point_out_of_bounds": "a polygon point outside the image",
    "duplicate_polygon": "the same polygon (points, label) given twice",
    "unknown_keypoint": "a keypoint name that is not in the skeleton of the instance's label",
    "keypoint_out_of_bounds": "a keypoint outside the image",
    "bad_visibility": "a keypoint visibility flag v that is not 0, 1 or 2 (COCO)",
    "no_keypoints": "a keypoint instance with no labeled point (v = 1 or 2)",
    "ranking_not_permutation": "a ranking that misses, repeats or invents a candidate",
    "empty_group": "an empty tie group in a ranking with allow_ties",
    # item data the question reads
    "missing_source": "the item data lacks a field the question reads (text, image, size, ...)",
    "bad_source": "the item data field the question reads has the wrong type or content",
    # image sources (goldlabel.domain.media_sources, the rule the workspace applies too)
    "http_host_not_allowed": "an http: image URL whose host is not in the media_http_hosts setting",
    "unsupported_scheme": "an image source that is not https:, a media path or data:image",
    "bad_media_path": "a same-origin image path that is not /api/v1/projects/<id>/media/<sha256>.<ext>",
    "bad_data_uri": "a data: image source that is not data:image/(png|jpeg|gif|webp|svg+xml);base64",
    "fetch_scheme_not_allowed": "an object in place (s3://, file://, gs://, ...) of a scheme the server "
                                "does not fetch (media_fetch_schemes)",
    "bad_fetch_url": "an object in place that is not s3://bucket/key or file:///absolute/path",
}

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}\Z")
_MAX_LABEL_LENGTH = 200
_MAX_TEXT_LENGTH = 1_000_000
_DEFAULT_TEXT_MAX_LENGTH = 10_000
# Relative box coordinates come from floating-point UI math: x + w may land a hair above 1.
_BOX_EPSILON = 1e-9
_MISSING: Any = object()

Loc = tuple[str | int, ...]


def _err(errors: list[FieldError], loc: Loc, code: str, message: str) -> None:
    assert code in ERROR_CODES, code  # nosec B101  # internal invariant, not an access or input check
    errors.append(FieldError(loc, code, message))


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def _wrong_type(errors: list[FieldError], loc: Loc, expected: str, value: Any) -> None:
    _err(errors, loc, "wrong_type", f"expected {expected}, got {_type_name(value)}")
