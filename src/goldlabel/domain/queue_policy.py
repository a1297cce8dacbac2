"""Which item an annotator gets next: a pure function, tested without a database.

Order of preference (``QUEUE_ORDER``): higher priority first, then items closest to completion
(most answers already, so partial work turns into final labels soonest), then FIFO by id.
Gold items are injected at ``gold_rate``; an annotator who still has to qualify gets gold first.

The storage layer builds its ``ORDER BY`` from ``QUEUE_ORDER`` and asks for the head of each
stream (normal, gold); this module decides between them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# (column, direction): the single source of the queue order, shared with the SQL.
QUEUE_ORDER: tuple[tuple[str, str], ...] = (("priority", "desc"), ("answer_count", "desc"), ("id", "asc"))


@dataclass(frozen=True)
class Candidate:
    id: int
    priority: int
    answer_count: int
    is_gold: bool = False


@dataclass(frozen=True)
class QueuePolicy:
    gold_rate: float = 0.0
    qualification_gold: int = 0

    @property
    def has_gold(self) -> bool:
        """Whether gold items are ever served (else the choice is the head of the normal queue)."""
        return self.gold_rate > 0 or self.qualification_gold > 0


@dataclass(frozen=True)
class AnnotatorProgress:
    """What the policy needs to know about the asking annotator in this project."""

    gold_answered: int = 0


def rank_key(candidate: Candidate) -> tuple[int, int, int]:
    return (-candidate.priority, -candidate.answer_count, candidate.id)


def pick_next(
    normal: Sequence[Candidate],
    gold: Sequence[Candidate],
    policy: QueuePolicy,
    progress: AnnotatorProgress,
    draw: float,
) -> Candidate | None:
    """Choose the next item, or None when there is no work for this annotator.

    ``draw`` is a uniform random number in [0, 1) supplied by the caller, so the choice is a
    function of its inputs. Gold is never served when no normal work is left, unless the
    annotator still has to qualify: otherwise gold would be work for its own sake.
    """
    best_normal = min(normal, key=rank_key, default=None)
    best_gold = min(gold, key=rank_key, default=None)
    if best_gold is not None and progress.gold_answered < policy.qualification_gold:
        return best_gold
    if best_normal is None:
        return None
    if best_gold is not None and draw < policy.gold_rate:
        return best_gold
    return best_normal
