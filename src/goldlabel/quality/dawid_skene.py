"""Dawid-Skene (full confusion matrices) and one-coin Dawid-Skene, plus the incremental
per-item posterior the server uses between full re-fits."""

from __future__ import annotations

import math

import numpy as np

from .categorical import (
    CategoricalEstimator,
    CountMatrix,
    clamp_gold,
    confusion_diagonal,
    majority_posteriors,
    normalize_rows,
    softmax_rows,
)

__all__ = ["DawidSkene", "OneCoinDawidSkene", "item_posterior"]


class DawidSkene(CategoricalEstimator):
    r"""Dawid-Skene: each annotator j has a confusion matrix :math:`\pi_j[k, l] = P(l_{ij}=l \mid y_i=k)`,
    items have class prior :math:`p_k`, answers are independent given the true class:

    .. math:: P(y_i = k \mid L) \propto p_k \prod_{j \in i} \pi_j[k, l_{ij}]

    Fitted by EM from the majority-vote posteriors. The M-step adds ``alpha`` pseudo-counts to
    every confusion cell (a symmetric Dirichlet prior, MAP estimate) so that an annotator seen a
    few times has no zero probabilities.

    Dawid & Skene (1979), "Maximum likelihood estimation of observer error-rates using the EM
    algorithm", JRSS C 28(1).
    """

    def __init__(self, n_iter: int = 100, tol: float = 1e-5, alpha: float = 0.01):
        self.n_iter = n_iter
        self.tol = tol
        self.alpha = alpha

    def _m_step(self, counts: np.ndarray) -> np.ndarray:
        return normalize_rows(counts + self.alpha)

    def _class_prior(self, data, posteriors: np.ndarray) -> np.ndarray:
        return normalize_rows(posteriors.sum(axis=0) + self.alpha)

    def _fit(self, data, gold_items, gold_labels, start=None, matrix=None):
        # ``start``: posteriors to begin EM from (default: majority vote); ``matrix``: a
        # CountMatrix of ``data`` to reuse (ensembles fit several models on one matrix)
        matrix = CountMatrix(data) if matrix is None else matrix
        posteriors = majority_posteriors(data, gold_items, gold_labels) if start is None else start.copy()
        first_counts = matrix.confusion_counts(posteriors)
        if len(gold_items):
            # start skills from the gold answers (crowd vote only as a weak prior): from the
            # crowd alone, EM can settle where a colluding majority of bad annotators points
            on_gold = np.zeros_like(posteriors)
            on_gold[gold_items] = posteriors[gold_items]
            first_counts = matrix.confusion_counts(on_gold) + data.n_labels * normalize_rows(first_counts)
        previous = None
        self.n_iter_ = 0
        for iteration in range(self.n_iter):
            counts = first_counts if iteration == 0 else matrix.confusion_counts(posteriors)
            confusions = self._m_step(counts)
            prior = self._class_prior(data, posteriors)
            # work in log space: products of many small probabilities underflow
            scores = matrix.item_scores(np.log(confusions)) + np.log(prior)
            posteriors, loglik = softmax_rows(scores)
            clamp_gold(posteriors, gold_items, gold_labels)
            self.n_iter_ += 1
            if previous is not None and abs(loglik - previous) < self.tol:
                break
            previous = loglik
        self.confusions_ = confusions
        self.prior_ = prior
        self.loglik_ = loglik
        self._scores = scores  # log prior + log likelihood per item (for tempering)
        return posteriors, confusion_diagonal(confusions, prior)


class OneCoinDawidSkene(DawidSkene):
    r"""One-coin Dawid-Skene: one accuracy :math:`s_j` per annotator, errors spread evenly,
    :math:`\pi_j[k, l] = s_j` if :math:`l = k` else :math:`(1 - s_j)/(K - 1)`.

    EM as in :class:`DawidSkene`; ``alpha`` pseudo-counts smooth :math:`s_j` toward 1/2.
    Fewer parameters than full confusion matrices, so it suits annotators with few answers.

    Zhang, Chen, Zhou & Jordan (2014), "Spectral methods meet EM: a provably optimal
    algorithm for crowdsourcing", NeurIPS.
    """

    def _m_step(self, counts: np.ndarray) -> np.ndarray:
        n_labels = counts.shape[-1]
        correct = np.trace(counts, axis1=1, axis2=2)
        total = counts.sum(axis=(1, 2))
        skill = (correct + self.alpha) / (total + 2 * self.alpha)
        skill = np.clip(skill, 1e-6, 1 - 1e-6)
        off = (1 - skill) / max(n_labels - 1, 1)
        eye = np.eye(n_labels)
        return off[:, None, None] * (1 - eye) + skill[:, None, None] * eye


def item_posterior(
    annotators: np.ndarray,
    labels: np.ndarray,
    confusions: np.ndarray,
    prior: np.ndarray,
) -> np.ndarray:
    r"""Posterior over the true label of ONE item from its answers, in O(answers on the item):

    .. math:: P(y = k \mid L) \propto p_k \prod_a \pi_{j_a}[k, l_a]

    ``annotators`` / ``labels``: integer codes of the item's answers; ``confusions``:
    ``(n_annotators, n_labels, n_labels)`` rows true class, columns answered label (e.g. a
    fitted model's ``confusions_``, or :func:`goldlabel.quality.confusions_from_skills` for
    annotators known only by an accuracy); ``prior``: class prior ``(n_labels,)``.
    An item with no answers gets the prior.
    """
    annotators = np.asarray(annotators, dtype=np.int64).ravel()
    labels = np.asarray(labels, dtype=np.int64).ravel()
    prior = np.asarray(prior, dtype=np.float64)
    if len(annotators) != len(labels):
        raise ValueError(f"annotators and labels differ in length: {len(annotators)} vs {len(labels)}")
    # work in log space: products of many small probabilities underflow
    with np.errstate(divide="ignore"):
        scores = np.log(prior) + np.log(confusions[annotators, :, labels]).sum(axis=0)
    return _posterior_from_scores(scores, prior)


def _posterior_from_scores(scores: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """The end of :func:`item_posterior`, shared with the server's per-answer path (which
    builds ``scores`` = log prior + summed answer log-likelihoods from cached tables): the
    normalized ``exp(scores)``, or the normalized ``prior`` when no class has a finite score."""
    top = scores.max()
    # a finite maximum means some score is finite: the full check only when it is not
    if not math.isfinite(top) and not np.isfinite(scores).any():
        return normalize_rows(np.array(prior, dtype=np.float64))
    posterior = np.exp(scores - top)
    return posterior / posterior.sum()
