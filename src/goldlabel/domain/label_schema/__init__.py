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
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from goldlabel.domain.errors import FieldError, invalid
from goldlabel.domain.label_schema.parsing import _parse_question
from goldlabel.domain.label_schema.questions import (
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
    _preview,
)
from goldlabel.domain.label_schema.validation import (
    _MISSING,
    ERROR_CODES,
    KINDS,
    Loc,
    _err,
    _type_name,
    _wrong_type,
)

__all__ = [
    "ERROR_CODES",
    "KINDS",
    "BoxesQuestion",
    "ChoiceQuestion",
    "KeypointsQuestion",
    "LabelSchema",
    "MultiChoiceQuestion",
    "PolygonsQuestion",
    "Question",
    "RankingQuestion",
    "RatingQuestion",
    "SpansQuestion",
    "TextQuestion",
]

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
    def turns_asked(self) -> tuple[int, ...]:
        """The chat turns (indexes into ``messages``) that questions are about."""
        return tuple(q.turn for q in self.questions if q.turn is not None)

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
                           loc_prefix: Sequence[str | int] = ("data",),
                           http_hosts: Collection[str] = ()) -> None:
        """Check that an item's data carries every field the questions read (span text, image URL
        and size, ranking candidates). Meant for import; raises ``invalid``."""
        prefix = tuple(loc_prefix)
        if not isinstance(item_data, Mapping):
            raise invalid([FieldError(prefix, "wrong_type",
                                      f"item data must be an object, got {_type_name(item_data)}")])
        errors: list[FieldError] = []
        for q in self.questions:
            if isinstance(q, BoxesQuestion):
                q.check_item_data(item_data, prefix, errors, http_hosts)
            else:
                q.check_item_data(item_data, prefix, errors)
        if errors:
            raise invalid(errors, "item data does not fit the label schema")
