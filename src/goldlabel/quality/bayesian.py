"""Bayesian classifier combination by variational Bayes: IBCC and EBCC."""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import numpy as np
from scipy.special import digamma, gammaln, xlogy

from goldlabel.quality.answers import Answers

from .categorical import (
    CategoricalEstimator,
    CountMatrix,
    clamp_gold,
    confusion_diagonal,
    majority_posteriors,
    softmax_rows,
)

__all__ = ["BCC", "EBCC"]

# a sub-type holding less than half an item's posterior mass is not told apart from an empty one
# when counting the relabelings of a fit (see EBCC._relabelings)
_USED_SUBTYPE_MASS = 0.5


def _expected_log_dirichlet(concentration: np.ndarray) -> np.ndarray:
    """``E[log theta]`` under ``Dirichlet(concentration)`` along the last axis."""
    return cast("np.ndarray", digamma(concentration) - digamma(concentration.sum(axis=-1, keepdims=True)))


def _log_beta(concentration: np.ndarray) -> np.ndarray:
    """Log of the multivariate Beta function along the last axis."""
    return cast("np.ndarray", gammaln(concentration).sum(axis=-1) - gammaln(concentration.sum(axis=-1)))


def _dirichlet_kl(posterior: np.ndarray, prior: np.ndarray) -> float:
    """``KL(Dir(posterior) || Dir(prior))`` along the last axis, summed over the other axes."""
    prior = np.broadcast_to(prior, posterior.shape)
    expected_log = _expected_log_dirichlet(posterior)
    return float((_log_beta(prior) - _log_beta(posterior)).sum() + ((posterior - prior) * expected_log).sum())


