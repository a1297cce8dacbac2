"""Active learning: which items humans should answer next.

A policy scores every candidate by the uncertainty of its combined posterior (humans + model),
keeps the top ``pool`` candidates, and picks a diverse batch among them in embedding space
(k-center greedy). Before any model exists, :func:`cold_start` picks a diverse batch from a
uniform sample. All steps are vectorized: scoring is O(n), diversity O(pool x batch x dim).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, cast

import numpy as np


def margin_uncertainty(probas: np.ndarray) -> np.ndarray:
    """1 - (p_top - p_second): 1 for a coin flip, 0 for certainty."""
    probas = np.asarray(probas, dtype=np.float64)
    if probas.shape[1] == 1:
        return np.zeros(len(probas))
    top2 = np.partition(probas, -2, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def entropy_uncertainty(probas: np.ndarray) -> np.ndarray:
    """Shannon entropy over the classes, divided by log(n_classes) (so 1 = uniform)."""
    p = np.clip(np.asarray(probas, dtype=np.float64), 1e-12, 1.0)
    return cast("np.ndarray", -(p * np.log(p)).sum(axis=1) / np.log(max(p.shape[1], 2)))


def k_center_greedy(vectors: np.ndarray, k: int, already: np.ndarray | None = None,
                    first: int = 0) -> np.ndarray:
    """Indices of ``k`` rows of ``vectors`` chosen greedily to cover them: each pick is the row
    farthest (Euclidean) from everything picked so far and from ``already`` (rows of the same
    space that are covered already, e.g. items humans labeled). Sener & Savarese (2018)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    n = len(vectors)
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    sq = (vectors * vectors).sum(axis=1)
    distance = np.full(n, np.inf, dtype=np.float32)
    if already is not None and len(already):
        covered = np.asarray(already, dtype=np.float32)
        for start in range(0, len(covered), 4096):  # bounded memory: n x 4096 at a time
            block = covered[start:start + 4096]
            d = sq[:, None] - 2 * vectors @ block.T + (block * block).sum(axis=1)[None, :]
            distance = np.minimum(distance, d.min(axis=1))
        pick = int(np.argmax(distance))
    else:
        pick = first
    chosen = np.empty(k, dtype=np.int64)
    for j in range(k):  # k steps, each O(n x dim) vectorized
        chosen[j] = pick
        d = sq - 2 * vectors @ vectors[pick] + sq[pick]
        distance = np.minimum(distance, d)
        distance[chosen[:j + 1]] = -np.inf
        pick = int(np.argmax(distance))
    return chosen


def cold_start(embeddings: np.ndarray, k: int, rng: np.random.Generator | None = None,
               sample: int = 20000) -> np.ndarray:
    """A diverse first batch before any model exists: k-center greedy over a uniform sample
    of ``sample`` rows (indices into ``embeddings``)."""
    rng = rng or np.random.default_rng()
    n = len(embeddings)
    pool = np.sort(rng.choice(n, size=min(sample, n), replace=False))
    picked = k_center_greedy(np.asarray(embeddings[pool]), k, first=int(rng.integers(len(pool))))
    return cast("np.ndarray", pool[picked])


class SelectionPolicy(Protocol):
    """Pluggable: given posteriors and embeddings of the candidates, return ``k`` indices."""

    def select(self, probas: np.ndarray | None, embeddings: np.ndarray, k: int,
               labeled_embeddings: np.ndarray | None = None,
               rng: np.random.Generator | None = None) -> np.ndarray: ...


