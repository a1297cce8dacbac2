"""The per-answer posterior of one choice question on one item, between re-fits: the pieces
the server sums in O(answers on the item) instead of calling :func:`goldlabel.quality.item_posterior`
(which they reproduce exactly): each annotator's confusion matrix shrunk toward the default
annotator by the evidence behind it, the class prior kept from the last re-fit, and the
normalized posterior of their summed log scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, cast

import numpy as np

from goldlabel.quality.dawid_skene import posterior_from_scores
from goldlabel.quality.skill import (
    confusions_from_skills,
    default_confusion,
    default_log_likelihoods,
)

__all__ = ["answer_log_likelihoods", "class_prior", "confusions_for", "posterior_from_scores",
           "skill_confusions"]


def skill_confusions(rows: Sequence[Mapping[str, Any]], n_labels: int, default_accuracy: float,
                     prior_answers: float) -> np.ndarray:
    """``(len(rows), n_labels, n_labels)`` confusion matrices of annotators with a learned skill
    (``rows``: ``accuracy``, optional ``confusion`` and ``n_answers``), each shrunk toward the
    default annotator C0 by its evidence: (n C + s C0) / (n + s), with n the answers behind the
    skill and s = ``prior_answers``. A re-fit on a few answers per annotator makes annotators
    look nearly perfect; unshrunk, the posterior then stops items with P(top) ~ 0.97 that are
    right only 73-93% of the time (benchmarks/adaptive_overlap.py; docs/benchmarks.md, section
    "Adaptive overlap")."""
    matrices = confusions_from_skills(np.array([r["accuracy"] for r in rows]), n_labels)
    for j, r in enumerate(rows):
        matrix = r.get("confusion")
        if matrix is not None:
            matrix = np.asarray(matrix)
            if matrix.shape == (n_labels, n_labels):
                matrices[j] = matrix
    if prior_answers > 0:
        n = np.array([float(r.get("n_answers") or 0) for r in rows])
        weight = (n / (n + prior_answers))[:, None, None]
        matrices = weight * matrices + (1 - weight) * default_confusion(default_accuracy, n_labels)
    return matrices


def confusions_for(annotator_ids: Sequence[int], skills: Mapping[int, Mapping[str, Any]], n_labels: int,
                   default_accuracy: float, prior_answers: float = 0.0) -> np.ndarray:
    """Confusion matrices of an item's annotators (:func:`skill_confusions` for those in
    ``skills``); an annotator with no learned skill is the default annotator C0 exactly."""
    out = np.empty((len(annotator_ids), n_labels, n_labels))
    skilled = [i for i, a in enumerate(annotator_ids) if a in skills]
    if len(skilled) < len(annotator_ids):
        out[:] = default_confusion(default_accuracy, n_labels)
    if skilled:
        rows = [skills[annotator_ids[i]] for i in skilled]
        out[skilled] = skill_confusions(rows, n_labels, default_accuracy, prior_answers)
    return out


def answer_log_likelihoods(annotator_ids: Sequence[int], codes: np.ndarray,
                           skills: Mapping[int, Mapping[str, Any]], n_labels: int,
                           default_accuracy: float, prior_answers: float = 0.0) -> np.ndarray:
    """``(n_answers, n_labels)``: row a is log P(answer a's label ``codes[a]`` | true class k)
    under the annotator's matrix from :func:`confusions_for`, the terms
    :func:`goldlabel.quality.item_posterior` sums. Annotators with no learned skill read their
    row from the cached default table, so they cost no numpy work."""
    out = default_log_likelihoods(default_accuracy, n_labels)[codes]
    skilled = [i for i, a in enumerate(annotator_ids) if a in skills] if skills else []
    if skilled:
        rows = [skills[annotator_ids[i]] for i in skilled]
        matrices = skill_confusions(rows, n_labels, default_accuracy, prior_answers)
        # work in log space: products of many small probabilities underflow
        with np.errstate(divide="ignore"):
            out[skilled] = np.log(matrices[np.arange(len(skilled)), :, codes[skilled]])
    return cast("np.ndarray", out)


def class_prior(stored: Any, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """The class prior and its log: a stored prior (a re-fit's class frequencies) mixed with
    uniform, or uniform when there is none or it does not fit the labels. Cached per (stored
    prior, n_labels), so both arrays are read-only."""
    try:
        return _cached_prior(tuple(stored) if isinstance(stored, list) else stored, n_labels)
    except TypeError:  # a stored value that cannot be a cache key (nested lists): not a prior anyway
        return _make_prior(stored, n_labels)


@lru_cache(maxsize=1024)
def _cached_prior(stored: tuple[Any, ...] | None, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    return _make_prior(stored, n_labels)


def _make_prior(stored: Any, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    prior = np.asarray(stored, dtype=np.float64) if stored is not None else None
    if prior is None or prior.shape != (n_labels,):
        prior = np.full(n_labels, 1.0 / n_labels)
    else:
        # Keep every class possible: a prior of exactly 0 could never be overturned by answers.
        prior = 0.98 * prior + 0.02 / n_labels
        prior = prior / prior.sum()
    with np.errstate(divide="ignore"):
        log_prior = np.log(prior)
    prior.setflags(write=False)
    log_prior.setflags(write=False)
    return prior, log_prior
