"""The recommended default: an equal-weight ensemble of community Dawid-Skene models and
(weighted) votes, with the confusion models' posteriors tempered by held-out answer likelihood."""

from __future__ import annotations

from typing import cast

import numpy as np

from goldlabel.quality.answers import Answers

from .categorical import (
    CategoricalEstimator,
    CountMatrix,
    clamp_gold,
    normalize_rows,
    softmax_rows,
    vote_counts,
)
from .dawid_skene import DawidSkene
from .majority_vote import MajorityVote

__all__ = ["CommunityDawidSkene", "RobustDawidSkene", "held_out_temperature", "log_odds_weights"]


class CommunityDawidSkene(DawidSkene):
    r"""Dawid-Skene whose confusion rows are shrunk toward the pooled ("community") confusion
    matrix of all annotators:

    .. math:: \pi_j[k] \propto N_j[k] + s K \bar\pi[k] + \alpha, \qquad
              \bar\pi[k] \propto \textstyle\sum_j N_j[k]

    An annotator with a handful of answers inherits the crowd's confusions instead of an
    over-fitted matrix of their own (the failure of plain DS on sets with many sparse
    annotators). ``strength`` = s is in pseudo-answers per label.

    Class prior: by default fixed to the smoothed answer frequencies,
    :math:`p_k \propto 1 + \#\{l_{ij} = k\}`, so a rarely chosen class cannot be captured as a
    latent cluster of hard items; with ``learn_prior=True`` it is re-estimated in every
    M-step, :math:`p_k \propto 1 + \sum_i P(y_i = k)`, as in Dawid-Skene.

    Shrinkage toward a population confusion follows community-based BCC: Venanzi, Guiver,
    Kazai, Kohli & Shokouhi (2014), "Community-based Bayesian aggregation models for
    crowdsourcing", WWW. EM as in Dawid & Skene (1979).
    """

    def __init__(self, n_iter: int = 100, tol: float = 1e-5, alpha: float = 0.01, strength: float = 1.0,
                 learn_prior: bool = False, diagonal: float = 1.0):
        super().__init__(n_iter=n_iter, tol=tol, alpha=alpha)
        self.diagonal = diagonal
        self.strength = strength
        self.learn_prior = learn_prior

    def _m_step(self, counts: np.ndarray) -> np.ndarray:
        pooled = normalize_rows(counts.sum(axis=0) + self.diagonal * np.eye(counts.shape[-1]))
        return normalize_rows(counts + self.strength * counts.shape[-1] * pooled + self.alpha)

    def _class_prior(self, data: Answers, posteriors: np.ndarray) -> np.ndarray:
        if self.learn_prior:
            return normalize_rows(posteriors.sum(axis=0) + 1.0)
        return normalize_rows(np.bincount(data.label, minlength=data.n_labels) + 1.0)


def held_out_temperature(data: Answers, matrix: CountMatrix, scores: np.ndarray, confusions: np.ndarray,
                         prior: np.ndarray, row_counts: np.ndarray,
                         grid: tuple[float, ...] = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0),
                         reference: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> float:
    r"""The temperature T of the posterior :math:`P_T(y_i=k) \propto p_k \exp(E_{ik} / T)`
    (E: the answers' log-likelihood) that best predicts each answer from the others.

    For every answer (i, j, l): remove it from item i's evidence, form the tempered posterior
    of the rest, and score :math:`\log \sum_k P_T^{-(ij)}(y_i = k)\, \pi_j^{-(ij)}[k, l]`, where
    :math:`\pi_j^{-(ij)}` also has the answer's own expected count removed (approximate
    leave-one-answer-out, no refit). A proper scoring rule on the answers: no truth needed.
    T >= 1 only tempers (EM posteriors of a conditional-independence model are
    over-confident when answers are correlated). Vectorized over answers.

    ``reference`` = ``(confusions, posteriors, row_counts)`` of another fitted model scores
    the held-out predictions with that model's annotators instead of this one's, so that
    several models' temperatures are chosen against one common annotator model.
    """
    item, annotator, label = data.item, data.annotator, data.label
    log_prior = np.log(prior)
    evidence = scores - log_prior
    log_own = np.log(confusions[annotator, :, label])          # (n_answers, K)
    rest = evidence[item] - log_own
    if reference is None:
        posterior = softmax_rows(scores)[0][item]
        own = np.exp(log_own)
    else:
        confusions, posteriors, row_counts = reference
        posterior = posteriors[item]
        own = confusions[annotator, :, label]
    rows = row_counts[annotator]
    own_loo = np.clip((own * rows - posterior) / np.maximum(rows - posterior, 1e-9), 1e-6, 1.0)
    best, best_score = 1.0, -np.inf
    for temperature in grid:
        held_out, _ = softmax_rows(log_prior + rest / temperature)
        score = np.log(np.einsum("nk,nk->n", held_out, own_loo)).sum()
        if score > best_score + 1e-9:
            best, best_score = temperature, score
    return best


