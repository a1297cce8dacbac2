"""Item status from its answers: majority vote for choice questions (placeholder engine).

Pure: takes the answer values, returns the consensus per question and the item's next state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class QuestionConsensus:
    question: str
    value: Any
    confidence: float | None
    is_decided: bool
    contributions: dict[str, int]


@dataclass(frozen=True)
class ItemDecision:
    status: str  # open | final | needs_review
    target_overlap: int
    questions: tuple[QuestionConsensus, ...]


def majority_vote(question: str, labels: Sequence[Any]) -> QuestionConsensus:
    """Most frequent label; undecided on a tie for first place."""
    counts = Counter(label for label in labels if label is not None)
    if not counts:
        return QuestionConsensus(question, None, None, False, {})
    ranked = counts.most_common()
    top, top_n = ranked[0]
    tied = len(ranked) > 1 and ranked[1][1] == top_n
    total = sum(counts.values())
    return QuestionConsensus(
        question,
        None if tied else top,
        top_n / total,
        not tied,
        {str(k): v for k, v in ranked},
    )


def decide_item(
    values: Sequence[dict[str, Any]],
    choice_questions: Sequence[str],
    target_overlap: int,
    overlap_max: int,
) -> ItemDecision:
    """Final once the target overlap is reached and every choice question has a clear winner.

    A tie raises the target by one answer (up to the max overlap); a tie at max overlap goes
    to review.
    """
    n = len(values)
    questions = tuple(
        majority_vote(q, [v.get(q) for v in values]) for q in choice_questions
    )
    if n < target_overlap:
        return ItemDecision("open", target_overlap, questions)
    if all(q.is_decided for q in questions):
        return ItemDecision("final", target_overlap, questions)
    if n < overlap_max:
        return ItemDecision("open", n + 1, questions)
    return ItemDecision("needs_review", target_overlap, questions)
