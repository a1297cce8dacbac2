"""Label schema: the questions asked about every item, and validation of answers against them.

A project's label schema is JSON, ``{"questions": [{"name": ..., "kind": ..., ...}, ...]}``.
:meth:`LabelSchema.parse` turns it into plain frozen objects once; after that
:meth:`LabelSchema.validate_answer` checks an answer (or a prediction, or a gold answer: they share
one format) and returns its normalized form. Every problem found is collected and raised together as
one :func:`~goldlabel.domain.errors.invalid` error (HTTP 422) whose :class:`FieldError` entries
carry the path to the bad field and a stable code from :data:`ERROR_CODES`.

Validation runs on every submission and on every imported gold answer and prediction (millions),
so the hot path is hand-written: no pydantic model per answer, sets of labels precomputed at parse
time, and no allocation beyond the result dict when the answer is valid.

The user documentation of the format is ``docs/label-schema.md``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from goldlabel.domain.errors import FieldError, invalid

__all__ = [
    "ERROR_CODES",
    "KINDS",
    "BoxesQuestion",
    "ChoiceQuestion",
    "LabelSchema",
    "MultiChoiceQuestion",
    "Question",
    "RankingQuestion",
    "RatingQuestion",
    "SpansQuestion",
    "TextQuestion",
]

KINDS = ("choice", "multi_choice", "rating", "text", "spans", "boxes", "ranking")

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
    "ranking_not_permutation": "a ranking that misses, repeats or invents a candidate",
    "empty_group": "an empty tie group in a ranking with allow_ties",
    # item data the question reads
    "missing_source": "the item data lacks a field the question reads (text, image, size, ...)",
    "bad_source": "the item data field the question reads has the wrong type or content",
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
    assert code in ERROR_CODES, code
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


# --------------------------------------------------------------------------------------------
# Questions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Question:
    """One question of a label schema. Subclasses, one per kind, add the kind's options.

    ``labels`` is empty for the kinds that take none (rating, text, ranking).
    """

    kind: ClassVar[str] = ""
    name: str
    required: bool = True
    title: str | None = None
    description: str | None = None
    labels: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "required": self.required,
            "title": self.title,
            "description": self.description,
        }
        data.update(self._options_json())
        return data

    def _options_json(self) -> dict[str, Any]:
        return {}

    def check(self, value: Any, item_data: Mapping[str, Any] | None, loc: Loc,
              errors: list[FieldError]) -> Any:
        """Check one non-null answer value, append problems to ``errors``, return it normalized."""
        raise NotImplementedError

    def check_item_data(self, item_data: Mapping[str, Any], loc: Loc,
                        errors: list[FieldError]) -> None:
        """Check that ``item_data`` carries what this question reads (nothing by default)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _LabeledQuestion(Question):
    _label_set: frozenset[str] = field(init=False, repr=False, compare=False)
    _label_index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_label_set", frozenset(self.labels))
        object.__setattr__(self, "_label_index", {label: i for i, label in enumerate(self.labels)})

    def _options_json(self) -> dict[str, Any]:
        return {"labels": list(self.labels)}

    def _unknown_label(self, errors: list[FieldError], loc: Loc, value: str) -> None:
        _err(errors, loc, "unknown_label",
             f"unknown label {value!r} for question {self.name!r}; expected one of "
             f"{_preview(self.labels)}")


