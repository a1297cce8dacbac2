"""Label schema: the ``spans`` kind, labeled regions of a text field of the item."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from goldlabel.domain.errors import FieldError
from goldlabel.domain.label_schema.base import Question, _check_object_keys, _LabeledQuestion
from goldlabel.domain.label_schema.validation import (
    _MISSING,
    Loc,
    _err,
    _is_int,
    _type_name,
    _wrong_type,
)


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

    def _options_json(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "source": self.source,
                "allow_overlap": self.allow_overlap}

    def check_item_data(self, item_data: Mapping[str, Any], loc: Loc,
                        errors: list[FieldError]) -> None:
        _read_source_text(self, self.source, item_data, (*loc, self.source), errors)

    def check(self, value: Any, item_data: Mapping[str, Any] | None, loc: Loc,
              errors: list[FieldError]) -> Any:
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
