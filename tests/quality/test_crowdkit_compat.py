"""The drop-in promise: crowd-kit's own test cases (Toloka/crowd-kit ``tests/aggregation``,
``tests/metrics``, ``tests/postprocessing``), rewritten in our form, run against
``goldlabel.quality`` with crowd-kit's arguments, attribute names and result shapes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal, assert_series_equal

import goldlabel.quality as q
from goldlabel.quality.utils import evaluate, evaluate_equal, get_accuracy

# crowd-kit's "toy YSDA" set: 5 workers, 5 tasks, yes/no
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
TOY_TRUTH = pd.Series(["yes", "yes", "no", "yes", "no"], pd.Index([f"t{i}" for i in range(1, 6)], name="task"),
                      name="agg_label")
TOY_GOLD = pd.Series({"t1": "yes", "t2": "yes"})


@pytest.fixture
def toy() -> pd.DataFrame:
    return TOY.copy()


def _zero_initial_error() -> pd.DataFrame:
    rows = pd.MultiIndex.from_product([["w1", "w2", "w3", "w4", "w5"], ["yes", "no"]], names=["worker", "label"])
    return pd.DataFrame(np.zeros((len(rows), 2)), index=rows, columns=["no", "yes"])


def _overlap_frame(overlap: int) -> pd.DataFrame:
    # every worker says "no" on exactly one of three tasks: answers carry no information
    workers = np.repeat(np.arange(overlap), 3)
    tasks = np.tile(np.arange(3), overlap)
    labels = np.where((workers - tasks) % 3 != 0, "yes", "no")
    return pd.DataFrame({"task": tasks, "worker": workers, "label": labels})


# ----------------------------------------------------------------- defects (issue 15, item 4)


@pytest.mark.parametrize("model", [q.DawidSkene, q.OneCoinDawidSkene, q.MACE, q.CommunityDawidSkene,
                                   q.RobustDawidSkene, q.GLAD])
def test_zero_iterations_give_the_starting_posteriors(model, toy):
    # was UnboundLocalError: the parameters were only assigned inside the EM loop
    fitted = model(n_iter=0).fit(toy)
    majority = q.MajorityVote().fit(toy)
    assert fitted.n_iter_ == 0
    assert set(fitted.labels_.index) == set(TOY_TRUTH.index)
    if model is not q.RobustDawidSkene:  # robust averages vote members in
        assert_frame_equal(fitted.probas_, majority.probas_)


@pytest.mark.parametrize("overlap", [3, 300, 30000])
def test_dawid_skene_keeps_uninformative_answers_uninformative(overlap):
    # was [0, 1] at overlap 30,000: a flat pseudo-count on every confusion cell made each
    # uninformative worker slightly informative, and 30,000 of them decisive
    ds = q.DawidSkene(20).fit(_overlap_frame(overlap))
    expected = pd.Series([1 / 3, 2 / 3], pd.Index(["no", "yes"], name="label"), name="prior")
    assert_series_equal(ds.priors_, expected, atol=0.005)
    assert np.allclose(ds.probas_.to_numpy(), [[1 / 3, 2 / 3]] * 3, atol=0.005)
    assert (ds.labels_ == "yes").all()


# ------------------------------------------------------------------ DawidSkene's crowd-kit API


@pytest.mark.parametrize("strategy", ["addition", "assign", None])
def test_dawid_skene_without_initial_error(strategy, toy):
    ds = q.DawidSkene(n_iter=10, tol=0, initial_error_strategy=strategy)
    assert_series_equal(ds.fit(toy, initial_error=None).labels_.sort_index(), TOY_TRUTH)


def test_dawid_skene_zero_initial_error_adds_nothing_and_cannot_be_assigned(toy):
    ds = q.DawidSkene(n_iter=10, tol=0, initial_error_strategy="addition")
    assert_series_equal(ds.fit(toy, initial_error=_zero_initial_error()).labels_.sort_index(), TOY_TRUTH)
    with pytest.raises(ValueError, match="sum of each worker's error matrix in initial_error should be 1.0"):
        q.DawidSkene(n_iter=10, initial_error_strategy="assign").fit(toy, initial_error=_zero_initial_error())
    with pytest.raises(ValueError, match="cannot find 2 annotators"):
        q.DawidSkene(n_iter=10, initial_error_strategy="assign").fit(toy, initial_error=_zero_initial_error()[:6])


def test_dawid_skene_initial_error_steers_the_result(toy):
    # t2: w1, w2, w3 say yes, w4 and w5 say no; make w4 and w5 trusted and the others not
    initial = _zero_initial_error()
    for worker in ("w4", "w5"):
        initial.loc[(worker, "no"), "no"] = 99
        initial.loc[(worker, "yes"), "yes"] = 99
    for worker in ("w1", "w2", "w3"):
        initial.loc[(worker, "yes"), "no"] = 99
        initial.loc[(worker, "no"), "yes"] = 99
    ds = q.DawidSkene(n_iter=10, tol=0, initial_error_strategy="addition").fit(toy, initial_error=initial)
    assert ds.labels_["t2"] == "no"


def test_dawid_skene_inner_state_after_zero_iterations(toy):
    initial = _zero_initial_error()
    initial.loc[("w2", "yes"), "no"] = 1.1
    initial.loc[("w2", "yes"), "yes"] = 0.9
    initial.loc[("w2", "no"), "yes"] = 0.4
    initial.loc[("w2", "no"), "no"] = 0.6
    ds = q.DawidSkene(n_iter=0, tol=0, initial_error_strategy="addition").fit(toy, initial_error=initial)
    w2 = ds.errors_.loc["w2"]
    assert np.allclose([w2.loc["yes", "no"], w2.loc["yes", "yes"], w2.loc["no", "yes"], w2.loc["no", "no"]],
                       [0.5, 0.75, 0.25, 0.5])
    rng = np.random.default_rng(42)
    given = _zero_initial_error() + rng.integers(1, 100, size=(10, 2))
    given = given / given.groupby("worker", sort=False).sum()
    assigned = q.DawidSkene(n_iter=0, initial_error_strategy="assign").fit(toy, initial_error=given)
    assert_frame_equal(given, assigned.errors_)


def test_dawid_skene_gold_and_result_shapes(toy):
    for n_iter in (0, 1, 2):
        ds = q.DawidSkene(n_iter).fit(toy, TOY_GOLD)
        assert (ds.probas_.loc[["t1", "t2"], "yes"] == 1.0).all()
        assert np.allclose(ds.probas_.sum(axis=1), 1.0)
    ds = q.DawidSkene(n_iter=10, tol=0).fit(toy, true_labels=TOY_GOLD)
    assert_series_equal(ds.labels_.sort_index(), TOY_TRUTH)
    assert ds.errors_.index.names == ["worker", "label"] and list(ds.errors_.columns) == ["no", "yes"]
    assert np.allclose(ds.errors_.groupby("worker").sum(), 1.0)
    assert ds.priors_.name == "prior" and ds.priors_.index.name == "label"
    assert len(ds.loss_history_) == ds.n_iter_
    # first-appearance row order, as crowd-kit
    assert list(ds.labels_.index) == ["t1", "t2", "t3", "t4", "t5"]
    assert list(ds.skills_.index) == ["w1", "w2", "w3", "w4", "w5"]


def test_empty_frame_gives_empty_results():
    ds = q.DawidSkene(10).fit(pd.DataFrame([], columns=["task", "worker", "label"]))
    assert ds.probas_.empty and ds.errors_.empty
    assert_series_equal(ds.priors_, pd.Series(dtype=float, name="prior"))
    assert_series_equal(ds.labels_, pd.Series(dtype=float, name="agg_label"))


@pytest.mark.parametrize("missing", ["task", "worker", "label"])
@pytest.mark.parametrize("model", [q.MajorityVote, q.Wawa, q.DawidSkene])
def test_missing_column_is_a_key_error_with_a_clear_message(model, missing):
    frame = TOY.drop(columns=[missing])
    with pytest.raises(KeyError, match=f"missing column .*{missing}"):
        model().fit_predict(frame)
    with pytest.raises(ValueError, match="found columns"):
        model().fit_predict_proba(frame)


# ------------------------------------------------------------------------------ other estimators


@pytest.mark.parametrize("method", ["vb", "em", "map"])
def test_mace_crowdkit_arguments_and_attributes(method, toy):
    mace = q.MACE(n_restarts=3, n_iter=20, method=method, random_state=0).fit(toy)
    assert evaluate(TOY_TRUTH.to_frame("label"), mace.labels_.to_frame("label"), evaluate_func=evaluate_equal) >= 0.8
    assert mace.spamming_.shape == (5, 2) and np.allclose(mace.spamming_.sum(axis=1), 1.0)
    assert mace.thetas_.shape == (5, 2) and np.allclose(mace.thetas_.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="method must be one of"):
        q.MACE(method="gibbs").fit(toy)


def test_get_accuracy_per_worker(toy):
    accuracy = get_accuracy(toy, TOY_TRUTH, by="worker")
    assert accuracy.to_dict() == pytest.approx({"w1": 0.4, "w2": 1.0, "w3": 1.0, "w4": 0.6, "w5": 0.6})
