"""The auto-labeling bound: Clopper-Pearson values, fixed-sequence selection, its guarantee
checked empirically by simulation, audits."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from goldlabel.models.autolabel import (
    audit_mask,
    check_audits,
    clopper_pearson_lower,
    clopper_pearson_upper,
    min_start_count,
    select_threshold,
)


def test_clopper_pearson_matches_its_definition():
    # the upper bound u solves P(Binomial(n, u) <= e) = delta
    for e, n in [(0, 10), (3, 50), (10, 200), (49, 50)]:
        u = float(clopper_pearson_upper(e, n, 0.05))
        assert binom.cdf(e, n, u) == pytest.approx(0.05, abs=1e-6)
    assert float(clopper_pearson_upper(0, 59, 0.05)) < 0.05 < float(clopper_pearson_upper(0, 58, 0.05))
    assert float(clopper_pearson_upper(5, 5, 0.05)) == 1.0
    assert float(clopper_pearson_upper(0, 0, 0.05)) == 1.0
    assert float(clopper_pearson_lower(50, 50, 0.05)) == pytest.approx(1 - clopper_pearson_upper(0, 50, 0.05))
    assert min_start_count(0.95, 0.05, 0) == 59
    n = min_start_count(0.95, 0.05, 1)
    assert clopper_pearson_upper(1, n, 0.05) <= 0.05 < clopper_pearson_upper(1, n - 1, 0.05)
    assert min_start_count(0.95, 0.05) == 153


def _true_error_above(t: np.ndarray, shift: float) -> np.ndarray:
    """Scores uniform on [0.5, 1], P(error | s) = (1 - s) / 2 + shift (an under-confident model):
    the exact error rate of the items with score >= t (1 - target = 0.05 at t = 0.8 - 4 shift)."""
    t = np.asarray(t, dtype=float)
    return (1 - t) / 4 + shift


def _simulate(trials: int, n: int, shift: float, rng: np.random.Generator, naive: bool = False):
    violations = chosen = 0
    for _ in range(trials):
        s = rng.uniform(0.5, 1.0, n)
        correct = rng.random(n) >= (1 - s) / 2 + shift
        if naive:  # the point estimate: the lowest threshold whose observed accuracy >= target
            order = np.argsort(-s)
            accuracy = np.cumsum(correct[order]) / np.arange(1, n + 1)
            ok = np.flatnonzero(accuracy >= 0.95)
            ok = ok[ok >= 19]
            t = s[order][ok[-1]] if len(ok) else None
        else:
            t = select_threshold(s, correct, target=0.95, delta=0.05).threshold
        if t is not None:
            chosen += 1
            violations += _true_error_above(t, shift) > 0.05
    return violations / trials, chosen / trials


@pytest.mark.parametrize("shift", [0.0, 0.01])
def test_guarantee_holds_empirically(shift):
    """P(error above the chosen threshold > 1 - target) <= delta, over 400 seeded calibration
    sets; 400 trials put the 0.05 + 3 sigma line at 0.083."""
    rate, chosen = _simulate(400, 2000, shift, np.random.default_rng(7))
    assert chosen > 0.5  # the selection is not vacuous: it picks a threshold most of the time
    assert rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 400), rate


def test_point_estimate_violates_the_target_often():
    """The same simulation with SageMaker-style point estimates: the check above can fail."""
    rate, _ = _simulate(200, 2000, 0.0, np.random.default_rng(7), naive=True)
    assert rate > 0.2


def test_selection_edge_cases():
    rng = np.random.default_rng(0)
    result = select_threshold(rng.random(150), np.ones(150, bool))
    assert result.threshold is None and result.n_calibration == 150  # too few to pass at all
    s = np.linspace(1, 0.5, 400)
    perfect = select_threshold(s, np.ones(400, bool))
    assert perfect.threshold == pytest.approx(0.5) and perfect.n_above == 400
    wrong_at_top = np.ones(400, bool)
    wrong_at_top[:5] = False  # the most confident labels are wrong: the walk stops at once
    assert select_threshold(s, wrong_at_top).threshold is None
    tied = select_threshold(np.ones(300), np.ones(300, bool))
    assert tied.threshold == 1.0 and tied.n_above == 300
    with pytest.raises(ValueError, match="differ in length"):
        select_threshold(s, np.ones(3, bool))


def test_audits():
    mask = audit_mask(101, 0.05, np.random.default_rng(1))
    assert mask.sum() == 6
    assert check_audits(np.ones(20, bool)).keep_on
    assert check_audits(np.array([True] * 15 + [False] * 5)).keep_on is False  # 75% < 95% clearly
    few = check_audits(np.array([True, False]))
    assert few.keep_on and few.n_audits == 2  # one miss in two is no evidence
    assert check_audits(np.zeros(0, bool)).keep_on


def test_uncertain_labels_count_toward_the_error():
    """Against the truth, not the crowd: a model that agrees with every calibration label still
    errs where the labels do. Labels right with probability 0.9 make each agreement 0.1 of an
    error, so no threshold passes a 0.95 target, though the agreement is perfect; certain labels
    (confidence 1) give the old bound exactly; a disagreement counts one whole error."""
    s = np.linspace(1, 0.5, 400)
    agree = np.ones(400, bool)
    assert select_threshold(s, agree).threshold == pytest.approx(0.5)
    noisy = select_threshold(s, agree, label_confidence=np.full(400, 0.9))
    assert noisy.threshold is None
    assert noisy.path[0][2] == pytest.approx(0.1 * noisy.path[0][1])  # expected errors at the first cut
    certain = select_threshold(s, agree, label_confidence=np.ones(400))
    assert certain.as_dict() == select_threshold(s, agree).as_dict()
    # a few uncertain labels at the bottom only: the threshold stops above them
    conf = np.ones(400)
    conf[300:] = 0.5
    partial = select_threshold(s, agree, label_confidence=conf)
    assert partial.threshold is not None and partial.n_above < 400
    assert partial.errors_above == pytest.approx(0.5 * max(partial.n_above - 300, 0))
    wrong = agree.copy()
    wrong[200] = False
    mixed = select_threshold(s, wrong, label_confidence=np.full(400, 0.99))
    assert mixed.path[-1][2] == pytest.approx(1 + 0.01 * (mixed.path[-1][1] - 1))  # 1 for the miss
    with pytest.raises(ValueError, match="label_confidence"):
        select_threshold(s, agree, label_confidence=np.ones(3))
    with pytest.raises(ValueError, match="label_confidence"):
        select_threshold(s, agree, label_confidence=np.full(400, 1.5))
