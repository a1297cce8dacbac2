"""crowd-kit's MMSR cases (Toloka/crowd-kit ``tests/aggregation/test_classification_aggregation*.py``,
``data_mmsr.py``) in our form, on the toy YSDA set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal, assert_series_equal

import goldlabel.quality as q
from goldlabel.quality.mmsr import _trimmed_means

# crowd-kit's "toy YSDA" set (as in test_crowdkit_compat.py)
TOY = pd.DataFrame(
    [row.split() for row in (
        "w1 t1 no", "w1 t2 yes", "w1 t3 yes", "w1 t4 yes", "w1 t5 yes",
        "w2 t1 yes", "w2 t2 yes", "w2 t3 no", "w2 t4 yes", "w2 t5 no",
        "w3 t2 yes", "w3 t3 no", "w3 t4 yes", "w3 t5 no",
        "w4 t1 yes", "w4 t2 no", "w4 t3 yes", "w4 t4 yes", "w4 t5 no",
        "w5 t1 no", "w5 t2 no", "w5 t3 no", "w5 t4 yes", "w5 t5 no",
    )],
    columns=["worker", "task", "label"],
)

TASKS = pd.Index(["t1", "t2", "t3", "t4", "t5"], name="task")
LABELS = pd.Series(["yes", "no", "no", "yes", "no"], index=TASKS, name="agg_label")
SKILLS = pd.Series([-0.9486439852160969, 0.9764628672747041, 1.2428113335479982, 0.948643985216097,
                    0.9764628672747041], pd.Index(["w1", "w2", "w3", "w4", "w5"], name="worker"), name="skill")
SCORES = pd.DataFrame([[0.014244720916141606, 0.9857552790838584], [0.6023983861841676, 0.3976016138158324],
                       [1.0, 3.474074997309249e-17], [0.0, 1.0], [1.2968466945188564, -0.2968466945188564]],
                      columns=pd.Index(["no", "yes"], name="label"), index=TASKS)


@pytest.mark.parametrize("method", ["fit_predict", "fit_predict_score"])
def test_mmsr_on_toy(method):
    model = q.MMSR()
    getattr(model, method)(TOY.copy())
    assert_series_equal(model.labels_.sort_index(), LABELS, rtol=1e-5)
    assert_series_equal(model.skills_.sort_index(), SKILLS, rtol=1e-5)
    assert_frame_equal(model.scores_.sort_index(), SCORES, rtol=1e-5)
    # the worker who disagrees with everyone gets a negative weight: an adversary, voted against
    assert model.skills_.idxmin() == "w1"
    assert model.loss_history_[-1] < model.tol


def test_mmsr_predict_applies_the_learned_skills():
    model = q.MMSR().fit(TOY.copy())
    assert_series_equal(model.predict(TOY.copy()).sort_index(), LABELS)
    assert_frame_equal(model.predict_score(TOY.copy()).sort_index(), SCORES, rtol=1e-5)


def test_mmsr_zero_iter():
    model = q.MMSR(n_iter=0).fit(TOY.copy())
    assert model.loss_history_ == []
    assert len(model.labels_.index.difference(TASKS)) == 0


@pytest.mark.parametrize("method", ["fit_predict", "fit_predict_score"])
@pytest.mark.parametrize("missing", ["task", "worker", "label"])
def test_mmsr_missing_column_is_a_key_error(method, missing):
    with pytest.raises(KeyError, match=missing):
        getattr(q.MMSR(), method)(TOY.drop(columns=[missing]))


def test_trimmed_means_drop_f_on_each_side_of_the_current_value():
    values = np.array([[5.0, 1.0, 3.0, 9.0, 7.0, 0.0], [2.0, 4.0, 0.0, 0.0, 0.0, 0.0]])
    observed = np.array([[True] * 5 + [False], [True, True, False, False, False, False]])
    means, kept = _trimmed_means(values, observed, np.array([5.0, 10.0]), 1, 10)
    # row 0: 1 3 5 7 9 around 5: drop 1 and 9 -> mean 5; row 1: 2 4 both below 10, fewer than
    # F=1 above: keep those <= 10 after dropping the smallest -> 4
    assert means.tolist() == [5.0, 4.0]
    assert kept.tolist() == [True, True]
    # F = -1 (a sparse set) keeps only the largest, as crowd-kit's slicing does
    assert _trimmed_means(values, observed, np.array([5.0, 10.0]), -1, 10)[0].tolist() == [9.0, 4.0]
