"""GLAD: annotator expertise times item difficulty."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from .categorical import (
    CategoricalEstimator,
    clamp_gold,
    majority_posteriors,
    normalize_rows,
    softmax_rows,
)

__all__ = ["GLAD"]


class GLAD(CategoricalEstimator):
    r"""GLAD (Generative model of Labels, Abilities, and Difficulties): annotator j has
    expertise :math:`\alpha_j \in \mathbb{R}`, item i has inverse difficulty
    :math:`\beta_i = e^{b_i} > 0`; a correct answer has probability
    :math:`\sigma(\alpha_j \beta_i)` and wrong answers are spread evenly over the K-1 others:

    .. math:: P(l_{ij} = k \mid y_i = k) = \sigma(\alpha_j \beta_i), \quad
              P(l_{ij} = l \ne k \mid y_i = k) = \frac{1 - \sigma(\alpha_j \beta_i)}{K - 1}

    EM: the E-step is exact; the M-step maximises the expected complete log-likelihood with
    Gaussian priors :math:`\alpha_j \sim N(\mu_\alpha, 1)`, :math:`b_i \sim N(0, 1)` by a few
    L-BFGS steps on all parameters at once (vectorized gradients via ``np.bincount``).

    Whitehill, Ruvolo, Wu, Bergsma & Movellan (2009), "Whose vote should count more: optimal
    integration of labels from labelers of unknown expertise", NeurIPS.
    """

    def __init__(self, n_iter: int = 30, tol: float = 1e-5, alpha_prior_mean: float = 1.0,
                 m_step_iter: int = 5):
        self.n_iter = n_iter
        self.tol = tol
        self.alpha_prior_mean = alpha_prior_mean
        self.m_step_iter = m_step_iter

    def _fit(self, data, gold_items, gold_labels):
        n_items, n_annotators, n_labels = data.n_items, data.n_annotators, data.n_labels
        item, annotator, label = data.item, data.annotator, data.label
        log_wrong_share = np.log(max(n_labels - 1, 1))
        posteriors = majority_posteriors(data, gold_items, gold_labels)
        params = np.concatenate([np.full(n_annotators, self.alpha_prior_mean), np.zeros(n_items)])
        prior = normalize_rows(posteriors.sum(axis=0) + 1.0)

        def negative_q(theta: np.ndarray, correct: np.ndarray) -> tuple[float, np.ndarray]:
            alpha, b = theta[:n_annotators], theta[n_annotators:]
            beta = np.exp(b)
            x = alpha[annotator] * beta[item]
            q = correct * log_expit(x) + (1 - correct) * (log_expit(-x) - log_wrong_share)
            q_sum = q.sum() - 0.5 * ((alpha - self.alpha_prior_mean) ** 2).sum() - 0.5 * (b ** 2).sum()
            residual = correct - expit(x)
            grad_alpha = np.bincount(annotator, residual * beta[item], minlength=n_annotators)
            grad_alpha -= alpha - self.alpha_prior_mean
            grad_b = np.bincount(item, residual * alpha[annotator], minlength=n_items) * beta - b
            return -q_sum, -np.concatenate([grad_alpha, grad_b])

        previous = None
        self.n_iter_ = 0
        for _ in range(self.n_iter):
            correct = posteriors[item, label]
            result = minimize(negative_q, params, args=(correct,), jac=True, method="L-BFGS-B",
                              options={"maxiter": self.m_step_iter})
            params = result.x
            prior = normalize_rows(posteriors.sum(axis=0) + 1.0)
            alpha, beta = params[:n_annotators], np.exp(params[n_annotators:])
            x = alpha[annotator] * beta[item]
            log_right, log_wrong = log_expit(x), log_expit(-x) - log_wrong_share
            # work in log space: products of many small probabilities underflow
            base = np.bincount(item, log_wrong, minlength=n_items)
            bonus = np.bincount(item * n_labels + label, log_right - log_wrong,
                                minlength=n_items * n_labels).reshape(n_items, n_labels)
            posteriors, loglik = softmax_rows(base[:, None] + bonus + np.log(prior))
            clamp_gold(posteriors, gold_items, gold_labels)
            self.n_iter_ += 1
            if previous is not None and abs(loglik - previous) < self.tol:
                break
            previous = loglik
        self.alphas_ = params[:n_annotators]
        self.betas_ = np.exp(params[n_annotators:])
        self.prior_ = prior
        # skill: probability of a correct answer on an item of median difficulty
        return posteriors, expit(self.alphas_ * np.median(self.betas_))