def log_odds_weights(data: Answers, labels: np.ndarray, strength: float = 20.0) -> np.ndarray:
    r"""Per-annotator vote weights :math:`w_j = \max(0, \log \frac{(K-1)\,a_j}{1-a_j})`, the
    Bayes-optimal weights of a vote under the one-coin model (Nitzan & Paroush 1982; Li & Yu
    2014, "Error rate bounds and iterative weighted majority voting", NeurIPS), where
    :math:`a_j = (h_j + s\,\bar a) / (n_j + s)` is the annotator's agreement with ``labels``
    shrunk toward the crowd's mean agreement :math:`\bar a` by ``strength`` = s pseudo-answers
    (an annotator seen a few times gets about the average weight, never an extreme one).
    Annotators at or below chance get weight 0."""
    n_labels = data.n_labels
    agree = (data.label == labels[data.item]).astype(np.float64)
    mean = float(np.clip(agree.mean(), 1.0 / n_labels + 1e-3, 1.0 - 1e-3))
    hits = np.bincount(data.annotator, weights=agree, minlength=data.n_annotators)
    totals = np.bincount(data.annotator, minlength=data.n_annotators)
    accuracy = np.clip((hits + strength * mean) / (totals + strength), 1e-6, 1.0 - 1e-6)
    return np.maximum(np.log(max(n_labels - 1, 1) * accuracy / (1.0 - accuracy)), 0.0)


class RobustDawidSkene(CategoricalEstimator):
    r"""The recommended default: the equal-weight average of four posteriors that fail in
    different places,

    .. math:: P(y_i = k) = \tfrac14\big(P^{T}_{\mathrm{CDS}} + P^{T}_{\mathrm{CDS,learned\ prior}}
              + P_{\mathrm{LOV}} + P_{\mathrm{MV}}\big)(y_i = k)

    :class:`CommunityDawidSkene` with the class prior fixed to answer frequencies (safe when a
    class is rarely answered) and with a learned prior (``strength=3``, started from the first
    model's posteriors; wins where true classes are unbalanced differently from the answers)
    learn who is good at which class; the two vote members only count votes and win where
    annotators are many and sparse or the latent-class model is misspecified: the share of
    :func:`log_odds_weights`-weighted votes (LOV, one-coin log-odds of each annotator's
    agreement with majority vote, shrunk by ``vote_strength`` pseudo-answers) and plain
    majority-vote shares. Vote shares stay cautious where the crowd splits (items that are
    hard for everyone); averaging is Bayesian model averaging with equal prior weights.
    Each confusion model's posterior is further tempered by :func:`held_out_temperature`
    (chosen from the answers alone, per data set) when ``temper=True``; both temperatures are
    scored against one annotator model, the first community model's. No per-dataset tuning:
    every constant was fixed once.

    ``confusions_`` and ``prior_`` are the first community model's, for
    :func:`~goldlabel.quality.item_posterior`; ``vote_weights_`` the LOV member's weights.
    """

    def __init__(self, n_iter: int = 100, tol: float = 1e-5, strength: float = 1.0, temper: bool = True,
                 vote_strength: float = 20.0):
        self.n_iter = n_iter
        self.tol = tol
        self.strength = strength
        self.temper = temper
        self.vote_strength = vote_strength

    def _fit(self, data: Answers, gold_items: np.ndarray, gold_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        matrix = CountMatrix(data)
        fixed = CommunityDawidSkene(n_iter=self.n_iter, tol=self.tol, strength=self.strength)
        fixed_probas, skills = fixed._fit(data, gold_items, gold_labels, matrix=matrix)
        learned = CommunityDawidSkene(n_iter=self.n_iter, tol=self.tol, strength=3 * self.strength, learn_prior=True)
        learned_probas, _ = learned._fit(data, gold_items, gold_labels, start=fixed_probas, matrix=matrix)
        members = []
        self.temperatures_ = []
        reference = None
        for model, probas in ((fixed, fixed_probas), (learned, learned_probas)):
            if self.temper:
                if reference is None:
                    rows = matrix.confusion_counts(probas).sum(axis=-1) + data.n_labels * (model.strength + model.alpha)
                    reference = (model.confusions_, probas, rows)
                temperature = held_out_temperature(data, matrix, model._scores, model.confusions_, model.prior_,
                                                   reference[2], reference=reference)
                if temperature != 1.0:
                    log_prior = np.log(model.prior_)
                    probas = clamp_gold(softmax_rows(log_prior + (model._scores - log_prior) / temperature)[0],
                                        gold_items, gold_labels)
                self.temperatures_.append(temperature)
            members.append(probas)
        majority = MajorityVote()._fit(data, gold_items, gold_labels)[0]
        self.vote_weights_ = log_odds_weights(data, majority.argmax(axis=1), self.vote_strength)
        members.append(clamp_gold(normalize_rows(vote_counts(data, self.vote_weights_)), gold_items, gold_labels))
        members.append(majority)
        self.confusions_, self.prior_, self.n_iter_ = fixed.confusions_, fixed.prior_, fixed.n_iter_
        average = cast("np.ndarray", sum(members) / len(members))
        return average, skills
