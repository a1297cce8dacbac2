"""Annotator skill from gold answers, with uncertainty; confusions for the incremental path."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import cast

import numpy as np

__all__ = ["SkillEstimate", "confusions_from_skills", "estimate_skill"]


@dataclass(frozen=True)
class SkillEstimate:
    """Posterior of an annotator's accuracy: ``mean`` and the central credible interval
    ``[lower, upper]`` (arrays when the counts were arrays)."""

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def estimate_skill(
    n_correct: np.ndarray | int,
    n_answered: np.ndarray | int,
    prior: tuple[float, float] = (1.0, 1.0),
    level: float = 0.95,
) -> SkillEstimate:
    r"""Beta-binomial accuracy estimate from gold counts (cheap; vectorized over annotators):

    .. math:: s \mid \text{gold} \sim \mathrm{Beta}(a + c, b + n - c)

    ``prior=(a, b)`` is Beta(1, 1) (uniform) by default; pass e.g. ``(8, 2)`` to start new
    annotators at 80% with the weight of 10 answers. Suspend an annotator when ``upper`` is
    below the threshold (confidently bad), qualify them when ``lower`` is above it.
    """
    correct = np.asarray(n_correct, dtype=np.float64)
    answered = np.asarray(n_answered, dtype=np.float64)
    if np.any(correct < 0) or np.any(correct > answered):
        raise ValueError("need 0 <= n_correct <= n_answered")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    a, b = prior
    if a <= 0 or b <= 0:
        raise ValueError(f"prior pseudo-counts must be positive, got {prior}")
    # Imported at the first estimate, not at start: scipy.stats slows every process start
    # (the server, each CLI command) by ~1 s on a loaded machine.
    from scipy.stats import beta as beta_distribution

    post_a, post_b = a + correct, b + answered - correct
    tail = (1 - level) / 2
    return SkillEstimate(
        mean=post_a / (post_a + post_b),
        lower=beta_distribution.ppf(tail, post_a, post_b),
        upper=beta_distribution.ppf(1 - tail, post_a, post_b),
    )


def confusions_from_skills(skills: np.ndarray, n_labels: int) -> np.ndarray:
    """One-coin confusion matrices ``(n_annotators, n_labels, n_labels)``: accuracy on the
    diagonal, errors spread evenly — for :func:`~goldlabel.quality.item_posterior` when only
    a per-annotator accuracy is known (e.g. from :func:`estimate_skill`)."""
    if n_labels < 2:
        raise ValueError(f"n_labels must be >= 2, got {n_labels}")
    # np.clip(skills, 1e-6, 1 - 1e-6) in two ufunc calls (it runs on every answer's update)
    skills = np.minimum(np.maximum(np.asarray(skills, dtype=np.float64).ravel(), 1e-6), 1 - 1e-6)
    off = (1 - skills) / (n_labels - 1)
    # = skills * eye + off * (1 - eye), exactly: the other term is a finite value times 0
    return np.where(_diagonal(n_labels), skills[:, None, None], off[:, None, None])


@lru_cache(maxsize=64)
def _diagonal(n_labels: int) -> np.ndarray:
    """Boolean identity ``(n_labels, n_labels)``; cached, read-only."""
    eye = np.eye(n_labels, dtype=bool)
    eye.setflags(write=False)
    return eye


@lru_cache(maxsize=256)
def default_confusion(accuracy: float, n_labels: int) -> np.ndarray:
    """The one-coin confusion matrix ``(n_labels, n_labels)`` of an annotator with ``accuracy``,
    equal to ``confusions_from_skills([accuracy], n_labels)[0]``; cached per (accuracy,
    n_labels), so read-only: copy it before changing it. For the per-answer update, where most
    annotators are still at the server's default accuracy."""
    matrix = confusions_from_skills(np.array([accuracy], dtype=np.float64), n_labels)[0]
    matrix.setflags(write=False)
    return cast("np.ndarray", matrix)


@lru_cache(maxsize=256)
def default_log_likelihoods(accuracy: float, n_labels: int) -> np.ndarray:
    """``log(default_confusion(accuracy, n_labels)).T``, C-contiguous: row ``l`` is log P(answer
    ``l`` | true class k) over k, what one answer adds to an item's log posterior. Cached,
    read-only."""
    table = np.ascontiguousarray(np.log(default_confusion(accuracy, n_labels)).T)
    table.setflags(write=False)
    return table
