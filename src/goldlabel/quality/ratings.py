"""Rating (numeric / ordinal) aggregation with annotator bias and precision.

Input in long format: integer codes ``item`` and ``annotator`` (``0..n-1``) and a float
``value`` per answer. Every estimator fills ``values_`` (one number per item, NaN for items
without answers) and ``sd_`` (its uncertainty); all updates are bincounts over answers.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np

__all__ = ["MeanRating", "MedianRating", "RobustRating"]


def _check(item: Any, annotator: Any, value: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    item = np.asarray(item).ravel()
    annotator = np.asarray(annotator).ravel()
    value = np.asarray(value, dtype=float).ravel()
    if not len(item) == len(annotator) == len(value):
        raise ValueError(
            "item, annotator and value must have the same length, got "
            f"{len(item)}, {len(annotator)}, {len(value)}"
        )
    for name, codes in (("item", item), ("annotator", annotator)):
        if codes.dtype.kind not in "iu":
            raise ValueError(f"{name} must be integer codes 0..n-1, got dtype {codes.dtype}")
        if len(codes) and codes.min() < 0:
            raise ValueError(f"{name} codes must be >= 0")
    if not np.all(np.isfinite(value)):
        raise ValueError("value must be finite (drop missing answers before fitting)")
    if len(value) == 0:
        raise ValueError("no answers to aggregate")
    return item.astype(np.int64), annotator.astype(np.int64), value


def _weighted_mean(item: np.ndarray, value: np.ndarray, weight: np.ndarray, n_items: int,
                   ) -> tuple[np.ndarray, np.ndarray]:
    total = np.bincount(item, weights=weight, minlength=n_items)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(item, weights=weight * value, minlength=n_items) / total, total


class MeanRating:
    """Plain mean of the answers per item; ``sd_`` is the standard error
    (sample sd / sqrt(m), NaN for items with one answer)."""

    def __init__(self) -> None:
        pass

    def fit(self, item: Any, annotator: Any, value: Any, n_items: int | None = None) -> Self:
        item, annotator, value = _check(item, annotator, value)
        n_items = n_items or int(item.max()) + 1
        ones = np.ones(len(item))
        self.values_, count = _weighted_mean(item, value, ones, n_items)
        sq = np.bincount(item, weights=(value - self.values_[item]) ** 2, minlength=n_items)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.sd_ = np.sqrt(sq / (count - 1) / count)
        return self


class MedianRating:
    """Median of the answers per item (one sort of all answers by (item, value));
    ``sd_`` is 1.2533 * MAD-based sd / sqrt(m), the normal-theory standard error of a median."""

    def __init__(self) -> None:
        pass

    def fit(self, item: Any, annotator: Any, value: Any, n_items: int | None = None) -> Self:
        item, annotator, value = _check(item, annotator, value)
        n_items = n_items or int(item.max()) + 1
        self.values_ = _item_median(item, value, n_items)
        mad = _item_median(item, np.abs(value - self.values_[item]), n_items)
        count = np.bincount(item, minlength=n_items)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.sd_ = 1.2533 * 1.4826 * mad / np.sqrt(count)
        return self


def _item_median(item: np.ndarray, value: np.ndarray, n_items: int) -> np.ndarray:
    order = np.lexsort((value, item))
    sorted_values = value[order]
    count = np.bincount(item, minlength=n_items)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    has = count > 0
    lo = start + (count - 1) // 2
    hi = start + count // 2
    out = np.full(n_items, np.nan)
    out[has] = (sorted_values[lo[has]] + sorted_values[hi[has]]) / 2.0
    return out


class RobustRating:
    """Truth, annotator bias and annotator precision by iteratively reweighted EM.

    Model: x_ij = t_i + b_j + e_ij with e_ij ~ Student-t(nu, 0, 1/tau_j), written as a
    Gaussian scale mixture e_ij | w_ij ~ N(0, 1/(w_ij tau_j)), w_ij ~ Gamma(nu/2, nu/2).
    Priors: b_j ~ N(0, 1/(prior_bias * tau_j)) (shrinks the bias of annotators with few
    answers), tau_j ~ Gamma(prior_precision/2, prior_precision * s0^2 / 2) with s0^2 the
    pooled residual variance, t_i flat. Each iteration (ECM):

        w_ij   = (nu + 1) / (nu + tau_j r_ij^2),           r_ij = x_ij - t_i - b_j
        t_i    = sum_j w_ij tau_j (x_ij - b_j) / sum_j w_ij tau_j
        b_j    = sum_i w_ij (x_ij - t_i) / (sum_i w_ij + prior_bias)
        tau_j  = (n_j + prior_precision) / (sum_i w_ij r_ij^2 + prior_precision s0^2)

    ``nu=inf`` gives the Gaussian model (LFC_N-style, Raykar et al. 2010 with bias);
    a finite ``nu`` downweights outlying answers (robust fallback: starting from the
    median, a single wild answer cannot drag the estimate). ``bias=False`` drops b_j.
    ``sd_`` is the posterior sd of t_i, 1 / sqrt(sum_j w_ij tau_j).

    Raykar, V. C. et al. (2010). Learning from crowds. JMLR 11, 1297-1322.
    Lange, K., Little, R., Taylor, J. (1989). Robust statistical modeling using the
    t distribution. JASA 84(408), 881-896.
    Welinder, P., Perona, P. (2010). Online crowdsourcing: rating annotators and obtaining
    cost-effective labels. CVPR workshops (annotator bias/precision).
    """

    def __init__(
        self,
        nu: float = float("inf"),
        bias: bool = True,
        prior_bias: float = 5.0,
        prior_precision: float = 5.0,
        n_iter: int = 100,
        tol: float = 1e-6,
    ) -> None:
        self.nu = nu
        self.bias = bias
        self.prior_bias = prior_bias
        self.prior_precision = prior_precision
        self.n_iter = n_iter
        self.tol = tol

    def fit(self, item: Any, annotator: Any, value: Any, n_items: int | None = None,
            n_annotators: int | None = None) -> Self:
        item, annotator, value = _check(item, annotator, value)
        n_items = n_items or int(item.max()) + 1
        n_annotators = n_annotators or int(annotator.max()) + 1
        n_j = np.bincount(annotator, minlength=n_annotators).astype(float)
        truth = _item_median(item, value, n_items)
        bias = np.zeros(n_annotators)
        resid = value - truth[item]
        s0 = max(float(np.median(resid**2)) / 0.455, 1e-12)  # median of chi2_1 is 0.455
        tau = np.full(n_annotators, 1.0 / s0)
        w = np.ones(len(value))
        robust = np.isfinite(self.nu)
        self.n_iter_ = 0
        for it in range(self.n_iter):
            r = value - truth[item] - bias[annotator]
            if robust:
                w = (self.nu + 1.0) / (self.nu + tau[annotator] * r**2)
            precision = w * tau[annotator]
            new_truth, _ = _weighted_mean(item, value - bias[annotator], precision, n_items)
            if self.bias:
                dev = value - new_truth[item]
                bias = np.bincount(annotator, weights=w * dev, minlength=n_annotators) / (
                    np.bincount(annotator, weights=w, minlength=n_annotators) + self.prior_bias
                )
            r = value - new_truth[item] - bias[annotator]
            sq = np.bincount(annotator, weights=w * r**2, minlength=n_annotators)
            tau = (n_j + self.prior_precision) / (sq + self.prior_precision * s0)
            shift = np.nanmax(np.abs(new_truth - truth))
            truth = new_truth
            self.n_iter_ = it + 1
            if shift <= self.tol:
                break
        r = value - truth[item] - bias[annotator]
        if robust:
            w = (self.nu + 1.0) / (self.nu + tau[annotator] * r**2)
        total_precision = np.bincount(item, weights=w * tau[annotator], minlength=n_items)
        self.values_ = truth
        with np.errstate(divide="ignore"):
            self.sd_ = 1.0 / np.sqrt(total_precision)
        self.sd_[total_precision == 0] = np.nan
        self.biases_ = bias
        self.precisions_ = tau
        self.skills_ = 1.0 / np.sqrt(tau)  # annotator noise sd, in the units of the ratings
        self.weights_ = w
        return self