class UncertaintyDiversity:
    """Uncertainty of the combined posterior, then k-center greedy diversity among the ``pool``
    most uncertain candidates (``pool`` = ``pool_factor`` x k, at least ``min_pool``).
    ``measure``: "margin" or "entropy". With ``probas`` None (no model yet): :func:`cold_start`."""

    def __init__(self, measure: str = "margin", pool_factor: int = 10, min_pool: int = 1000) -> None:
        if measure not in ("margin", "entropy"):
            raise ValueError(f"measure must be 'margin' or 'entropy', got {measure!r}")
        self.measure, self.pool_factor, self.min_pool = measure, pool_factor, min_pool

    def select(self, probas: np.ndarray | None, embeddings: np.ndarray, k: int,
               labeled_embeddings: np.ndarray | None = None,
               rng: np.random.Generator | None = None) -> np.ndarray:
        n = len(embeddings)
        k = min(k, n)
        if probas is None:
            return cold_start(embeddings, k, rng)
        score = margin_uncertainty(probas) if self.measure == "margin" else entropy_uncertainty(probas)
        pool_size = min(n, max(self.pool_factor * k, self.min_pool))
        pool = np.argpartition(-score, pool_size - 1)[:pool_size] if pool_size < n else np.arange(n)
        picked = k_center_greedy(np.asarray(embeddings[pool]), k, already=labeled_embeddings,
                                 first=int(np.argmax(score[pool])))
        return cast("np.ndarray", pool[picked])


#: the active-learning policies a project can choose (``active_learning`` model setting)
ACTIVE_POLICIES = ("off", "uncertainty", "uncertainty_diversity")
#: uncertainty in [0, 1] becomes a priority in 0..PRIORITY_LEVELS; a chosen batch sits above
PRIORITY_LEVELS = 1000


def top_probas(scores: np.ndarray, n_classes: int) -> np.ndarray:
    """Posterior rows from the top-class probability alone (what a prediction or a consensus
    row stores): the rest spread evenly over the other classes. Margin and entropy of such a
    row are those of the most uncertain posterior with that top probability."""
    scores = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    if n_classes < 2:
        return np.ones((len(scores), 1))
    out = np.repeat(((1.0 - scores) / (n_classes - 1))[:, None], n_classes, axis=1)
    out[:, 0] = scores
    return out


def active_priorities(uncertainty: np.ndarray | None, n: int, vectors: Callable[[np.ndarray], np.ndarray],
                      *, policy: str, batch: int, labeled: np.ndarray | None = None,
                      rng: np.random.Generator | None = None, pool_factor: int = 10, min_pool: int = 1000,
                      sample: int = 20000, levels: int = PRIORITY_LEVELS) -> np.ndarray:
    """Queue priorities (int64, higher first) of ``n`` candidates under an active-learning
    ``policy`` (:data:`ACTIVE_POLICIES`; "off" gives zeros).

    ``uncertainty``: per candidate in [0, 1] (margin or entropy of the combined posterior),
    None before any model exists: then a diverse cold-start batch (:func:`cold_start`) of
    ``batch`` candidates gets the top priorities and the rest 0. Otherwise every candidate gets
    ``round(uncertainty x levels)``, and with "uncertainty_diversity" the k-center batch among
    the ``pool`` most uncertain (:class:`UncertaintyDiversity`) gets ``levels + batch - rank``,
    above every other, in pick order. ``vectors(indices)``: the embeddings of those candidates
    (called for the pool or the cold-start sample only, so a 1M-item project is never loaded
    whole); ``labeled``: embeddings of items humans answered (k-center treats them as covered).
    """
    if policy not in ACTIVE_POLICIES:
        raise ValueError(f"policy must be one of {ACTIVE_POLICIES}, got {policy!r}")
    out = np.zeros(n, dtype=np.int64)
    batch = min(batch, n)
    if policy == "off" or n == 0 or batch <= 0:
        return out
    if uncertainty is None:
        rng = rng or np.random.default_rng()
        pool = np.sort(rng.choice(n, size=min(sample, n), replace=False))
        picked = pool[k_center_greedy(np.asarray(vectors(pool)), batch, first=int(rng.integers(len(pool))))]
        out[picked] = levels + batch - np.arange(len(picked))
        return out
    score = np.clip(np.asarray(uncertainty, dtype=np.float64), 0.0, 1.0)
    out[:] = np.rint(score * levels).astype(np.int64)
    if policy == "uncertainty_diversity":
        pool_size = min(n, max(pool_factor * batch, min_pool))
        pool = np.argpartition(-score, pool_size - 1)[:pool_size] if pool_size < n else np.arange(n)
        picked = pool[k_center_greedy(np.asarray(vectors(pool)), batch, already=labeled,
                                      first=int(np.argmax(score[pool])))]
        out[picked] = levels + batch - np.arange(len(picked))
    return out
