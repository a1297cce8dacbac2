"""crowd-kit's pairwise cases (Toloka/crowd-kit ``tests/aggregation/test_bt_aggregation.py``) in our
form: BradleyTerry and NoisyBradleyTerry on crowd-kit's (worker, task, left, right, label) frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_series_equal

import goldlabel.quality as q

COLUMNS = ["worker", "task", "left", "right", "label"]
# a beats b, b beats c, a beats c: a strict order
ABC = pd.DataFrame([["w1", "t1", "a", "b", "a"], ["w1", "t2", "b", "c", "b"], ["w1", "t3", "c", "a", "a"]],
                   columns=COLUMNS)
# a beats b, b beats c, c beats a: a cycle, every candidate equal
EQUAL = pd.DataFrame([["w1", "t1", "a", "b", "a"], ["w1", "t2", "b", "c", "b"], ["w1", "t3", "c", "a", "c"]],
                     columns=COLUMNS)
THIRDS = pd.Series([1 / 3, 1 / 3, 1 / 3], index=["a", "b", "c"], name="agg_score")


def test_bradley_terry_empty():
    scores = q.BradleyTerry(n_iter=1).fit(pd.DataFrame([], columns=COLUMNS)).scores_
    assert_series_equal(pd.Series([], dtype=np.float64, name="agg_score"), scores)


@pytest.mark.parametrize(("n_iter", "tol"), [(10, 0), (100500, 1e-5)])
def test_bradley_terry_equal(n_iter, tol):
    assert_series_equal(THIRDS, q.BradleyTerry(n_iter=n_iter, tol=tol).fit(EQUAL).scores_, atol=0.005)


@pytest.mark.parametrize(("n_iter", "expected"), [(0, [1 / 3, 1 / 3, 1 / 3]), (10, [0.934, 0.065, 0.0])])
def test_bradley_terry_step_by_step(n_iter, expected):
    scores = q.BradleyTerry(n_iter=n_iter, tol=0).fit(ABC).scores_
    assert_series_equal(pd.Series(expected, index=["a", "b", "c"], name="agg_score"), scores, atol=0.005)


def test_bradley_terry_converges_to_the_maximum_likelihood_order():
    # unlike crowd-kit 1.4.2, whose tol > 0 stops after the second round whatever the change
    # (it compares the scores with themselves), tol here bounds the real L1 change
    fitted = q.BradleyTerry(n_iter=100500, tol=1e-9).fit(ABC)
    assert fitted.scores_.tolist() == pytest.approx([1.0, 0.0, 0.0], abs=1e-3)
    assert fitted.scores_.sum() == pytest.approx(1.0)
    assert 2 < len(fitted.loss_history_) < 100500
    assert fitted.loss_history_[-1] < 1e-9


def test_bradley_terry_two_candidates_three_to_one():
    frame = pd.DataFrame({"worker": ["w"] * 4, "left": ["x", "x", "y", "x"], "right": ["y", "y", "x", "y"],
                          "label": ["x", "x", "x", "y"]})
    # maximum likelihood: gamma_x / gamma_y = 3
    assert q.BradleyTerry(tol=0).fit_predict(frame).tolist() == pytest.approx([0.75, 0.25])
    # the array path (MAP, prior 0.1 unless given) is unchanged: log-strengths, centred
    arrays = q.BradleyTerry(prior=0.0).fit([0] * 4, [0, 0, 0, 1], [1, 1, 1, 0])
    assert arrays.scores_[0] - arrays.scores_[1] == pytest.approx(np.log(3), abs=1e-6)


@pytest.mark.parametrize(("n_iter", "tol"), [(10, 0), (100500, 1e-5)])
def test_noisy_bradley_terry(n_iter, tol):
    fitted = q.NoisyBradleyTerry(n_iter=n_iter, tol=tol).fit(ABC)
    scores = fitted.scores_
    assert scores.name == "agg_score"
    assert scores.index.equals(pd.Index(["a", "b", "c"], name="label"))
    # crowd-kit pins b at 1.0; with one worker and a > b > c, b's score is not identified (any
    # value between c's and a's fits the answers as well): only the order is
    assert scores["a"] == pytest.approx(1.0, abs=0.005)
    assert scores["c"] == pytest.approx(0.0, abs=0.005)
    assert scores["a"] > scores["b"] > scores["c"]
    assert fitted.skills_.name == "skill"
    assert fitted.biases_.name == "bias"
    assert fitted.skills_.index.equals(pd.Index(["w1"], name="worker"))


def test_noisy_bradley_terry_recovers_the_order():
    rng = np.random.default_rng(0)
    truth = np.linspace(-2.0, 2.0, 8)
    n = 2000
    i = rng.integers(0, 8, n)
    j = (i + rng.integers(1, 8, n)) % 8
    worker = rng.integers(0, 10, n)
    i_wins = rng.random(n) < 1 / (1 + np.exp(truth[j] - truth[i]))
    # workers 0-2 always pick the left candidate
    i_wins = np.where(worker < 3, True, i_wins)
    names = np.array(list("abcdefgh"))
    frame = pd.DataFrame({"worker": worker, "left": names[i], "right": names[j],
                          "label": names[np.where(i_wins, i, j)]})
    fitted = q.NoisyBradleyTerry().fit(frame)
    assert fitted.scores_.index.tolist() == list("abcdefgh")
    assert np.corrcoef(fitted.scores_.to_numpy(), truth)[0, 1] > 0.95
    # the left-pickers: low skill, bias towards the left
    assert fitted.skills_.loc[[0, 1, 2]].max() < fitted.skills_.loc[list(range(3, 10))].min()
    assert fitted.biases_.loc[[0, 1, 2]].min() > 0.9


@pytest.mark.parametrize("model", [q.BradleyTerry, q.NoisyBradleyTerry])
def test_zero_iter(model):
    scores = model(n_iter=0).fit_predict(EQUAL)
    assert len(scores.index.difference(THIRDS.index)) == 0


@pytest.mark.parametrize("model", [q.BradleyTerry, q.NoisyBradleyTerry])
def test_label_must_be_left_or_right(model):
    frame = ABC.copy()
    frame.loc[1, "label"] = "z"
    with pytest.raises(ValueError, match="label 'z' is neither its left 'b' nor its right 'c'"):
        model().fit(frame)


@pytest.mark.parametrize("model", [q.BradleyTerry, q.NoisyBradleyTerry])
@pytest.mark.parametrize("missing", ["left", "right", "label"])
def test_missing_column_is_a_key_error(model, missing):
    with pytest.raises(KeyError, match=missing):
        model().fit(ABC.drop(columns=[missing]))
