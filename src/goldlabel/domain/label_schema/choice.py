"""Label schema: the label-picking kinds, ``choice`` (one label) and ``multi_choice`` (a set)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from goldlabel.domain.errors import FieldError
from goldlabel.domain.label_schema.base import _LabeledQuestion
from goldlabel.domain.label_schema.validation import Loc, _err, _wrong_type


@dataclass(frozen=True, slots=True, kw_only=True)
class ChoiceQuestion(_LabeledQuestion):
    """Pick exactly one label. Answer: the label string."""

    kind: ClassVar[str] = "choice"

    def check(self, value: Any, item_data: Mapping[str, Any] | None, loc: Loc,
              errors: list[FieldError]) -> Any:
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

    def _options_json(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "min_selections": self.min_selections,
                "max_selections": self.max_selections}

    def check(self, value: Any, item_data: Mapping[str, Any] | None, loc: Loc,
              errors: list[FieldError]) -> Any:
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
