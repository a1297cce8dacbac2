"""Annotator skill from gold answers, with uncertainty, and one-coin confusion matrices.

A Beta(a, b) prior on an annotator's accuracy, updated with ``correct`` right answers out of
``total`` gold answers, gives the posterior Beta(a + correct, b + total - correct). Its mean is
the point estimate and its central 95% interval the uncertainty shown to managers and used for
suspension (suspend only when the *upper* bound is below the threshold: strong evidence).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import beta as beta_dist


def skill_interval(
    correct: np.ndarray | int,
    total: np.ndarray | int,
    prior_mean: float = 0.7,
    prior_strength: float = 2.0,
    level: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior mean and central ``level`` interval of accuracy, vectorized over annotators."""
    correct = np.asarray(correct, dtype=np.float64)
    total = np.asarray(total, dtype=np.float64)
    if np.any(correct < 0) or np.any(correct > total):
        raise ValueError("need 0 <= correct <= total")
    a = prior_mean * prior_strength + correct
    b = (1 - prior_mean) * prior_strength + (total - correct)
    tail = (1 - level) / 2
    return a / (a + b), beta_dist.ppf(tail, a, b), beta_dist.ppf(1 - tail, a, b)


def one_coin_confusions(accuracy: np.ndarray, n_labels: int) -> np.ndarray:
    """``(n, k, k)`` confusion matrices: ``accuracy`` on the diagonal, the rest spread evenly."""
    accuracy = np.clip(np.asarray(accuracy, dtype=np.float64), 1e-6, 1 - 1e-6)
    if n_labels < 2:
        return np.ones((len(accuracy), 1, 1))
    off = (1 - accuracy) / (n_labels - 1)
    eye = np.eye(n_labels)
    return off[:, None, None] * (1 - eye) + accuracy[:, None, None] * eye
