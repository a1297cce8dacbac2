"""Label schema: one class per question kind, each validating its own answers.

The classes live in one module per kind (:mod:`.choice` holds choice and multi_choice;
:mod:`.rating`, :mod:`.text`, :mod:`.spans`, :mod:`.boxes`, :mod:`.ranking`,
:mod:`.polygons`, :mod:`.keypoints`), on the base
classes of :mod:`.base`. This module gathers them and maps each kind to its class.
"""

from __future__ import annotations

from goldlabel.domain.label_schema.base import Question, _preview
from goldlabel.domain.label_schema.boxes import BoxesQuestion
from goldlabel.domain.label_schema.choice import ChoiceQuestion, MultiChoiceQuestion
from goldlabel.domain.label_schema.keypoints import KeypointsQuestion
from goldlabel.domain.label_schema.polygons import PolygonsQuestion
from goldlabel.domain.label_schema.ranking import RankingQuestion
from goldlabel.domain.label_schema.rating import RatingQuestion
from goldlabel.domain.label_schema.spans import SpansQuestion
from goldlabel.domain.label_schema.text import TextQuestion

__all__ = [
    "BoxesQuestion",
    "ChoiceQuestion",
    "KeypointsQuestion",
    "MultiChoiceQuestion",
    "PolygonsQuestion",
    "Question",
    "RankingQuestion",
    "RatingQuestion",
    "SpansQuestion",
    "TextQuestion",
    "_preview",  # for the package's __init__
]

_QUESTION_CLASSES: dict[str, type[Question]] = {
    cls.kind: cls
    for cls in (ChoiceQuestion, MultiChoiceQuestion, RatingQuestion, TextQuestion,
                SpansQuestion, BoxesQuestion, RankingQuestion, PolygonsQuestion, KeypointsQuestion)
}
