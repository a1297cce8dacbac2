"""Label schema: reading a question's options from JSON, with every problem collected."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from goldlabel.domain.chat import MAX_TURNS
from goldlabel.domain.errors import FieldError
from goldlabel.domain.label_schema.questions import (
    _QUESTION_CLASSES,
    BoxesQuestion,
    ChoiceQuestion,
    KeypointsQuestion,
    MultiChoiceQuestion,
    PolygonsQuestion,
    Question,
    RankingQuestion,
    RatingQuestion,
    SpansQuestion,
    TextQuestion,
)
from goldlabel.domain.label_schema.validation import (
    _DEFAULT_TEXT_MAX_LENGTH,
    _MAX_LABEL_LENGTH,
    _MAX_TEXT_LENGTH,
    _NAME_RE,
    KINDS,
    Loc,
    _err,
    _is_int,
    _is_number,
    _wrong_type,
)

if TYPE_CHECKING:
    from goldlabel.domain.label_schema.keypoints import Skeleton

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
        checked: int = value
        return checked

    def number(self, key: str, default: float | None) -> int | float | None:
        value = self._get(key)
        if value is None:
            return default
        if not _is_number(value):
            _wrong_type(self.errors, (*self.loc, key), "a finite number", value)
            self.failed = True
            return default
        checked: int | float = value
        return checked

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
    if cls in (ChoiceQuestion, MultiChoiceQuestion, RatingQuestion, TextQuestion):
        common["turn"] = r.integer("turn", None, minimum=-MAX_TURNS, maximum=MAX_TURNS - 1)
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
    if cls in (BoxesQuestion, PolygonsQuestion, KeypointsQuestion):
        coordinates = r.text("coordinates", "relative")
        if coordinates not in ("relative", "pixel"):
            r.bad("coordinates", "bad_option",
                  f"coordinates must be 'relative' or 'pixel', got {coordinates!r}")
        options: dict[str, Any] = {"labels": r.labels("labels"), "source": r.field_name("source", "image"),
                   "coordinates": coordinates,
                   "width_field": r.field_name("width_field", "width"),
                   "height_field": r.field_name("height_field", "height")}
        if cls is KeypointsQuestion:
            options["skeletons"] = _parse_skeletons(r, options["labels"])
        return options
    if cls is RankingQuestion:
        return _parse_ranking(r)
    raise AssertionError(cls)  # pragma: no cover - every kind is handled above


def _parse_skeletons(r: _OptionReader, labels: tuple[str, ...]) -> tuple[Skeleton, ...]:
    from goldlabel.domain.label_schema.keypoints import parse_skeletons

    n_errors = len(r.errors)
    skeletons = parse_skeletons(r._get("skeletons"), labels, (*r.loc, "skeletons"), r.errors)
    if len(r.errors) > n_errors:
        r.failed = True
    return skeletons


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
    assert lo is not None and hi is not None  # nosec B101  # internal invariant, not an access or input check
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
