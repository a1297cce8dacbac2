"""MACE: annotators who either know the answer or spam with a personal strategy."""

from __future__ import annotations

import numpy as np

from .categorical import (
    CategoricalEstimator,
    CountMatrix,
    clamp_gold,
    majority_posteriors,
    normalize_rows,
    softmax_rows,
)

__all__ = ["MACE"]


class MACE(CategoricalEstimator):
    r"""MACE (Multi-Annotator Competence Estimation): annotator j answers truthfully with
    probability :math:`\theta_j` (competence), otherwise "spams" a label drawn from a personal
    strategy :math:`\xi_j`:

    .. math:: P(l_{ij} = l \mid y_i = k) = \theta_j [l = k] + (1 - \theta_j)\, \xi_j[l]

    EM with MAP smoothing: Beta(``competence_prior``) on :math:`\theta_j` and a symmetric
    Dirichlet(``strategy_prior``) on :math:`\xi_j`. ``skills_`` is :math:`\theta_j`.

    Hovy, Berg-Kirkpatrick, Vaswani & Hovy (2013), "Learning whom to trust with MACE", NAACL.
    """

    def __init__(self, n_iter: int = 100, tol: float = 1e-5,
                 competence_prior: tuple[float, float] = (2.0, 1.0), strategy_prior: float = 1.0):
        self.n_iter = n_iter
        self.tol = tol
        self.competence_prior = competence_prior
        self.strategy_prior = strategy_prior

    def _fit(self, data, gold_items, gold_labels):
        n_annotators, n_labels = data.n_annotators, data.n_labels
        matrix = CountMatrix(data)
        annotator, label = data.annotator, data.label
        answered = np.bincount(annotator, minlength=n_annotators).astype(float)
        a, b = self.competence_prior
        posteriors = majority_posteriors(data, gold_items, gold_labels)
        competence = np.full(n_annotators, a / (a + b))
        strategy = np.full((n_annotators, n_labels), 1.0 / n_labels)
        eye = np.eye(n_labels)
        previous = None
        self.n_iter_ = 0
        for _ in range(self.n_iter):
            # M-step: P(answer was truthful) = P(y = l) * theta / (theta + (1 - theta) xi[l])
            theta, xi = competence[annotator], strategy[annotator, label]
            truthful = posteriors[data.item, label] * theta / (theta + (1 - theta) * xi)
            competence = (np.bincount(annotator, truthful, minlength=n_annotators) + a - 1) / (answered + a + b - 2)
            competence = np.clip(competence, 1e-4, 1 - 1e-4)
            spam = np.bincount(annotator * n_labels + label, 1 - truthful,
                               minlength=n_annotators * n_labels).reshape(n_annotators, n_labels)
            strategy = normalize_rows(spam + self.strategy_prior)
            confusions = competence[:, None, None] * eye + (1 - competence)[:, None, None] * strategy[:, None, :]
            prior = normalize_rows(posteriors.sum(axis=0) + 1.0)
            # work in log space: products of many small probabilities underflow
            posteriors, loglik = softmax_rows(matrix.item_scores(np.log(confusions)) + np.log(prior))
            clamp_gold(posteriors, gold_items, gold_labels)
            self.n_iter_ += 1
            if previous is not None and abs(loglik - previous) < self.tol:
                break
            previous = loglik
        self.confusions_, self.prior_, self.strategies_ = confusions, prior, strategy
        return posteriors, competence
