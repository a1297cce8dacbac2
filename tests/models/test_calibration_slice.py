"""The calibration slice: a keyed, uniform, stable share of the items, and the auto-label
threshold chosen on it alone (labels that active learning chose never move it)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from goldlabel.models import calibration_slice, select_threshold, slice_threshold, slice_unit, taken_earlier

KEY = b"k" * 32


def test_membership_is_uniform_stable_and_keyed():
    ids = np.arange(1, 200_001)
    inside = calibration_slice(ids, KEY, 0.05)
    # about 5% of any id range, each id independently: a two-sided binomial test per block
    for block in np.array_split(inside, 4):
        assert binomtest(int(block.sum()), len(block), 0.05).pvalue > 0.001
    assert (calibration_slice(ids[::-1], KEY, 0.05) == inside[::-1]).all()  # stable, order-free
    other = calibration_slice(ids, b"o" * 32, 0.05)
    assert 0.03 < (other & inside).sum() / inside.sum() < 0.07  # another key: an unrelated slice
    # nested: a larger fraction keeps every item of a smaller one (raising it adds items only)
    assert (calibration_slice(ids, KEY, 0.10)[inside]).all()
    u = slice_unit(ids[:1000], KEY)
    assert u.dtype == np.float64 and (u >= 0).all() and (u < 1).all()
    assert not calibration_slice(ids, KEY, 0.0).any() and calibration_slice(ids, KEY, 1.0).all()
    with pytest.raises(ValueError, match="fraction"):
        calibration_slice(ids, KEY, 1.5)
    with pytest.raises(ValueError, match="key"):
        calibration_slice(ids, b"short", 0.05)


def test_threshold_is_chosen_on_the_slice_only():
    rng = np.random.default_rng(0)
    n = 6000
    ids = np.arange(10_000, 10_000 + n)
    inside = calibration_slice(ids, KEY, 0.3)
    scores = rng.uniform(0.5, 1.0, n)
    # calibrated on the slice: the model is right with probability = its score
    correct = rng.random(n) < scores
    result = slice_threshold(scores, correct, inside, target=0.95, delta=0.05)
    assert result.threshold is not None and result.n_calibration == inside.sum()
    expected = select_threshold(scores[inside], correct[inside], 0.95, 0.05)
    assert result.as_dict() == expected.as_dict()
    # off the slice: items active learning picked, where the model was wrong every time; and
    # then right every time. Neither moves the threshold or its bound.
    for off in (np.zeros(n, dtype=bool), np.ones(n, dtype=bool)):
        moved = np.where(inside, correct, off)
        again = slice_threshold(scores, moved, inside, target=0.95, delta=0.05)
        assert again.as_dict() == result.as_dict()
    # the same data without the slice restriction gives another answer: the test can tell
    everywhere = select_threshold(scores, np.where(inside, correct, True), 0.95, 0.05)
    assert everywhere.threshold != result.threshold
    with pytest.raises(ValueError, match="length"):
        slice_threshold(scores, correct, inside[:-1])


def test_a_later_round_is_bounded_on_what_earlier_rounds_left():
    """An item any earlier round's model scored at or above that round's threshold is taken;
    the rest is what a later round may bound on (the same filter the candidates went through)."""
    scores = np.array([[0.99, 0.80, 0.95, 0.50],
                       [0.70, 0.92, 0.60, 0.50]])
    assert taken_earlier(scores, np.array([0.95, 0.90])).tolist() == [True, True, True, False]
    assert taken_earlier(scores[:1], np.array([0.96])).tolist() == [True, False, False, False]
    assert not taken_earlier(np.zeros((0, 4)), np.zeros(0)).any()
    with pytest.raises(ValueError, match="rounds"):
        taken_earlier(scores, np.array([0.9]))
    # the threshold moves once the taken items leave: here the easy half was taken, and the
    # leftovers, where the model errs more, no longer pass the bound the whole slice passed
    rng = np.random.default_rng(3)
    n = 2000
    s = rng.uniform(0.5, 1.0, n)
    correct = np.where(s > 0.9, True, rng.random(n) < 0.9)
    inside = np.ones(n, dtype=bool)
    whole = slice_threshold(s, correct, inside, target=0.9, delta=0.05)
    left = ~taken_earlier(s[None, :], np.array([0.9]))
    rest = slice_threshold(s, correct, inside & left, target=0.9, delta=0.05)
    assert whole.threshold is not None and rest.threshold is None
