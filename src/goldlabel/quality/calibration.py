r"""Calibration of final-label confidence.

An EM posterior assumes annotators err independently given the true label; they do not (hard
items fool many at once), so raw posteriors are over-confident: a DS "0.999" is right far less
often than 999 times in 1000. :func:`calibrate_probas` maps the top probability through a
per-method Platt map on its log-odds, :math:`c' = \sigma(a\,\mathrm{logit}(c) + b)`, whose
(a, b) in :data:`CALIBRATION` were fitted by ``benchmarks/aggregation.py`` on the visible
benchmark sets and checked leave-one-dataset-out (docs/quality.md: a map is never scored on a
set it was fitted on).
"""

from __future__ import annotations

from typing import cast

import numpy as np

__all__ = ["CALIBRATION", "calibrate_probas", "calibrated_top", "compute_ece", "fit_platt", "platt_confidence"]

#: method name -> (a, b) of its Platt map, fitted on all visible categorical benchmark sets
#: with truth, each set weighted equally (``python benchmarks/aggregation.py`` prints them);
#: a method not listed keeps its raw posterior
CALIBRATION: dict[str, tuple[float, float]] = {
    "mv": (0.0972, 1.0529),
    "wawa": (0.0984, 1.0767),
    "ds": (0.1389, 0.3210),
    "onecoin": (0.1485, -0.3569),
    "glad": (0.1636, -0.3967),
    "mace": (0.1462, 0.2392),
    "bcc": (0.1527, 0.2756),
    "ebcc": (0.1467, 0.3039),
    "cds": (0.1528, 0.3694),
    "robust": (0.1133, 1.2480),
    "auto": (0.1423, 0.5340),
}

_LOGIT_CLIP = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _LOGIT_CLIP, 1.0 - _LOGIT_CLIP)
    return cast("np.ndarray", np.log(p) - np.log1p(-p))


def platt_confidence(confidence: np.ndarray, a: float, b: float) -> np.ndarray:
    r""":math:`\sigma(a\,\mathrm{logit}(c) + b)` elementwise."""
    return 1.0 / (1.0 + np.exp(-(a * _logit(np.asarray(confidence, dtype=np.float64)) + b)))


def fit_platt(confidence: np.ndarray, correct: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, float]:
    """(a, b) minimising the weighted log loss of :func:`platt_confidence` against
    ``correct`` (Platt 1999, on the log-odds of the confidence as in Guo et al. 2017)."""
    from scipy.optimize import minimize

    x = _logit(np.asarray(confidence, dtype=np.float64))
    y = np.asarray(correct, dtype=np.float64)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        z = params[0] * x + params[1]
        # log(1 + e^z) - y z, stably; gradient (sigma(z) - y) * (x, 1)
        value = float((w * (np.logaddexp(0.0, z) - y * z)).sum())
        residual = w * (1.0 / (1.0 + np.exp(-z)) - y)
        return value, np.array([(residual * x).sum(), residual.sum()])

    result = minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    return float(result.x[0]), float(result.x[1])


def calibrated_top(top: np.ndarray, second: np.ndarray, n_labels: int, params: tuple[float, float]) -> np.ndarray:
    """The calibrated top probability given the raw top and second-highest ones: the Platt map,
    floored at 1/K and where the other labels, rescaled to share the rest, would overtake the
    top (``new >= second * (1 - new) / (1 - top)``  <=>  ``new >= second / (1 - top + second)``)."""
    top = np.asarray(top, dtype=np.float64)
    second = np.asarray(second, dtype=np.float64)
    rest = 1.0 - top
    floor = np.divide(second, rest + second, out=np.full(top.shape, 1.0 / n_labels), where=rest + second > 0)
    return cast("np.ndarray", np.maximum(platt_confidence(top, *params), np.maximum(floor, 1.0 / n_labels)))


def calibrate_probas(probas: np.ndarray, method: str | tuple[float, float] | None,
                     gold_items: np.ndarray | None = None) -> np.ndarray:
    """Posteriors whose top probability is the calibrated confidence of ``method`` (a name in
    :data:`CALIBRATION` or an explicit (a, b)); the other labels share the rest in their old
    proportions, so the argmax never changes (the top is floored where rescaling would lift
    another label above it). Gold items (clamped to their known label) are left as they are."""
    params = CALIBRATION.get(method) if isinstance(method, str) else method
    probas = np.asarray(probas, dtype=np.float64)
    if params is None or probas.size == 0:
        return probas
    n_items, n_labels = probas.shape
    rows = np.arange(n_items)
    top = probas.argmax(axis=1)
    old = probas[rows, top]
    others = probas.copy()
    others[rows, top] = 0.0
    highest_other = others.max(axis=1) if n_labels > 1 else np.zeros(n_items)
    new = calibrated_top(old, highest_other, n_labels, params)
    rest = 1.0 - old
    spread = np.where(rest[:, None] > 1e-12, others / np.maximum(rest, 1e-300)[:, None],
                      (1.0 - np.eye(n_labels)[top]) / max(n_labels - 1, 1))
    out = spread * (1.0 - new)[:, None]
    out[rows, top] = new
    if gold_items is not None and len(gold_items):
        out[gold_items] = probas[gold_items]
    return cast("np.ndarray", out)


def compute_ece(confidence: np.ndarray, is_correct: np.ndarray, n_bins: int = 10) -> float:
    r"""Expected calibration error of final-label confidences against truth, equal-width bins:

    .. math:: \mathrm{ECE} = \sum_b \frac{|B_b|}{n} \,\big|\mathrm{acc}(B_b) - \mathrm{conf}(B_b)\big|

    Guo, Pleiss, Sun & Weinberger (2017), "On calibration of modern neural networks", ICML.
    """
    confidence = np.asarray(confidence, dtype=np.float64).ravel()
    is_correct = np.asarray(is_correct, dtype=np.float64).ravel()
    if len(confidence) != len(is_correct):
        raise ValueError(f"confidence and is_correct differ in length: {len(confidence)} vs {len(is_correct)}")
    if len(confidence) == 0:
        raise ValueError("no predictions to calibrate")
    bins = np.clip((confidence * n_bins).astype(np.int64), 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    gap = np.abs(np.bincount(bins, confidence, n_bins) - np.bincount(bins, is_correct, n_bins))
    return float(gap.sum() / count.sum())
