"""GLAD: annotator expertise times item difficulty."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
from scipy.special import expit, log_expit

from goldlabel.quality.answers import Answers

from .categorical import (
    CategoricalEstimator,
    clamp_gold,
    majority_posteriors,
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

    The class prior is fixed, as in the paper and crowd-kit: uniform, or ``labels_priors`` (a
    mapping or pandas Series label -> probability). Re-estimating it in every M-step lets a
    class absorb the hard items until the prior collapses onto it (zheng_rel: 0.29 accuracy).

    crowd-kit compatible: ``alphas_priors_mean`` / ``betas_priors_mean`` (per annotator / item,
    replacing ``alpha_prior_mean`` and 1 for :math:`\beta`), ``m_step_max_iter`` (same as
    ``m_step_iter``); fitted on a DataFrame, ``alphas_`` and ``betas_`` are Series named
    ``alpha`` / ``beta``, ``priors_`` a Series named ``prior``, ``loss_history_`` a list.

    Whitehill, Ruvolo, Wu, Bergsma & Movellan (2009), "Whose vote should count more: optimal
    integration of labels from labelers of unknown expertise", NeurIPS.
    """

    def __init__(self, n_iter: int = 30, tol: float = 1e-5, silent: bool = True, labels_priors: Any = None,
                 alphas_priors_mean: Any = None, betas_priors_mean: Any = None, m_step_max_iter: int | None = None,
                 m_step_tol: float = 1e-2, alpha_prior_mean: float = 1.0, m_step_iter: int = 5):
        self.n_iter = n_iter
        self.tol = tol
        self.silent = silent
        self.labels_priors = labels_priors
        self.alphas_priors_mean = alphas_priors_mean
        self.betas_priors_mean = betas_priors_mean
        self.m_step_max_iter = m_step_max_iter
        self.m_step_tol = m_step_tol
        self.alpha_prior_mean = alpha_prior_mean
        self.m_step_iter = m_step_iter

    def _fixed_prior(self, data: Answers) -> np.ndarray:
        if self.labels_priors is None:
            return np.full(data.n_labels, 1.0 / data.n_labels)
        given = self.labels_priors
        pairs = given.items() if hasattr(given, "items") else None
        if pairs is None:
            raise ValueError(f"labels_priors must map label -> probability; got {type(given).__name__}")
        labels, values = zip(*pairs) if len(given) else ((), ())
        prior = np.zeros(data.n_labels)
        prior[data.get_label_codes(list(labels))] = np.asarray(values, dtype=np.float64)
        if (prior < 0).any() or prior.sum() <= 0:
            raise ValueError("labels_priors must be non-negative with a positive sum")
        return cast("np.ndarray", np.maximum(prior / prior.sum(), 1e-300))

    def _per(self, given: Any, ids: np.ndarray, default: float, name: str) -> np.ndarray:
        """A prior mean per annotator / item: a scalar, or a mapping / Series id -> value."""
        if given is None:
            return np.full(len(ids), default)
        if np.isscalar(given):
            return np.full(len(ids), float(cast("float", given)))
        lookup = dict(given.items())
        missing = [i for i in ids.tolist() if i not in lookup]  # one step per annotator / item
        if missing:
            raise ValueError(f"{name} has no value for {len(missing)} of them, e.g. {missing[0]!r}")
        return np.array([lookup[i] for i in ids.tolist()], dtype=np.float64)

    def _fit(self, data: Answers, gold_items: np.ndarray, gold_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n_items, n_annotators, n_labels = data.n_items, data.n_annotators, data.n_labels
        item, annotator, label = data.item, data.annotator, data.label
        log_wrong_share = np.log(max(n_labels - 1, 1))
        posteriors = majority_posteriors(data, gold_items, gold_labels)
        alpha_mean = self._per(self.alphas_priors_mean, data.annotator_ids, self.alpha_prior_mean,
                               "alphas_priors_mean")
        # beta = exp(b): a prior mean m for beta is a prior mean log(m) for b
        b_mean = np.log(np.maximum(self._per(self.betas_priors_mean, data.item_ids, 1.0, "betas_priors_mean"),
                                   1e-12))
        params = np.concatenate([alpha_mean, b_mean])
        prior = self._fixed_prior(data)
        log_prior = np.log(prior)
        max_iter = self.m_step_iter if self.m_step_max_iter is None else self.m_step_max_iter

        def negative_q(theta: np.ndarray, correct: np.ndarray) -> tuple[float, np.ndarray]:
            alpha, b = theta[:n_annotators], theta[n_annotators:]
            beta = np.exp(b)
            x = alpha[annotator] * beta[item]
            q = correct * log_expit(x) + (1 - correct) * (log_expit(-x) - log_wrong_share)
            q_sum = q.sum() - 0.5 * ((alpha - alpha_mean) ** 2).sum() - 0.5 * ((b - b_mean) ** 2).sum()
            residual = correct - expit(x)
            grad_alpha = np.bincount(annotator, residual * beta[item], minlength=n_annotators)
            grad_alpha -= alpha - alpha_mean
            grad_b = np.bincount(item, residual * alpha[annotator], minlength=n_items) * beta - (b - b_mean)
            return -q_sum, -np.concatenate([grad_alpha, grad_b])

        # Imported at the first fit, not at start: scipy.optimize slows every process start.
        from scipy.optimize import minimize

        previous = None
        self.n_iter_ = 0
        self.loss_history_ = []
        for _ in range(self.n_iter):
            correct = posteriors[item, label]
            result = minimize(negative_q, params, args=(correct,), jac=True, method="L-BFGS-B",
                              options={"maxiter": max_iter})
            params = result.x
            alpha, beta = params[:n_annotators], np.exp(params[n_annotators:])
            x = alpha[annotator] * beta[item]
            log_right, log_wrong = log_expit(x), log_expit(-x) - log_wrong_share
            # work in log space: products of many small probabilities underflow
            base = np.bincount(item, log_wrong, minlength=n_items)
            bonus = np.bincount(item * n_labels + label, log_right - log_wrong,
                                minlength=n_items * n_labels).reshape(n_items, n_labels)
            posteriors, loglik = softmax_rows(base[:, None] + bonus + log_prior)
            clamp_gold(posteriors, gold_items, gold_labels)
            self.n_iter_ += 1
            self.loss_history_.append(loglik / data.n_answers)
            if previous is not None and abs(loglik - previous) < self.tol:
                break
            previous = loglik
        self.alphas_ = params[:n_annotators]
        self.betas_ = np.exp(params[n_annotators:])
        self.prior_ = prior
        self._alphas, self._betas = self.alphas_, self.betas_
        # skill: probability of a correct answer on an item of median difficulty
        return posteriors, expit(self.alphas_ * np.median(self.betas_))

    def _array_extras(self) -> None:
        self.priors_ = self.prior_

    def _frame_extras(self, pd: Any, items: Any, annotators: Any, labels: Any) -> None:
        self.alphas_ = pd.Series(self._alphas, index=annotators, name="alpha")
        self.betas_ = pd.Series(self._betas, index=items, name="beta")
        self.priors_ = pd.Series(self.prior_, index=labels, name="prior")

    def _set_empty_frames(self) -> None:
        import pandas as pd

        super()._set_empty_frames()
        self.alphas_ = pd.Series(dtype=float, name="alpha")
        self.betas_ = pd.Series(dtype=float, name="beta")
        self.priors_ = pd.Series(dtype=float, name="prior")
        self.loss_history_ = []
