"""MACE: annotators who either know the answer or spam with a personal strategy."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
from scipy.special import digamma

from goldlabel.quality.answers import Answers

from .categorical import (
    CategoricalEstimator,
    CountMatrix,
    clamp_gold,
    majority_posteriors,
    normalize_rows,
    softmax_rows,
)

__all__ = ["MACE"]

_METHODS = ("map", "vb", "em")


class MACE(CategoricalEstimator):
    r"""MACE (Multi-Annotator Competence Estimation): annotator j answers truthfully with
    probability :math:`\theta_j` (competence), otherwise "spams" a label drawn from a personal
    strategy :math:`\xi_j`:

    .. math:: P(l_{ij} = l \mid y_i = k) = \theta_j [l = k] + (1 - \theta_j)\, \xi_j[l]

    Fitted by EM; the M-step is chosen by ``method``:

    * ``"map"`` (default): MAP estimates under Beta(``competence_prior``) on :math:`\theta_j`
      and a symmetric Dirichlet(``strategy_prior``) on :math:`\xi_j`;
    * ``"vb"``: variational Bayes as in the paper (and crowd-kit), Beta(``alpha``, ``beta``)
      on :math:`\theta_j`, Dirichlet(``smoothing``) on :math:`\xi_j`, parameters replaced by
      :math:`\exp E[\log \cdot]`;
    * ``"em"``: maximum likelihood with ``smoothing`` added to the expected counts.

    ``n_restarts`` > 1 adds runs started from random posteriors (``random_state``), keeping
    the one with the highest likelihood; the first run always starts from majority vote.

    ``skills_`` is :math:`\theta_j`; crowd-kit's ``spamming_`` is ``(n_annotators, 2)``
    :math:`[1 - \theta_j, \theta_j]` and ``thetas_`` the strategies :math:`\xi_j`
    ``(n_annotators, n_labels)``.

    Hovy, Berg-Kirkpatrick, Vaswani & Hovy (2013), "Learning whom to trust with MACE", NAACL.
    """

    def __init__(self, n_restarts: int = 1, n_iter: int = 100, method: str = "map", smoothing: float = 0.1,
                 default_noise: float = 0.5, alpha: float = 0.5, beta: float = 0.5, random_state: int | None = 0,
                 verbose: int = 0, tol: float = 1e-5, competence_prior: tuple[float, float] = (2.0, 1.0),
                 strategy_prior: float = 1.0):
        self.n_restarts = n_restarts
        self.n_iter = n_iter
        self.method = method
        self.smoothing = smoothing
        self.default_noise = default_noise
        self.alpha = alpha
        self.beta = beta
        self.random_state = random_state
        self.verbose = verbose
        self.tol = tol
        self.competence_prior = competence_prior
        self.strategy_prior = strategy_prior

    def _fit(self, data: Answers, gold_items: np.ndarray, gold_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.method not in _METHODS:
            raise ValueError(f"method must be one of {', '.join(map(repr, _METHODS))}; got {self.method!r}")
        if self.n_restarts < 1:
            raise ValueError(f"n_restarts must be at least 1, got {self.n_restarts}")
        matrix = CountMatrix(data)
        rng = np.random.default_rng(self.random_state)
        best = None
        for restart in range(self.n_restarts):
            if restart == 0:
                start = majority_posteriors(data, gold_items, gold_labels)
            else:
                # a random start: every item's posterior drawn from a flat Dirichlet
                start = clamp_gold(rng.dirichlet(np.ones(data.n_labels), size=data.n_items),
                                   gold_items, gold_labels)
            run = self._run(data, matrix, start, gold_items, gold_labels)
            if best is None or run[0] > best[0] + 1e-9:
                best = run
        loglik, posteriors, competence, strategy, confusions, prior, n_iter = cast("tuple[Any, ...]", best)
        self.confusions_, self.prior_, self.strategies_ = confusions, prior, strategy
        self.loglik_, self.n_iter_ = loglik, n_iter
        self.thetas_ = strategy
        self.spamming_ = np.column_stack([1 - competence, competence])
        return posteriors, competence

    def _run(self, data: Answers, matrix: Any, posteriors: np.ndarray, gold_items: np.ndarray,
             gold_labels: np.ndarray) -> tuple[Any, ...]:
        n_annotators, n_labels = data.n_annotators, data.n_labels
        annotator, label = data.annotator, data.label
        answered = np.bincount(annotator, minlength=n_annotators).astype(float)
        a, b = self.competence_prior
        competence = np.full(n_annotators, a / (a + b) if self.method == "map" else 0.5)
        know, spam_weight = competence, 1 - competence
        strategy = np.full((n_annotators, n_labels), 1.0 / n_labels)
        eye = np.eye(n_labels)
        uniform = np.full(n_labels, 1.0 / n_labels)
        previous = None
        n_iter = 0
        loglik = -np.inf
        for iteration in range(max(self.n_iter, 1)):
            # M-step: P(answer was truthful) = P(y = l) * theta / (theta + (1 - theta) xi[l])
            theta, xi = know[annotator], spam_weight[annotator] * strategy[annotator, label]
            truthful = posteriors[data.item, label] * theta / (theta + xi)
            knowing = np.bincount(annotator, truthful, minlength=n_annotators)
            spam = np.bincount(annotator * n_labels + label, 1 - truthful,
                               minlength=n_annotators * n_labels).reshape(n_annotators, n_labels)
            if self.method == "map":
                competence = np.clip((knowing + a - 1) / (answered + a + b - 2), 1e-4, 1 - 1e-4)
                know, spam_weight = competence, 1 - competence
                strategy = normalize_rows(spam + self.strategy_prior)
            elif self.method == "em":
                competence = np.clip((knowing + self.smoothing) / (answered + 2 * self.smoothing), 1e-4, 1 - 1e-4)
                know, spam_weight = competence, 1 - competence
                strategy = normalize_rows(spam + self.smoothing)
            else:  # vb: exp E[log] of the variational Beta / Dirichlet posteriors
                total = digamma(answered + self.alpha + self.beta)
                know = np.exp(digamma(knowing + self.alpha) - total)
                spam_weight = np.exp(digamma(answered - knowing + self.beta) - total)
                competence = know / (know + spam_weight)
                spam_total = spam.sum(axis=1, keepdims=True)
                strategy = np.exp(digamma(spam + self.smoothing) - digamma(spam_total + n_labels * self.smoothing))
            confusions = know[:, None, None] * eye + spam_weight[:, None, None] * strategy[:, None, :]
            # the paper's model (vb, em) has a uniform class prior; "map" learns it
            prior = normalize_rows(posteriors.sum(axis=0) + 1.0) if self.method == "map" else uniform
            if iteration >= self.n_iter:
                break  # n_iter=0: the parameters of the starting posteriors, no E-step
            # work in log space: products of many small probabilities underflow
            posteriors, loglik = softmax_rows(matrix.item_scores(np.log(confusions)) + np.log(prior))
            clamp_gold(posteriors, gold_items, gold_labels)
            n_iter += 1
            if previous is not None and abs(loglik - previous) < self.tol:
                break
            previous = loglik
        if self.method == "vb":
            # report (and compare restarts by) proper probabilities, not exp E[log] weights
            strategy = normalize_rows(strategy)
            confusions = competence[:, None, None] * eye + (1 - competence)[:, None, None] * strategy[:, None, :]
            if n_iter:
                loglik = softmax_rows(matrix.item_scores(np.log(confusions)) + np.log(prior))[1]
        return loglik, posteriors, competence, strategy, confusions, prior, n_iter
