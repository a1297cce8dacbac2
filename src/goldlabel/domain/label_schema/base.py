"""Label schema: the question base classes and the helpers the question kinds share.

:class:`Question` (every kind) and ``_LabeledQuestion`` (the kinds with a label set), plus the
checks of answer objects (spans, boxes) and the preview of long value lists in messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from goldlabel.domain.errors import FieldError
from goldlabel.domain.label_schema.validation import Loc, _err

# --------------------------------------------------------------------------------------------
# Questions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Question:
    """One question of a label schema. Subclasses, one per kind, add the kind's options.

    ``labels`` is empty for the kinds that take none (rating, text, ranking). ``turn`` (choice,
    multi_choice, rating and text only) makes the question about one turn of a chat transcript:
    an index into the item's ``messages``, negative from the end (``domain/chat.py``).
    """

    kind: ClassVar[str] = ""
    name: str
    required: bool = True
    title: str | None = None
    description: str | None = None
    labels: tuple[str, ...] = ()
    turn: int | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "required": self.required,
            "title": self.title,
            "description": self.description,
        }
        data.update(self._options_json())
        if self.turn is not None:  # only where set: schemas without chat turns read as before
            data["turn"] = self.turn
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
