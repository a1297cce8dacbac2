"""Calibrated auto-labeling with a guarantee: the score threshold above which the model's labels
meet a target accuracy, chosen with a one-sided Clopper-Pearson bound and fixed-sequence testing
(Learn-then-Test, Angelopoulos et al. 2021), on a uniformly random calibration slice.

Statement (:func:`select_threshold`): let the calibration items be drawn independently from a
distribution D with out-of-fold scores ``s_i`` and labels ``y_i``. The thresholds are tested in
a fixed descending order (built from the scores alone, never the labels); each null hypothesis
"the model's error rate among D's items with score >= t_j exceeds 1 - target" is rejected when the
Clopper-Pearson upper bound U_j at level ``delta`` is <= 1 - target, and the walk stops at the
first one not rejected. Then with probability >= 1 - delta, the error rate above the chosen
threshold (on items drawn from D, against the labels' source) is <= 1 - target. Items chosen by
active learning are not drawn from D: compute it on the random slice only.

Against the truth, not the crowd (``label_confidence``): a crowd label is itself wrong now and
then, and a model trained on crowd labels agrees with the crowd's mistakes, so a bound on the
model's disagreement with the labels says nothing about its errors against the truth (on
zheng_product the slice's consensus labels were 6-7% wrong, and auto-labels bounded at 95%
agreement with them were 88-95% right). Given each label's probability of being right, c_i
(1 for gold and reviewed labels; the consensus posterior of the humans' answers alone otherwise),
each calibration item counts e_i = 1 - c_i where the model agrees with the label and 1 where it
does not: since P(model wrong) <= P(label wrong) + P(model != label), e_i's expectation is at
least the chance that the model's label is wrong against the truth when the c_i are calibrated
(conservative where they are under-confident). The bound is then the same Beta quantile at the
sum of the e_i (continuous in the error count): exact for 0/1 errors; for fractional ones an
approximation (a [0, 1] variable is less spread than a Bernoulli of the same mean, Hoeffding
1963, which makes the binomial's Chernoff tail valid but not its exact quantile). So the
statement above holds against the truth to the extent that the labels' confidences are
calibrated. Without ``label_confidence`` every label counts as right (c_i = 1): the bound is
against the labels, as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.stats import beta


def clopper_pearson_upper(errors: np.ndarray | int, n: np.ndarray | int, delta: float) -> np.ndarray:
    """One-sided upper (1 - delta) Clopper-Pearson bound on a binomial rate, vectorized:
    the (1 - delta) quantile of Beta(e + 1, n - e); 1 where e = n or n = 0."""
    e = np.asarray(errors, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        upper = beta.ppf(1 - delta, e + 1, np.maximum(n - e, 1e-300))
    return np.where((n <= 0) | (e >= n), 1.0, upper)


def clopper_pearson_lower(successes: np.ndarray | int, n: np.ndarray | int, delta: float) -> np.ndarray:
    """One-sided lower (1 - delta) Clopper-Pearson bound: 1 - the upper bound on the failures."""
    s = np.asarray(successes, dtype=np.float64)
    return 1.0 - clopper_pearson_upper(np.asarray(n, dtype=np.float64) - s, n, delta)


def min_start_count(target: float, delta: float, errors_allowed: int | None = None) -> int:
    """Where the fixed sequence starts: the number of calibration items the first (highest)
    threshold keeps above it. A failed first test ends the walk, so the first test must be able
    to pass for a good model: by default, the smallest n at which an observed error rate of HALF
    the allowed one (``floor(n (1 - target) / 2)`` errors) passes the bound (153 items at target
    0.95, delta 0.05). ``errors_allowed``: instead, the smallest n at which that many errors pass
    (0 errors: 59 at 0.95 / 0.05)."""
    return _min_start_count(float(target), float(delta), errors_allowed)


@lru_cache(maxsize=64)
def _min_start_count(target: float, delta: float, errors_allowed: int | None) -> int:
    top = 256
    while top <= 1 << 22:  # search windows of doubling size: the answer is small for usual targets
        n = np.arange(1, top)
        e = np.floor(n * (1 - target) / 2) if errors_allowed is None else np.full(len(n), errors_allowed)
        ok = (clopper_pearson_upper(e, n, delta) <= 1 - target) & (e < n)
        if ok.any():
            return int(n[np.argmax(ok)])
        top *= 4
    raise ValueError(f"target {target} cannot be bounded at delta {delta} with < 4M items")


@dataclass
class ThresholdResult:
    """What :func:`select_threshold` found; ``threshold`` None = auto-labeling stays off."""

    threshold: float | None
    target: float
    delta: float
    n_calibration: int
    n_above: int = 0            # calibration items at or above the chosen threshold
    errors_above: float = 0.0   # (expected) errors above it: a count when every label is certain
    upper_error: float = 1.0    # the bound U at the chosen threshold
    tested: int = 0             # thresholds tested (passed ones + the first failure)
    path: list[tuple[float, int, float, float]] = field(default_factory=list)  # (t, n, e, U)

    def as_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "target": self.target, "delta": self.delta,
                "n_calibration": self.n_calibration, "n_above": self.n_above,
                "errors_above": self.errors_above, "upper_error": self.upper_error,
                "tested": self.tested}


def select_threshold(scores: np.ndarray, correct: np.ndarray, target: float = 0.95,
                     delta: float = 0.05, step: int | None = None,
                     errors_allowed_at_start: int | None = None,
                     label_confidence: np.ndarray | None = None) -> ThresholdResult:
    """Fixed-sequence Clopper-Pearson threshold selection (see the module docstring).

    ``scores``: the model's out-of-fold confidence in its label on each calibration item;
    ``correct``: whether that label equals the item's (human) label; ``label_confidence``: the
    probability that each human label is right (None: all certain), which makes an agreement
    count as ``1 - confidence`` of an error, so the bound is against the truth. The grid: the distinct
    scores, descending, starting at the first that keeps :func:`min_start_count` items above it,
    then every ``step`` items (default: n / 50, at least 1) and the lowest score; scores only, so it is fixed before
    the labels are looked at.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    correct = np.asarray(correct, dtype=bool).ravel()
    if scores.shape != correct.shape:
        raise ValueError(f"scores and correct differ in length: {len(scores)} vs {len(correct)}")
    if not 0 < target < 1 or not 0 < delta < 1:
        raise ValueError(f"target and delta must lie in (0, 1), got {target}, {delta}")
    if label_confidence is None:
        item_errors = (~correct).astype(np.float64)
    else:
        confidence = np.asarray(label_confidence, dtype=np.float64).ravel()
        if confidence.shape != correct.shape:
            raise ValueError(f"label_confidence and correct differ in length: {len(confidence)} vs {len(correct)}")
        if not np.isfinite(confidence).all() or (confidence < 0).any() or (confidence > 1).any():
            raise ValueError("label_confidence must lie in [0, 1]")
        item_errors = np.where(correct, 1.0 - confidence, 1.0)
    n_total = len(scores)
    result = ThresholdResult(None, target, delta, n_total)
    start = min_start_count(target, delta, errors_allowed_at_start)
    if n_total < start:
        return result
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    errors_cum = np.cumsum(item_errors[order])
    step = step or max(1, n_total // 50)
    # candidate cut positions: n items above; a cut must not split tied scores, so move each to
    # the end of its tie group (t = the score there, every item with score >= t is counted)
    wanted = np.unique(np.append(np.arange(start, n_total + 1, step), n_total))
    last_of_tie = np.searchsorted(-sorted_scores, -sorted_scores[wanted - 1], side="right")
    counts = np.unique(last_of_tie)
    thresholds = sorted_scores[counts - 1]
    errors = errors_cum[counts - 1]
    upper = clopper_pearson_upper(errors, counts, delta)
    passed = upper <= 1 - target
    n_pass = int(np.argmin(passed)) if not passed.all() else len(passed)  # walk stops at 1st failure
    result.tested = min(n_pass + 1, len(passed))
    result.path = [(float(t), int(n), float(e), float(u)) for t, n, e, u in
                   zip(thresholds[:result.tested], counts[:result.tested], errors[:result.tested],
                       upper[:result.tested])]
    if n_pass == 0:
        return result
    j = n_pass - 1
    result.threshold = float(thresholds[j])
    result.n_above, result.errors_above = int(counts[j]), round(float(errors[j]), 6)
    result.upper_error = float(upper[j])
    return result


def audit_mask(n: int, fraction: float = 0.05, rng: np.random.Generator | None = None) -> np.ndarray:
    """Which of ``n`` auto-labeled items go to humans as audits: a uniformly random
    ``fraction`` (rounded up, so any auto-labeled batch gets at least one audit)."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"audit fraction must lie in [0, 1], got {fraction}")
    rng = rng or np.random.default_rng()
    k = min(n, math.ceil(fraction * n))
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=k, replace=False)] = True
    return mask


@dataclass
class AuditCheck:
    """:func:`check_audits`' verdict: ``keep_on`` False = switch auto-labeling off."""

    keep_on: bool
    n_audits: int
    correct: int
    accuracy: float
    lower: float   # one-sided (1 - delta) lower bound on the auto-labels' accuracy
    upper: float   # one-sided (1 - delta) upper bound


def check_audits(correct: np.ndarray, target: float = 0.95, delta: float = 0.05) -> AuditCheck:
    """Re-check the guarantee as random audits arrive. Auto-labeling is switched off when the
    audits show, at level ``delta``, that the auto-labels' accuracy is below ``target``: the
    one-sided Clopper-Pearson UPPER bound on their accuracy falls below the target. (Requiring
    the lower bound to stay above the target instead would switch off after any small audit
    batch: 20 perfect audits have a lower bound of 0.86.)"""
    correct = np.asarray(correct, dtype=bool).ravel()
    n, k = len(correct), int(correct.sum())
    if n == 0:
        return AuditCheck(True, 0, 0, float("nan"), 0.0, 1.0)
    upper = float(1.0 - clopper_pearson_lower(n - k, n, delta)) if k < n else 1.0
    lower = float(clopper_pearson_lower(k, n, delta))
    return AuditCheck(upper >= target, n, k, k / n, lower, upper)