class _Fit(NamedTuple):
    """One mean-field fit: ``q(y, g)`` and the Dirichlet concentrations of q(v), q(psi), q(tau)."""

    joint: np.ndarray  # (n_items, n_labels, n_subtypes)
    confusion: np.ndarray  # (n_annotators, n_labels * n_subtypes, n_labels)
    subtype: np.ndarray  # (n_labels, n_subtypes)
    klass: np.ndarray  # (n_labels,)
    elbo: float
    n_iter: int


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
    :math:`q(y, g)\,q(\tau)\,q(\psi)\,q(v)`, maximising the evidence lower bound

    .. math::
        \mathcal{L} = E_q[\log p(l \mid y, g, v) + \log p(y, g \mid \tau, \psi)] + H[q(y, g)]
        - \mathrm{KL}(q(v) \| p(v)) - \mathrm{KL}(q(\psi) \| p(\psi)) - \mathrm{KL}(q(\tau) \| p(\tau)).

    VB finds a local optimum only, so the fit starts several times: once from IBCC's fit (every
    item of a class in one sub-type) and ``n_restarts`` times from random splits of the
    majority-vote posteriors into sub-types (drawn from ``random_state``). The kept fit has the
    highest :math:`\mathcal{L} + \sum_k \log \frac{M!}{(M - n_k)!}`, :math:`n_k` the sub-types
    class k uses: the posterior is the same under every relabeling of a class's sub-types, a
    mean-field q sits on one of them, and :math:`\mathcal{L}` alone would favour fits that use
    fewer (class, sub-type) pairs, such as a rare class absorbed into a sub-type of a common one
    (Bishop 2006, section 10.2.4, corrects a mixture's bound by :math:`\log K!` the same way).
    ``elbo_`` is :math:`\mathcal{L}` of the kept fit; ``start_elbos_`` and ``start_scores_``
    (bound plus the relabeling term) hold every start's, the IBCC start first.

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
        n_restarts: int = 3,
        random_state: int | None = 0,
    ):
        self.n_subtypes = n_subtypes
        self.n_iter = n_iter
        self.tol = tol
        self.subtype_concentration = subtype_concentration
        self.class_concentration = class_concentration
        self.diagonal_concentration = diagonal_concentration
        self.off_diagonal_concentration = off_diagonal_concentration
        self.n_restarts = n_restarts
        self.random_state = random_state

    def _fit(self, data: Answers, gold_items: np.ndarray, gold_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n_items, n_labels, n_sub = data.n_items, data.n_labels, int(self.n_subtypes)
        if n_sub < 1:
            raise ValueError(f"n_subtypes must be >= 1, got {self.n_subtypes}")
        if int(self.n_restarts) < 0:
            raise ValueError(f"n_restarts must be >= 0, got {self.n_restarts}")
        matrix = CountMatrix(data)
        posteriors = majority_posteriors(data, gold_items, gold_labels)
        fits = [self._run_vb(matrix, posteriors[:, :, None], gold_items, gold_labels)]
        if n_sub > 1:
            # IBCC's fit with every item of a class in sub-type 0: empty sub-types stay empty
            # (E[log psi] of an empty one is about -100), so this start keeps every class that
            # IBCC finds, however rare; the random splits below let sub-types form
            start = np.zeros((n_items, n_labels, n_sub))
            start[:, :, 0] = fits[0].joint[:, :, 0]
            ibcc = self._run_vb(matrix, start, gold_items, gold_labels)
            fits = [ibcc._replace(n_iter=ibcc.n_iter + fits[0].n_iter)]
            rng = np.random.default_rng(self.random_state)
            for _ in range(int(self.n_restarts)):
                split = rng.dirichlet(np.ones(n_sub), size=(n_items, n_labels))
                fits.append(self._run_vb(matrix, posteriors[:, :, None] * split, gold_items, gold_labels))
        self.start_elbos_ = np.array([fit.elbo for fit in fits])
        self.start_scores_ = self.start_elbos_ + [self._relabelings(fit.subtype) for fit in fits]
        best = fits[int(np.argmax(self.start_scores_))]  # ties go to the earliest start
        self.elbo_, self.n_iter_ = best.elbo, best.n_iter
        # per-class confusion (sub-types marginalised with their weights), for item_posterior
        sub_weights = best.subtype / best.subtype.sum(axis=1, keepdims=True)
        mean_conf = best.confusion / best.confusion.sum(axis=-1, keepdims=True)
        mean_conf = mean_conf.reshape(data.n_annotators, n_labels, n_sub, n_labels)
        self.confusions_ = np.einsum("jkml,km->jkl", mean_conf, sub_weights)
        self.prior_ = best.klass / best.klass.sum()
        posteriors = clamp_gold(best.joint.sum(axis=2), gold_items, gold_labels)
        return posteriors, confusion_diagonal(self.confusions_, self.prior_)

    def _relabelings(self, subtype_concentration: np.ndarray) -> float:
        """``sum_k log(M! / (M - n_k)!)``: the distinct relabelings of each class's used sub-types."""
        n_sub = subtype_concentration.shape[1]
        mass = subtype_concentration - self.subtype_concentration / n_sub
        used = (mass >= _USED_SUBTYPE_MASS).sum(axis=1)
        return float((gammaln(n_sub + 1) - gammaln(n_sub - used + 1)).sum())

    def _run_vb(self, matrix: CountMatrix, joint: np.ndarray, gold_items: np.ndarray,
                gold_labels: np.ndarray) -> _Fit:
        """Coordinate ascent from ``q(y, g) = joint`` (n_items, n_labels, n_subtypes).

        Each pass updates q(v), q(psi), q(tau) from q(y, g), then q(y, g) from them; both steps
        are exact coordinate maxima, so the bound never decreases. The returned concentrations
        are updated once more from the final q(y, g), where the bound is evaluated.
        """
        n_items, n_labels, n_sub = joint.shape
        eye = np.eye(n_labels)
        row_prior = self.off_diagonal_concentration + (self.diagonal_concentration
                                                       - self.off_diagonal_concentration) * eye
        # state s = k * n_sub + m; prior rows repeated for each sub-type
        state_prior = np.repeat(row_prior, n_sub, axis=0)
        subtype_prior = self.subtype_concentration / n_sub
        allowed = None
        if len(gold_items):
            # clamp gold items to their class; their sub-type stays free
            allowed = np.zeros((len(gold_items), n_labels), dtype=bool)
            allowed[np.arange(len(gold_items)), gold_labels] = True
            allowed = np.repeat(allowed, n_sub, axis=1)

        def update_globals(by_state: np.ndarray) -> tuple[Any, ...]:
            by_class = by_state.reshape(n_items, n_labels, n_sub)
            confusion = state_prior[None] + matrix.confusion_counts(by_state)
            subtype = subtype_prior + by_class.sum(axis=0)
            klass = self.class_concentration + by_class.sum(axis=(0, 2))
            log_state = (_expected_log_dirichlet(subtype) + _expected_log_dirichlet(klass)[:, None]).ravel()
            answer_scores = matrix.item_scores(_expected_log_dirichlet(confusion))
            return confusion, subtype, klass, log_state, answer_scores

        joint = joint.reshape(n_items, n_labels * n_sub)
        posteriors = joint.reshape(n_items, n_labels, n_sub).sum(axis=2)
        n_iter = 0
        for _ in range(self.n_iter):
            _, _, _, log_state, answer_scores = update_globals(joint)
            scores = answer_scores + log_state
            if allowed is not None:
                scores[gold_items] = np.where(allowed, scores[gold_items], -np.inf)
            joint, _ = softmax_rows(scores)
            previous, posteriors = posteriors, joint.reshape(n_items, n_labels, n_sub).sum(axis=2)
            n_iter += 1
            if np.abs(posteriors - previous).max() < self.tol:
                break
        confusion, subtype, klass, log_state, answer_scores = update_globals(joint)
        elbo = (
            float((joint * answer_scores).sum())  # E[log p(labels | y, g, v)]
            + float((joint @ log_state).sum())  # E[log p(y, g | tau, psi)]
            - float(xlogy(joint, joint).sum())  # entropy of q(y, g); 0 log 0 = 0 on clamped gold
            - _dirichlet_kl(confusion, state_prior)
            - _dirichlet_kl(subtype, np.full(n_sub, subtype_prior))
            - _dirichlet_kl(klass, np.full(n_labels, self.class_concentration))
        )
        return _Fit(joint.reshape(n_items, n_labels, n_sub), confusion, subtype, klass, elbo, n_iter)


class BCC(EBCC):
    r"""Independent Bayesian classifier combination (IBCC): Dawid-Skene with Dirichlet priors
    on the class prior and on every confusion row, fitted by variational Bayes, so posteriors
    use :math:`\exp E[\log \pi_j[k, l]]` and annotators with few answers stay near the prior:

    .. math:: q(y_i = k) \propto \exp\big(E[\log \tau_k] + \sum_{j \in i} E[\log \pi_j[k, l_{ij}]]\big),
              \quad \pi_j[k] \sim \mathrm{Dir}(\beta_k)

    One sub-type per class, so one start suffices; ``elbo_`` is the evidence lower bound.

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
        self.n_restarts = 0
        self.random_state = None
