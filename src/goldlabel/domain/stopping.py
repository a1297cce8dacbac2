"""Adaptive overlap: when an item has enough answers. Pure; shared by the per-answer update
and the full re-fit (which applies it to arrays of items at once)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def decide_status(
    answer_count: np.ndarray,
    confidence: np.ndarray,
    target_overlap: np.ndarray,
    overlap_min: int,
    overlap_max: int,
    target_confidence: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Status and new target overlap per item.

    final: at least ``overlap_min`` answers and confidence >= ``target_confidence``, where
    ``confidence`` is the smallest over the item's questions of each question's confidence in
    its consensus (P(top answer) for choice; see docs/concepts.md for the other kinds); NaN = no
    question has a consensus yet, decided by overlap alone; needs_review: ``overlap_max`` reached without that
    confidence; open otherwise, with the target raised to one more answer.
    """
    count = np.asarray(answer_count)
    conf = np.asarray(confidence, dtype=np.float64)
    target = np.asarray(target_overlap)
    if (count.shape == conf.shape == target.shape == (1,) and count.dtype == target.dtype == np.int64
            and isinstance(overlap_min, int) and isinstance(overlap_max, int)
            and isinstance(target_confidence, (int, float))):
        return _decide_one(int(count[0]), float(conf[0]), int(target[0]), overlap_min, overlap_max,
                           target_confidence)
    enough = count >= np.maximum(overlap_min, 1)
    confident = np.where(np.isnan(conf), count >= target, conf >= target_confidence - 1e-12)
    final = enough & confident
    at_max = count >= overlap_max
    status = np.where(final, "final", np.where(at_max, "needs_review", "open"))
    new_target = np.where(
        final | at_max, target, np.minimum(np.maximum(target, count + 1), overlap_max)
    )
    return status, new_target


def _decide_one(count: int, conf: float, target: int, overlap_min: int, overlap_max: int,
                target_confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`decide_status` for one item (the per-answer update), the same rule line by line
    on Python scalars, an order of magnitude cheaper than a dozen numpy calls on length-1 arrays
    (measured: docs/benchmarks.md, "Numbers behind the code"). Same result arrays (``<U12`` status, int64 target)."""
    enough = count >= max(overlap_min, 1)
    confident = count >= target if math.isnan(conf) else conf >= target_confidence - 1e-12
    final = enough and confident
    at_max = count >= overlap_max
    status = "final" if final else ("needs_review" if at_max else "open")
    new_target = target if final or at_max else min(max(target, count + 1), overlap_max)
    return np.array([status], dtype="<U12"), np.array([new_target], dtype=np.int64)


def settle_status(status: str, answer_count: int, overlap_max: int, settings: dict[str, Any],
                  eligible_annotators: int | None = None) -> str:
    """The project's policies for items no further answer will reach, applied to a decision of
    :func:`decide_status`:

    * ``single_answer`` (overlap_max 1): the one answer below the target goes to review
      ("review", the default) or is final ("final");
    * ``no_annotator_left``: an item still open whose answers reached the number of eligible
      annotators (members with the annotator role, not suspended) would wait forever: it goes
      to review ("review", the default) or is final with the consensus it has ("final").
    """
    if status == "needs_review" and overlap_max == 1 and settings.get("single_answer") == "final":
        return "final"
    if status == "open" and eligible_annotators is not None and answer_count >= max(eligible_annotators, 1):
        return "final" if settings.get("no_annotator_left") == "final" else "needs_review"
    return status