def _preview(values: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChoiceQuestion(_LabeledQuestion):
    """Pick exactly one label. Answer: the label string."""

    kind: ClassVar[str] = "choice"

    def check(self, value, item_data, loc, errors):
        if value.__class__ is str and value in self._label_set:
            return value
        if not isinstance(value, str):
            _wrong_type(errors, loc, "a label string", value)
        elif value in self._label_set:  # a str subclass
            return str(value)
        else:
            self._unknown_label(errors, loc, value)
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class MultiChoiceQuestion(_LabeledQuestion):
    """Pick any number of distinct labels. Answer: a list of label strings.

    The normalized answer lists the labels in schema order, so equal sets compare equal.
    """

    kind: ClassVar[str] = "multi_choice"
    min_selections: int = 0
    max_selections: int | None = None

    def _options_json(self):
        return {"labels": list(self.labels), "min_selections": self.min_selections,
                "max_selections": self.max_selections}

    def check(self, value, item_data, loc, errors):
        if not isinstance(value, list):
            _wrong_type(errors, loc, "a list of label strings", value)
            return None
        chosen: set[str] = set()
        n_errors = len(errors)
        for i, label in enumerate(value):
            if not isinstance(label, str):
                _wrong_type(errors, (*loc, i), "a label string", label)
            elif label not in self._label_set:
                self._unknown_label(errors, (*loc, i), label)
            elif label in chosen:
                _err(errors, (*loc, i), "duplicate_label", f"label {label!r} selected twice")
            else:
                chosen.add(label)
        if len(errors) > n_errors:
            return None
        if len(chosen) < self.min_selections:
            _err(errors, loc, "too_few_selections",
                 f"select at least {self.min_selections} label(s), got {len(chosen)}")
        if self.max_selections is not None and len(chosen) > self.max_selections:
            _err(errors, loc, "too_many_selections",
                 f"select at most {self.max_selections} label(s), got {len(chosen)}")
        return sorted(map(str, chosen), key=self._label_index.__getitem__)


@dataclass(frozen=True, slots=True, kw_only=True)
class RatingQuestion(Question):
    """A number on a scale [min, max] in steps of ``step`` (``None``: any number in range).

    When min, max and step are all integers the rating is an integer (``4.0`` normalizes to ``4``).
    ``scale_labels`` optionally names every point of the scale, lowest first.
    """

    kind: ClassVar[str] = "rating"
    min: int | float = 1
    max: int | float = 5
    step: int | float | None = 1
    scale_labels: tuple[str, ...] | None = None
    _is_integral: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        integral = _is_int(self.min) and _is_int(self.max) and _is_int(self.step)
        object.__setattr__(self, "_is_integral", integral)

    @property
    def points(self) -> tuple[int | float, ...] | None:
        """Every allowed rating, lowest first; ``None`` for a continuous scale."""
        if self.step is None:
            return None
        n = round((self.max - self.min) / self.step)
        if self._is_integral:
            return tuple(range(self.min, self.max + 1, self.step))  # type: ignore[arg-type]
        return tuple(_snap(self.min + k * self.step) for k in range(n + 1))

    def _options_json(self):
        return {"min": self.min, "max": self.max, "step": self.step,
                "scale_labels": None if self.scale_labels is None else list(self.scale_labels)}

    def check(self, value, item_data, loc, errors):
        if not _is_number(value):
            _wrong_type(errors, loc, "a finite number", value)
            return None
        if not (self.min <= value <= self.max):
            _err(errors, loc, "out_of_range", f"rating {value} is outside [{self.min}, {self.max}]")
            return None
        step = self.step
        if step is None:
            return value
        if self._is_integral:
            if value.__class__ is not int:
                if not float(value).is_integer():
                    _err(errors, loc, "off_step", f"rating {value} is not an integer")
                    return None
                value = int(value)
            if step != 1 and (value - self.min) % step:
                _err(errors, loc, "off_step",
                     f"rating {value} is not {self.min} + k * {step}")
                return None
            return value
        k = (value - self.min) / step
        if abs(k - round(k)) > 1e-9 * max(1.0, abs(k)):
            _err(errors, loc, "off_step", f"rating {value} is not {self.min} + k * {step}")
            return None
        return _snap(self.min + round(k) * step)


def _snap(value: float) -> float:
    # min + k * step in floating point gives 0.30000000000000004; 12 significant digits is
    # far finer than any rating scale and makes equal ratings compare equal.
    return float(f"{value:.12g}")


@dataclass(frozen=True, slots=True, kw_only=True)
class TextQuestion(Question):
    """Free text. Length counts Unicode code points."""

    kind: ClassVar[str] = "text"
    min_length: int = 0
    max_length: int = _DEFAULT_TEXT_MAX_LENGTH

    def _options_json(self):
        return {"min_length": self.min_length, "max_length": self.max_length}

    def check(self, value, item_data, loc, errors):
        if not isinstance(value, str):
            _wrong_type(errors, loc, "a string", value)
            return None
        n = len(value)
        if n < self.min_length:
            _err(errors, loc, "too_short",
                 f"text has {n} character(s), at least {self.min_length} required")
            return None
        if n > self.max_length:
            _err(errors, loc, "too_long",
                 f"text has {n} characters, at most {self.max_length} allowed")
            return None
        return value


def _read_source_text(question: Question, source: str, item_data: Mapping[str, Any], loc: Loc,
                      errors: list[FieldError]) -> str | None:
    text = item_data.get(source, _MISSING)
    if text is _MISSING or text is None:
        _err(errors, loc, "missing_source",
             f"question {question.name!r} reads item data field {source!r}, which is absent")
        return None
    if not isinstance(text, str):
        _err(errors, loc, "bad_source",
             f"item data field {source!r} must be a string, got {_type_name(text)}")
        return None
    return text


def _check_object_keys(obj: Mapping[str, Any], loc: Loc, required: tuple[str, ...],
                       allowed: frozenset[str], errors: list[FieldError]) -> bool:
    ok = True
    for key in required:
        if key not in obj:
            _err(errors, (*loc, key), "missing_field_value", f"{key!r} is required")
            ok = False
    if len(obj) > len(required):
        for key in obj:
            if key not in allowed:
                _err(errors, (*loc, key), "unknown_field",
                     f"unknown key {key!r}; allowed: {', '.join(sorted(allowed))}")
                ok = False
    return ok


_SPAN_KEYS = ("start", "end", "label")
_SPAN_ALLOWED = frozenset((*_SPAN_KEYS, "text"))


@dataclass(frozen=True, slots=True, kw_only=True)
class SpansQuestion(_LabeledQuestion):
    """Labeled regions of a text field of the item: ``[{"start", "end", "label"}, ...]``.

    Offsets are Unicode code point indexes, ``[start, end)``, into ``item_data[source]``
    (Python string indexing; a browser must convert from UTF-16 code units). The normalized answer
    is sorted by (start, end, label) and drops the optional ``text`` echo.
    """

    kind: ClassVar[str] = "spans"
    source: str = "text"
    allow_overlap: bool = True

    def _options_json(self):
        return {"labels": list(self.labels), "source": self.source,
                "allow_overlap": self.allow_overlap}

    def check_item_data(self, item_data, loc, errors):
        _read_source_text(self, self.source, item_data, (*loc, self.source), errors)

    def check(self, value, item_data, loc, errors):
        if not isinstance(value, list):
            _wrong_type(errors, loc, "a list of spans", value)
            return None
        text: str | None = None
        if item_data is not None:
            text = _read_source_text(self, self.source, item_data, loc, errors)
            if text is None:
                return None
        n_errors = len(errors)
        spans: list[tuple[int, int, str, int]] = []
        seen: set[tuple[int, int, str]] = set()
        for i, span in enumerate(value):
            span_loc = (*loc, i)
            if not isinstance(span, Mapping):
                _wrong_type(errors, span_loc, "a span object {start, end, label}", span)
                continue
            if not _check_object_keys(span, span_loc, _SPAN_KEYS, _SPAN_ALLOWED, errors):
                continue
            start, end, label = span["start"], span["end"], span["label"]
            ok = True
            if not _is_int(start):
                _wrong_type(errors, (*span_loc, "start"), "an integer offset", start)
                ok = False
            if not _is_int(end):
                _wrong_type(errors, (*span_loc, "end"), "an integer offset", end)
                ok = False
            if not isinstance(label, str):
                _wrong_type(errors, (*span_loc, "label"), "a label string", label)
                ok = False
            elif label not in self._label_set:
                self._unknown_label(errors, (*span_loc, "label"), label)
                ok = False
            if not ok:
                continue
            if start < 0:
                _err(errors, (*span_loc, "start"), "span_out_of_range",
                     f"start {start} is negative")
                continue
            if start >= end:
                _err(errors, (*span_loc, "end"), "empty_span",
                     f"span [{start}, {end}) is empty: end must be greater than start")
                continue
            if text is not None:
                if end > len(text):
                    _err(errors, (*span_loc, "end"), "span_out_of_range",
                         f"end {end} is beyond the text ({len(text)} characters in "
                         f"{self.source!r})")
                    continue
                echo = span.get("text")
                if echo is not None and echo != text[start:end]:
                    _err(errors, (*span_loc, "text"), "span_text_mismatch",
                         f"text {echo!r} differs from {text[start:end]!r} at [{start}, {end})")
                    continue
            elif "text" in span and not isinstance(span["text"], (str, type(None))):
                _wrong_type(errors, (*span_loc, "text"), "a string", span["text"])
                continue
            key = (start, end, label)
            if key in seen:
                _err(errors, span_loc, "duplicate_span",
                     f"span [{start}, {end}) {label!r} given twice")
                continue
            seen.add(key)
            spans.append((start, end, str(label), i))
        if len(errors) > n_errors:
            return None
        spans.sort()
        if not self.allow_overlap:
            reach = -1
            for start, end, _label, i in spans:
                if start < reach:
                    _err(errors, (*loc, i), "overlapping_spans",
                         f"span [{start}, {end}) overlaps another span; this question sets "
                         "allow_overlap: false")
                reach = max(reach, end)
        return [{"start": s, "end": e, "label": label} for s, e, label, _i in spans]


_BOX_KEYS = ("x", "y", "w", "h", "label")
_BOX_ALLOWED = frozenset(_BOX_KEYS)


@dataclass(frozen=True, slots=True, kw_only=True)
class BoxesQuestion(_LabeledQuestion):
    """Labeled rectangles on the item's image: ``[{"x", "y", "w", "h", "label"}, ...]``.

    (x, y) is the top-left corner. ``coordinates`` is ``"relative"`` (fractions of the image
    width and height, 0..1) or ``"pixel"`` (the image size is read from the item data fields
    ``width_field`` and ``height_field``). ``source`` names the image URL field.
    """

    kind: ClassVar[str] = "boxes"
    source: str = "image"
    coordinates: str = "relative"
    width_field: str = "width"
    height_field: str = "height"

    def _options_json(self):
        return {"labels": list(self.labels), "source": self.source,
                "coordinates": self.coordinates, "width_field": self.width_field,
                "height_field": self.height_field}

    def _image_size(self, item_data: Mapping[str, Any], loc: Loc,
                    errors: list[FieldError], *, loc_per_field: bool) -> tuple[float, float] | None:
        size = []
        for key in (self.width_field, self.height_field):
            where = (*loc, key) if loc_per_field else loc
            value = item_data.get(key)
            if value is None:
                _err(errors, where, "missing_source",
                     f"question {self.name!r} uses pixel coordinates and reads the image size "
                     f"from item data field {key!r}, which is absent")
            elif not _is_number(value) or value <= 0:
                _err(errors, where, "bad_source",
                     f"item data field {key!r} must be a positive number, got {value!r}")
            else:
                size.append(value)
        return (size[0], size[1]) if len(size) == 2 else None

    def check_item_data(self, item_data, loc, errors):
        image = item_data.get(self.source)
        if image is None:
            _err(errors, (*loc, self.source), "missing_source",
                 f"question {self.name!r} reads the image from item data field "
                 f"{self.source!r}, which is absent")
        elif not isinstance(image, str):
            _err(errors, (*loc, self.source), "bad_source",
                 f"item data field {self.source!r} must be an image URL string, "
                 f"got {_type_name(image)}")
        if self.coordinates == "pixel":
            self._image_size(item_data, loc, errors, loc_per_field=True)

    def check(self, value, item_data, loc, errors):
        if not isinstance(value, list):
            _wrong_type(errors, loc, "a list of boxes", value)
            return None
        if self.coordinates == "relative":
            width: float | None = 1.0
            height: float | None = 1.0
        elif item_data is not None:
            size = self._image_size(item_data, loc, errors, loc_per_field=False)
            if size is None:
                return None
            width, height = size
        else:
            width = height = None
        n_errors = len(errors)
        boxes: list[dict[str, Any]] = []
        seen: set[tuple[Any, ...]] = set()
        for i, box in enumerate(value):
            box_loc = (*loc, i)
            if not isinstance(box, Mapping):
                _wrong_type(errors, box_loc, "a box object {x, y, w, h, label}", box)
                continue
            if not _check_object_keys(box, box_loc, _BOX_KEYS, _BOX_ALLOWED, errors):
                continue
            x, y, w, h, label = box["x"], box["y"], box["w"], box["h"], box["label"]
            ok = True
            for key, coord in (("x", x), ("y", y), ("w", w), ("h", h)):
                if not _is_number(coord):
                    _wrong_type(errors, (*box_loc, key), "a finite number", coord)
                    ok = False
            if not isinstance(label, str):
                _wrong_type(errors, (*box_loc, "label"), "a label string", label)
                ok = False
            elif label not in self._label_set:
                self._unknown_label(errors, (*box_loc, "label"), label)
                ok = False
            if not ok:
                continue
            if w <= 0 or h <= 0:
                _err(errors, (*box_loc, "w" if w <= 0 else "h"), "degenerate_box",
                     f"box has width {w} and height {h}; both must be positive")
                continue
            if x < 0 or y < 0:
                _err(errors, (*box_loc, "x" if x < 0 else "y"), "box_out_of_bounds",
                     f"box corner ({x}, {y}) lies outside the image")
                continue
            if width is not None and height is not None:
                eps = _BOX_EPSILON * max(width, height)
                if x + w > width + eps:
                    _err(errors, (*box_loc, "w"), "box_out_of_bounds",
                         f"box right edge x + w = {x + w} exceeds the image width {width}")
                    continue
                if y + h > height + eps:
                    _err(errors, (*box_loc, "h"), "box_out_of_bounds",
                         f"box bottom edge y + h = {y + h} exceeds the image height {height}")
                    continue
            key = (x, y, w, h, label)
            if key in seen:
                _err(errors, box_loc, "duplicate_box", f"box {key} given twice")
                continue
            seen.add(key)
            boxes.append({"x": x, "y": y, "w": w, "h": h, "label": str(label)})
        if len(errors) > n_errors:
            return None
        return boxes


@dataclass(frozen=True, slots=True, kw_only=True)
class RankingQuestion(Question):
    """Order all candidates, best first. Pairwise comparison is a ranking of two candidates.

    Candidates are fixed (``candidates``) or read per item from the list ``item_data[source]``:
    their ``id`` fields when every entry is an object with an ``id``, else their indexes, always as
    strings. Answer: a list of candidate ids; with ``allow_ties`` a list of groups (lists of ids),
    best group first, where the ids inside one group are tied. Integer ids in an answer are
    accepted and normalized to strings; tie groups are normalized to sorted order.
    """

    kind: ClassVar[str] = "ranking"
    candidates: tuple[str, ...] | None = None
    source: str | None = None
    allow_ties: bool = False
    _candidate_set: frozenset[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.candidates is None and self.source is None:
            object.__setattr__(self, "source", "responses")
        cands = None if self.candidates is None else frozenset(self.candidates)
        object.__setattr__(self, "_candidate_set", cands)

    def _options_json(self):
        return {"candidates": None if self.candidates is None else list(self.candidates),
                "source": self.source if self.candidates is None else None,
                "allow_ties": self.allow_ties}

    def get_candidates(self, item_data: Mapping[str, Any] | None) -> tuple[str, ...] | None:
        """The candidate ids for this item; ``None`` when they depend on absent item data.

        Raises ``invalid`` when the item data cannot supply candidates.
        """
        errors: list[FieldError] = []
        cands = self._candidates_for(item_data, ("data", self.source or ""), errors)
        if errors:
            raise invalid(errors)
        return cands

    def _candidates_for(self, item_data: Mapping[str, Any] | None, loc: Loc,
                        errors: list[FieldError]) -> tuple[str, ...] | None:
        if self.candidates is not None:
            return self.candidates
        if item_data is None:
            return None
        source = self.source or "responses"
        entries = item_data.get(source)
        if entries is None:
            _err(errors, loc, "missing_source",
                 f"question {self.name!r} ranks the candidates in item data field {source!r}, "
                 "which is absent")
            return None
        if not isinstance(entries, list):
            _err(errors, loc, "bad_source",
                 f"item data field {source!r} must be a list of candidates, "
                 f"got {_type_name(entries)}")
            return None
        if len(entries) < 2:
            _err(errors, loc, "bad_source",
                 f"item data field {source!r} must hold at least 2 candidates, "
                 f"got {len(entries)}")
            return None
        if all(isinstance(e, Mapping) and _is_candidate_id(e.get("id")) for e in entries):
            ids = tuple(str(e["id"]) for e in entries)
            if len(set(ids)) != len(ids):
                _err(errors, loc, "bad_source",
                     f"the candidates in item data field {source!r} have duplicate ids")
                return None
            return ids
        return tuple(str(i) for i in range(len(entries)))

    def check_item_data(self, item_data, loc, errors):
        if self.candidates is None:
            self._candidates_for(item_data, (*loc, self.source or "responses"), errors)

    def check(self, value, item_data, loc, errors):
        if not isinstance(value, list):
            what = "a list of groups of candidate ids" if self.allow_ties else \
                "a list of candidate ids"
            _wrong_type(errors, loc, what, value)
            return None
        n_errors = len(errors)
        if self._candidate_set is not None:
            candidates: tuple[str, ...] | None = self.candidates
            candidate_set: frozenset[str] | None = self._candidate_set
        else:
            candidates = self._candidates_for(item_data, loc, errors)
            if len(errors) > n_errors:
                return None
            candidate_set = None if candidates is None else frozenset(candidates)
        seen: set[str] = set()

        def check_id(cid: Any, where: Loc) -> str | None:
            if _is_int(cid):
                cid = str(cid)
            elif not isinstance(cid, str):
                _wrong_type(errors, where, "a candidate id string", cid)
                return None
            if candidate_set is not None and cid not in candidate_set:
                _err(errors, where, "ranking_not_permutation",
                     f"unknown candidate {cid!r}; candidates: {_preview(candidates or ())}")
                return None
            if cid in seen:
                _err(errors, where, "ranking_not_permutation",
                     f"candidate {cid!r} appears more than once")
                return None
            seen.add(cid)
            return str(cid)

        result: list[Any] = []
        if self.allow_ties:
            for g, group in enumerate(value):
                if not isinstance(group, list):
                    _wrong_type(errors, (*loc, g), "a list of tied candidate ids", group)
                    continue
                if not group:
                    _err(errors, (*loc, g), "empty_group", "a tie group must not be empty")
                    continue
                ids = [check_id(cid, (*loc, g, j)) for j, cid in enumerate(group)]
                result.append(sorted(i for i in ids if i is not None))
        else:
            for i, cid in enumerate(value):
                result.append(check_id(cid, (*loc, i)))
        if candidates is not None and len(seen) < len(candidates):
            missing = [c for c in candidates if c not in seen]
            _err(errors, loc, "ranking_not_permutation",
                 f"the ranking must order every candidate; missing: {_preview(missing)}")
        if len(errors) > n_errors:
            return None
        return result


def _is_candidate_id(value: Any) -> bool:
    return isinstance(value, str) or _is_int(value)


_QUESTION_CLASSES: dict[str, type[Question]] = {
    cls.kind: cls
    for cls in (ChoiceQuestion, MultiChoiceQuestion, RatingQuestion, TextQuestion,
                SpansQuestion, BoxesQuestion, RankingQuestion)
}


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


class _OptionReader:
    """Reads the keys of one question object, recording every problem and every key used."""

    def __init__(self, obj: Mapping[str, Any], loc: Loc, errors: list[FieldError]) -> None:
        self.obj = obj
        self.loc = loc
        self.errors = errors
        self.used: set[str] = set()
        self.failed = False

    def _get(self, key: str) -> Any:
        self.used.add(key)
        return self.obj.get(key)

    def bad(self, key: str, code: str, message: str) -> None:
        _err(self.errors, (*self.loc, key), code, message)
        self.failed = True

    def text(self, key: str, default: str | None) -> str | None:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            _wrong_type(self.errors, (*self.loc, key), "a string", value)
            self.failed = True
            return default
        return value

    def field_name(self, key: str, default: str) -> str:
        value = self.text(key, default)
        if value == "":
            self.bad(key, "bad_option", f"{key} must name an item data field, got ''")
        return value or default

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            _wrong_type(self.errors, (*self.loc, key), "true or false", value)
            self.failed = True
            return default
        return value

    def integer(self, key: str, default: int | None, *, minimum: int, maximum: int) -> int | None:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not _is_int(value):
            _wrong_type(self.errors, (*self.loc, key), "an integer", value)
            self.failed = True
            return default
        if not minimum <= value <= maximum:
            self.bad(key, "bad_option", f"{key} must lie in [{minimum}, {maximum}], got {value}")
            return default
        return value

    def number(self, key: str, default: int | float | None) -> int | float | None:
        value = self._get(key)
        if value is None:
            return default
        if not _is_number(value):
            _wrong_type(self.errors, (*self.loc, key), "a finite number", value)
            self.failed = True
            return default
        return value

    def labels(self, key: str, *, allow_empty: bool = False) -> tuple[str, ...]:
        value = self._get(key)
        loc = (*self.loc, key)
        if value is None or (isinstance(value, list) and not value):
            if value is None and allow_empty:
                return ()
            _err(self.errors, loc, "empty_labels", f"{key} must be a non-empty list of strings")
            self.failed = True
            return ()
        if not isinstance(value, list):
            _wrong_type(self.errors, loc, "a list of strings", value)
            self.failed = True
            return ()
        seen: set[str] = set()
        for j, label in enumerate(value):
            if not isinstance(label, str):
                _wrong_type(self.errors, (*loc, j), "a string", label)
            elif not label or len(label) > _MAX_LABEL_LENGTH:
                _err(self.errors, (*loc, j), "bad_label",
                     f"a label must have 1 to {_MAX_LABEL_LENGTH} characters, got {len(label)}")
            elif label in seen:
                _err(self.errors, (*loc, j), "duplicate_label", f"label {label!r} appears twice")
            else:
                seen.add(label)
                continue
            self.failed = True
        return tuple(value)

    def unknown_keys(self, kind: str) -> None:
        for key in self.obj:
            if key not in self.used:
                what = f"kind {kind!r}" if kind else "a question"
                _err(self.errors, (*self.loc, key), "unknown_option",
                     f"unknown option {key!r} for {what}")
                self.failed = True


_COMMON_KEYS = ("name", "kind", "required", "title", "description")


def _parse_question(obj: Any, loc: Loc, errors: list[FieldError]) -> Question | None:
    if not isinstance(obj, Mapping):
        _wrong_type(errors, loc, "a question object", obj)
        return None
    r = _OptionReader(obj, loc, errors)
    name = obj.get("name")
    if name is None:
        r.bad("name", "missing_field", "every question needs a name")
    elif not isinstance(name, str):
        _wrong_type(errors, (*loc, "name"), "a string", name)
        r.failed = True
    elif not _NAME_RE.match(name):
        r.bad("name", "bad_name",
              f"question name {name!r} must be 1-64 letters, digits, '_' or '-', "
              "starting with a letter or '_'")
    kind = obj.get("kind")
    cls: type[Question] | None = None
    if kind is None:
        r.bad("kind", "missing_field", f"every question needs a kind: one of {', '.join(KINDS)}")
    elif not isinstance(kind, str):
        _wrong_type(errors, (*loc, "kind"), "a string", kind)
        r.failed = True
    else:
        cls = _QUESTION_CLASSES.get(kind)
        if cls is None:
            r.bad("kind", "unknown_kind",
                  f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    r.used.update(("name", "kind"))
    common: dict[str, Any] = {
        "name": name,
        "required": r.flag("required", True),
        "title": r.text("title", None),
        "description": r.text("description", None),
    }
    if cls is None:
        return None  # options of an unknown kind cannot be judged
    options = _parse_options(cls, r)
    r.unknown_keys(cls.kind)
    if r.failed:
        return None
    return cls(**common, **options)


def _parse_options(cls: type[Question], r: _OptionReader) -> dict[str, Any]:
    if cls is ChoiceQuestion:
        return {"labels": r.labels("labels")}
    if cls is MultiChoiceQuestion:
        labels = r.labels("labels")
        n = len(labels)
        lo = r.integer("min_selections", 0, minimum=0, maximum=max(n, 0))
        hi = r.integer("max_selections", None, minimum=1, maximum=max(n, 1))
        if lo is not None and hi is not None and lo > hi:
            r.bad("max_selections", "bad_option",
                  f"max_selections ({hi}) must be at least min_selections ({lo})")
        return {"labels": labels, "min_selections": lo, "max_selections": hi}
    if cls is RatingQuestion:
        return _parse_rating(r)
    if cls is TextQuestion:
        lo = r.integer("min_length", 0, minimum=0, maximum=_MAX_TEXT_LENGTH)
        hi = r.integer("max_length", _DEFAULT_TEXT_MAX_LENGTH, minimum=1,
                       maximum=_MAX_TEXT_LENGTH)
        if lo is not None and hi is not None and lo > hi:
            r.bad("max_length", "bad_option",
                  f"max_length ({hi}) must be at least min_length ({lo})")
        return {"min_length": lo, "max_length": hi}
    if cls is SpansQuestion:
        return {"labels": r.labels("labels"), "source": r.field_name("source", "text"),
                "allow_overlap": r.flag("allow_overlap", True)}
    if cls is BoxesQuestion:
        coordinates = r.text("coordinates", "relative")
        if coordinates not in ("relative", "pixel"):
            r.bad("coordinates", "bad_option",
                  f"coordinates must be 'relative' or 'pixel', got {coordinates!r}")
        return {"labels": r.labels("labels"), "source": r.field_name("source", "image"),
                "coordinates": coordinates,
                "width_field": r.field_name("width_field", "width"),
                "height_field": r.field_name("height_field", "height")}
    if cls is RankingQuestion:
        return _parse_ranking(r)
    raise AssertionError(cls)  # pragma: no cover - every kind is handled above


def _parse_rating(r: _OptionReader) -> dict[str, Any]:
    n_errors = len(r.errors)
    lo = r.number("min", 1)
    hi = r.number("max", 5)
    step_given = "step" in r.obj
    step = r.number("step", 1)
    if step_given and r.obj["step"] is None:
        step = None  # an explicit null asks for a continuous scale
    scale_labels = r.labels("scale_labels", allow_empty=True) or None
    if len(r.errors) > n_errors:
        return {}  # the consistency checks below need well-typed values
    assert lo is not None and hi is not None
    if lo >= hi:
        r.bad("max", "bad_option", f"max ({hi}) must be greater than min ({lo})")
        return {}
    if step is not None:
        if step <= 0:
            r.bad("step", "bad_option", f"step must be positive or null, got {step}")
            return {}
        n = (hi - lo) / step
        if abs(n - round(n)) > 1e-9 * max(1.0, n):
            r.bad("step", "bad_option", f"step ({step}) must divide max - min ({hi - lo})")
            return {}
        if scale_labels is not None and len(scale_labels) != round(n) + 1:
            r.bad("scale_labels", "bad_option",
                  f"scale_labels must name each of the {round(n) + 1} points of the scale, "
                  f"got {len(scale_labels)}")
    elif scale_labels is not None:
        r.bad("scale_labels", "bad_option", "scale_labels needs a step (a scale of points)")
    return {"min": lo, "max": hi, "step": step, "scale_labels": scale_labels}


def _parse_ranking(r: _OptionReader) -> dict[str, Any]:
    candidates = r.labels("candidates", allow_empty=True) or None
    source = r.text("source", None)
    allow_ties = r.flag("allow_ties", False)
    if candidates is not None and len(candidates) < 2:
        r.bad("candidates", "bad_option", "a ranking needs at least 2 candidates")
    if candidates is not None and source is not None:
        r.bad("source", "bad_option",
              "give either fixed candidates or a source field to read them from, not both")
    if source == "":
        r.bad("source", "bad_option", "source must name an item data field, got ''")
    return {"candidates": candidates, "source": source, "allow_ties": allow_ties}


# --------------------------------------------------------------------------------------------
# The schema
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabelSchema:
    """A parsed label schema. Build it with :meth:`parse`; it is immutable and cheap to share."""

    questions: tuple[Question, ...]
    _by_name: dict[str, Question] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {q.name: q for q in self.questions})

    @classmethod
    def parse(cls, obj: Any) -> LabelSchema:
        """Parse a schema from its JSON form (a dict, or a JSON string / bytes).

        Raises ``invalid`` listing every problem, each at
        ``("label_schema", "questions", i, field, ...)``.
        """
        if isinstance(obj, LabelSchema):
            return obj
        root: Loc = ("label_schema",)
        if isinstance(obj, (str, bytes, bytearray)):
            try:
                obj = json.loads(obj)
            except ValueError as exc:
                raise invalid([FieldError(root, "invalid_json", f"not valid JSON: {exc}")],
                              "invalid label schema") from None
        errors: list[FieldError] = []
        if not isinstance(obj, Mapping):
            _wrong_type(errors, root, 'an object {"questions": [...]}', obj)
            raise invalid(errors, "invalid label schema")
        for key in obj:
            if key != "questions":
                _err(errors, (*root, key), "unknown_option",
                     f"unknown key {key!r}; a label schema has only 'questions'")
        raw = obj.get("questions")
        questions: list[Question] = []
        if raw is None:
            _err(errors, (*root, "questions"), "missing_field",
                 "a label schema needs a list of questions")
        elif not isinstance(raw, list):
            _wrong_type(errors, (*root, "questions"), "a list of questions", raw)
        elif not raw:
            _err(errors, (*root, "questions"), "no_questions",
                 "a label schema needs at least one question")
        else:
            first_index: dict[str, int] = {}
            for i, item in enumerate(raw):
                loc = (*root, "questions", i)
                question = _parse_question(item, loc, errors)
                name = item.get("name") if isinstance(item, Mapping) else None
                if isinstance(name, str):
                    if name in first_index:
                        _err(errors, (*loc, "name"), "duplicate_question",
                             f"question name {name!r} is already used by question "
                             f"{first_index[name]}")
                    else:
                        first_index[name] = i
                if question is not None:
                    questions.append(question)
        if errors:
            raise invalid(errors, "invalid label schema")
        return cls(tuple(questions))

    def to_json(self) -> dict[str, Any]:
        """The normalized JSON form: every option spelled out; ``parse(to_json())`` equals self."""
        return {"questions": [q.to_json() for q in self.questions]}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(q.name for q in self.questions)

    def question(self, name: str) -> Question:
        """The question called ``name``; raises ``invalid`` (unknown_question) if there is none."""
        try:
            return self._by_name[name]
        except (KeyError, TypeError):
            raise invalid([FieldError(("question",), "unknown_question",
                                      f"no question named {name!r}; questions: "
                                      f"{_preview(self.names)}")]) from None

    def choice_questions(self) -> tuple[Question, ...]:
        """The single-label (``choice``) questions: the ones majority vote applies to."""
        return tuple(q for q in self.questions if q.kind == "choice")

    def validate_answer(self, value: Any, item_data: Mapping[str, Any] | None = None, *,
                        loc_prefix: Sequence[str | int] = ("value",),
                        partial: bool = False) -> dict[str, Any]:
        """Check one answer (also a prediction or a gold answer) and return it normalized.

        ``value`` maps question names to answers. A null answer counts as absent. ``item_data``
        (the item's ``data``) enables the checks that need it (span offsets within the text,
        pixel boxes within the image, ranking candidates read from the item); with ``None``
        those checks are skipped. ``partial=True`` lets required questions be absent (a
        prediction for some questions only). The result holds the answered questions in schema
        order. Raises ``invalid`` listing every problem, at ``(*loc_prefix, question, ...)``.
        """
        prefix = tuple(loc_prefix)
        if not isinstance(value, Mapping):
            raise invalid([FieldError(prefix, "wrong_type",
                                      "expected an object mapping question names to answers, "
                                      f"got {_type_name(value)}")])
        errors: list[FieldError] = []
        result: dict[str, Any] = {}
        found = 0
        for q in self.questions:
            name = q.name
            v = value.get(name, _MISSING)
            if v is not _MISSING:
                found += 1
            if v is None or v is _MISSING:
                if q.required and not partial:
                    _err(errors, (*prefix, name), "missing_answer",
                         f"question {name!r} is required")
                continue
            normalized = q.check(v, item_data, (*prefix, name), errors)
            if normalized is not None:
                result[name] = normalized
        if found < len(value):
            for key in value:
                if key not in self._by_name:
                    _err(errors, (*prefix, key), "unknown_question",
                         f"{key!r} is not a question of this schema; questions: "
                         f"{_preview(self.names)}")
        if errors:
            raise invalid(errors, "invalid answer")
        return result

    def validate_item_data(self, item_data: Any, *,
                           loc_prefix: Sequence[str | int] = ("data",)) -> None:
        """Check that an item's data carries every field the questions read (span text, image URL
        and size, ranking candidates). Meant for import; raises ``invalid``."""
        prefix = tuple(loc_prefix)
        if not isinstance(item_data, Mapping):
            raise invalid([FieldError(prefix, "wrong_type",
                                      f"item data must be an object, got {_type_name(item_data)}")])
        errors: list[FieldError] = []
        for q in self.questions:
            q.check_item_data(item_data, prefix, errors)
        if errors:
            raise invalid(errors, "item data does not fit the label schema")

