"""Bayesian classifier combination by variational Bayes: IBCC and EBCC."""

from __future__ import annotations

import numpy as np
from scipy.special import digamma

from .categorical import (
    CategoricalEstimator,
    CountMatrix,
    clamp_gold,
    confusion_diagonal,
    majority_posteriors,
    softmax_rows,
)

__all__ = ["BCC", "EBCC"]


def _expected_log_dirichlet(concentration: np.ndarray) -> np.ndarray:
    """``E[log theta]`` under ``Dirichlet(concentration)`` along the last axis."""
    return digamma(concentration) - digamma(concentration.sum(axis=-1, keepdims=True))


class EBCC(CategoricalEstimator):
    r"""Enhanced Bayesian classifier combination: each true class k splits into M latent
    sub-types; annotators have one confusion row per (class, sub-type), so annotators who err
    together on the same kind of item are modelled as correlated:

    .. math::
        y_i \sim \mathrm{Cat}(\tau),\quad g_i \mid y_i{=}k \sim \mathrm{Cat}(\psi_k),\quad
        l_{ij} \mid y_i{=}k, g_i{=}m \sim \mathrm{Cat}(v_{jkm}),

    with Dirichlet priors :math:`\tau \sim \mathrm{Dir}(\alpha)`,
    :math:`\psi_k \sim \mathrm{Dir}(a_\psi / M)` and rows :math:`v_{jkm} \sim \mathrm{Dir}(\beta_k)`,
    :math:`\beta_{kl} = a_v` if l = k else :math:`b_v`. Mean-field variational Bayes over
    :math:`q(y, g)\,q(\tau)\,q(\psi)\,q(v)`; sub-types start from a random split of the
    majority-vote posteriors (``random_state``).

    Li, Rubinstein & Cohn (2019), "Exploiting worker correlation for label aggregation in
    crowdsourcing", ICML. With ``n_subtypes=1`` this is IBCC (:class:`BCC`).
    """

    def __init__(
        self,
        n_subtypes: int = 10,
        n_iter: int = 500,
        tol: float = 1e-3,
        subtype_concentration: float = 0.1,
        class_concentration: float = 1.0,
        diagonal_concentration: float = 4.0,
        off_diagonal_concentration: float = 1.0,
        random_state: int | None = 0,
    ):
        self.n_subtypes = n_subtypes
        self.n_iter = n_iter
        self.tol = tol
        self.subtype_concentration = subtype_concentration
        self.class_concentration = class_concentration
        self.diagonal_concentration = diagonal_concentration
        self.off_diagonal_concentration = off_diagonal_concentration
        self.random_state = random_state

    def _fit(self, data, gold_items, gold_labels):
        n_labels, n_sub = data.n_labels, int(self.n_subtypes)
        if n_sub < 1:
            raise ValueError(f"n_subtypes must be >= 1, got {self.n_subtypes}")
        matrix = CountMatrix(data)
        eye = np.eye(n_labels)
        row_prior = self.off_diagonal_concentration + (self.diagonal_concentration - self.off_diagonal_concentration) * eye
        # state s = k * n_sub + m; prior rows repeated for each sub-type
        state_prior = np.repeat(row_prior, n_sub, axis=0)
        gold_states = None

        posteriors = majority_posteriors(data, gold_items, gold_labels)
        rng = np.random.default_rng(self.random_state)
        split = rng.dirichlet(np.ones(n_sub), size=(data.n_items, n_labels)) if n_sub > 1 else np.ones((data.n_items, n_labels, 1))
        joint = (posteriors[:, :, None] * split).reshape(data.n_items, n_labels * n_sub)
        if len(gold_items):
            # clamp gold items to their class; their sub-type stays free
            gold_states = np.zeros((len(gold_items), n_labels), dtype=bool)
            gold_states[np.arange(len(gold_items)), gold_labels] = True
            gold_states = np.repeat(gold_states, n_sub, axis=1)

        self.n_iter_ = 0
        for _ in range(self.n_iter):
            concentration = state_prior[None] + matrix.confusion_counts(joint)
            log_conf = _expected_log_dirichlet(concentration)
            by_class = joint.reshape(data.n_items, n_labels, n_sub)
            sub_conc = self.subtype_concentration / n_sub + by_class.sum(axis=0)
            class_conc = self.class_concentration + posteriors.sum(axis=0)
            log_state = (_expected_log_dirichlet(sub_conc) + _expected_log_dirichlet(class_conc)[:, None]).ravel()
            scores = matrix.item_scores(log_conf) + log_state
            if gold_states is not None:
                scores[gold_items] = np.where(gold_states, scores[gold_items], -np.inf)
            joint, self.elbo_ = softmax_rows(scores)
            previous, posteriors = posteriors, joint.reshape(data.n_items, n_labels, n_sub).sum(axis=2)
            self.n_iter_ += 1
            if np.abs(posteriors - previous).max() < self.tol:
                break
        # per-class confusion (sub-types marginalised with their weights), for item_posterior
        sub_weights = sub_conc / sub_conc.sum(axis=1, keepdims=True)
        mean_conf = concentration / concentration.sum(axis=-1, keepdims=True)
        mean_conf = mean_conf.reshape(data.n_annotators, n_labels, n_sub, n_labels)
        self.confusions_ = np.einsum("jkml,km->jkl", mean_conf, sub_weights)
        self.prior_ = class_conc / class_conc.sum()
        clamp_gold(posteriors, gold_items, gold_labels)
        return posteriors, confusion_diagonal(self.confusions_, self.prior_)


class BCC(EBCC):
    r"""Independent Bayesian classifier combination (IBCC): Dawid-Skene with Dirichlet priors
    on the class prior and on every confusion row, fitted by variational Bayes, so posteriors
    use :math:`\exp E[\log \pi_j[k, l]]` and annotators with few answers stay near the prior:

    .. math:: q(y_i = k) \propto \exp\big(E[\log \tau_k] + \sum_{j \in i} E[\log \pi_j[k, l_{ij}]]\big),
              \quad \pi_j[k] \sim \mathrm{Dir}(\beta_k)

    Kim & Ghahramani (2012), "Bayesian classifier combination", AISTATS; VB as in Simpson
    et al. (2013), "Dynamic Bayesian combination of multiple imperfect classifiers".
    """

    def __init__(
        self,
        n_iter: int = 500,
        tol: float = 1e-4,
        class_concentration: float = 1.0,
        diagonal_concentration: float = 4.0,
        off_diagonal_concentration: float = 1.0,
    ):
        self.n_iter = n_iter
        self.tol = tol
        self.class_concentration = class_concentration
        self.diagonal_concentration = diagonal_concentration
        self.off_diagonal_concentration = off_diagonal_concentration
        self.n_subtypes = 1
        self.subtype_concentration = 1.0
        self.random_state = None
