"""What the per-kind consensus reads of a question: a structural type, so the library stands
alone (the server passes its :mod:`goldlabel.domain.label_schema` questions, which fit it; any
object with these attributes does)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Question(Protocol):
    """A question as the consensus sees it: its name, kind and label vocabulary (empty for the
    kinds without labels). Kind-specific options (``min_selections``, ``allow_ties``) are read
    with ``getattr`` and their defaults."""

    name: str
    kind: str
    labels: Sequence[str]


class RatingScale(Protocol):
    """A rating question's scale: ``step`` None for a continuous scale."""

    name: str
    kind: str
    min: float
    max: float
    step: float | None
