"""Label schema edits: what changed between two versions, and which stored values (answers,
gold answers, predictions) a new version would no longer accept.

A change is **safe** when no existing value can break: questions added (required or not),
labels added or reordered, titles, descriptions and ``required`` changed. Anything else
(a question removed or its kind changed, a label removed or renamed, any other option changed,
such as a rating's range or a text's maximum length) is checked value by value with
:func:`find_breaks`; the service refuses the edit while any value breaks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from goldlabel.domain.errors import FieldError
from goldlabel.domain.label_schema import LabelSchema, Question

# Options that never make a stored value invalid.
_HARMLESS = frozenset({"title", "description", "required", "labels"})


@dataclass(frozen=True)
class SchemaChange:
    """The difference between an ``old`` and a ``new`` schema, question by question."""

    added_questions: tuple[str, ...]
    removed_questions: tuple[str, ...]
    kind_changed: tuple[str, ...]
    added_labels: Mapping[str, tuple[str, ...]]
    removed_labels: Mapping[str, tuple[str, ...]]
    options_changed: tuple[str, ...]
    # Per question to check: (its old kind, its removed labels, the new question or None when
    # removed or of another kind, whether other options changed too). Built once: find_breaks
    # runs for every stored value.
    _checks: dict[str, tuple[str, frozenset[str], Question | None, bool]] = field(
        default_factory=dict, repr=False, compare=False)

    @property
    def is_safe(self) -> bool:
        """True when no existing value can break under the new schema (nothing to scan)."""
        return not self._checks

    @property
    def needs_check(self) -> frozenset[str]:
        """The questions whose stored values must be checked against the new schema."""
        return frozenset(self._checks)


def compare_schemas(old: LabelSchema, new: LabelSchema) -> SchemaChange:
    old_by_name = {q.name: q for q in old.questions}
    new_by_name = {q.name: q for q in new.questions}
    kind_changed, options_changed = [], []
    added_labels: dict[str, tuple[str, ...]] = {}
    removed_labels: dict[str, tuple[str, ...]] = {}
    for name, before in old_by_name.items():
        after = new_by_name.get(name)
        if after is None:
            continue
        if after.kind != before.kind:
            kind_changed.append(name)
            continue
        gone = tuple(label for label in before.labels if label not in set(after.labels))
        new_labels = tuple(label for label in after.labels if label not in set(before.labels))
        if gone:
            removed_labels[name] = gone
        if new_labels:
            added_labels[name] = new_labels
        a, b = before.to_json(), after.to_json()
        if any(a[k] != b[k] for k in a.keys() - _HARMLESS):
            options_changed.append(name)
    removed_questions = tuple(n for n in old_by_name if n not in new_by_name)
    checked = {*removed_questions, *kind_changed, *removed_labels, *options_changed}
    checks = {
        name: (old_by_name[name].kind, frozenset(removed_labels.get(name, ())),
               None if name in removed_questions or name in kind_changed else new_by_name[name],
               name in options_changed)
        for name in old_by_name if name in checked
    }
    return SchemaChange(
        added_questions=tuple(n for n in new_by_name if n not in old_by_name),
        removed_questions=removed_questions,
        kind_changed=tuple(kind_changed),
        added_labels=added_labels,
        removed_labels=removed_labels,
        options_changed=tuple(options_changed),
        _checks=checks,
    )


@dataclass(frozen=True)
class Break:
    """Why one stored value breaks under the new schema, for one question.

    ``reason``: ``question_removed``, ``kind_changed``, ``label_removed`` (with ``label``), or
    ``invalid`` (with ``code``, the label schema's error code, e.g. ``out_of_range``).
    """

    question: str
    reason: str
    label: str | None = None
    code: str | None = None


def _labels_used(kind: str, value: Any) -> set[str]:
    if kind == "choice":
        return {value} if isinstance(value, str) else set()
    if kind == "multi_choice":
        return {v for v in value if isinstance(v, str)} if isinstance(value, list) else set()
    if kind in ("spans", "boxes"):
        if not isinstance(value, list):
            return set()
        return cast("set[str]", {r.get("label") for r in value if isinstance(r, Mapping)} - {None})
    return set()


def find_breaks(change: SchemaChange, value: Any) -> list[Break]:
    """The ways one stored value (an answer's, a gold answer's or a prediction's ``value``)
    breaks under the new schema; empty when it stays valid. Item data is not consulted: it does
    not change with the schema."""
    if not isinstance(value, Mapping):
        return []
    out: list[Break] = []
    checks = change._checks
    for name, v in value.items():
        plan = checks.get(name)
        if plan is None or v is None:
            continue
        kind, removed, question, recheck = plan
        if question is None:
            out.append(Break(name, "kind_changed" if name in change.kind_changed else "question_removed"))
            continue
        used = _labels_used(kind, v) & removed if removed else set()
        out.extend(Break(name, "label_removed", label=label) for label in sorted(used))
        if not recheck:
            continue  # only labels were removed: the labels used say it all
        errors: list[FieldError] = []
        question.check(v, None, (name,), errors)
        if errors:
            codes = {e.code for e in errors} - ({"unknown_label"} if used else set())
            out.extend(Break(name, "invalid", code=code) for code in sorted(codes))
    return out
