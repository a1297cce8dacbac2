"""Pooled cold-start knowledge of a project's annotators, before anyone's skill is learned.

One-coin accuracy from pairwise agreement. If every annotator answers right with probability p
and, when wrong, picks one of the other K - 1 classes uniformly, two answers on the same item
agree with probability

    A(p) = p^2 + (1 - p)^2 / (K - 1)

so the observed share of agreeing pairs A gives p = (1 + sqrt(1 - K (1 - (K - 1) A))) / K
(the root above 1/K; free answers such as text, K -> infinity: p = sqrt(A)). Pairs within one
item share answers, so an item with n answers counts as n - 1 observations, not n (n - 1) / 2.

:func:`shrink_accuracy` mixes that estimate (and gold answers, which measure p directly) with
a prior accuracy that carries the weight of ``prior_weight`` answers: a project's first few
agreeing items move the estimate a little, hundreds decide it.

Pooled rating noise: the within-item sum of squares over items with 2+ ratings and its degrees
of freedom, sum (n_i - 1); the per-answer rating consensus uses them as its prior on the noise.

Everything is vectorized over answers (bincount), no loop per item or answer.
"""

from __future__ import annotations

import numpy as np

__all__ = ["agreement_accuracy", "pairwise_agreement", "rating_noise", "shrink_accuracy"]


def pairwise_agreement(item: np.ndarray, code: np.ndarray) -> tuple[float, float, float]:
    """(agreeing pairs, pairs, effective observations) over items with 2+ answers.

    ``item``: item index per answer; ``code``: the answer's class as an integer (equal codes
    agree). Pairs are counted within each item."""
    item = np.asarray(item, dtype=np.int64)
    code = np.asarray(code, dtype=np.int64)
    if item.size == 0:
        return 0.0, 0.0, 0.0
    _, item = np.unique(item, return_inverse=True)
    _, code = np.unique(code, return_inverse=True)
    n_codes = int(code.max()) + 1
    per_item = np.bincount(item).astype(np.float64)
    per_cell = np.bincount(item * n_codes + code).astype(np.float64)
    agreeing = float((per_cell * (per_cell - 1)).sum() / 2)
    pairs = float((per_item * (per_item - 1)).sum() / 2)
    effective = float(np.clip(per_item - 1, 0, None).sum())
    return agreeing, pairs, effective


def agreement_accuracy(agree_share: float, n_classes: float | None) -> float:
    """One-coin accuracy p from the share of agreeing pairs (``n_classes`` None: free answers,
    where two wrong answers never agree). Below chance agreement gives chance accuracy."""
    a = float(np.clip(agree_share, 0.0, 1.0))
    if n_classes is None:
        return float(np.sqrt(a))
    k = float(n_classes)
    disc = 1.0 - k * (1.0 - (k - 1.0) * a)
    return float((1.0 + np.sqrt(max(disc, 0.0))) / k)


def shrink_accuracy(estimate: float, evidence: float, prior: float, prior_weight: float,
                    gold_correct: float = 0.0, gold_total: float = 0.0) -> float:
    """(evidence * estimate + gold_correct + prior_weight * prior) / (evidence + gold_total +
    prior_weight): the agreement estimate and the gold record, each weighted by what it rests
    on, shrunk toward ``prior``."""
    total = evidence + gold_total + prior_weight
    if total <= 0:
        return float(prior)
    return float((evidence * estimate + gold_correct + prior_weight * prior) / total)


def rating_noise(item: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """(within-item sum of squares, its degrees of freedom) over items with 2+ ratings."""
    item = np.asarray(item, dtype=np.int64)
    x = np.asarray(x, dtype=np.float64)
    if item.size == 0:
        return 0.0, 0.0
    _, item = np.unique(item, return_inverse=True)
    n = np.bincount(item).astype(np.float64)
    mean = np.bincount(item, weights=x) / n
    ss = float(((x - mean[item]) ** 2).sum())
    dof = float(np.clip(n - 1, 0, None).sum())
    return ss, dof
