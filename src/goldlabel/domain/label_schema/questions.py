"""Label schema: one class per question kind, each validating its own answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from goldlabel.domain.errors import FieldError, invalid
from goldlabel.domain.label_schema._common import (
    _BOX_EPSILON,
    _DEFAULT_TEXT_MAX_LENGTH,
    _MISSING,
    Loc,
    _err,
    _is_int,
    _is_number,
    _type_name,
    _wrong_type,
)

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
