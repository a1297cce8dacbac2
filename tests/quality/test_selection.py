"""Model selection by held-out answer likelihood (the default ``auto``) and the confidence
calibration map."""

from __future__ import annotations

import numpy as np
import pytest

from goldlabel.quality import METHODS, SelectedModel, from_codes, resolve_method
from goldlabel.quality.calibration import (
    calibrate_probas,
    calibrated_top,
    fit_platt,
    platt_confidence,
)
from goldlabel.quality.selection import annotator_folds


def simulate(confusions: np.ndarray, n_items: int, per_item: int, seed: int):
    """Answers drawn from per-annotator confusion matrices; truth uniform over the classes."""
    rng = np.random.default_rng(seed)
    n_annotators, n_labels, _ = confusions.shape
    truth = rng.integers(0, n_labels, n_items)
    item = np.repeat(np.arange(n_items), per_item)
    annotator = np.concatenate([rng.choice(n_annotators, per_item, replace=False) for _ in range(n_items)])
    cumulative = confusions[annotator, truth[item]].cumsum(axis=1)
    label = (rng.random(len(item))[:, None] > cumulative).sum(axis=1)
    return from_codes(item, annotator, label, n_items=n_items, n_annotators=n_annotators, n_labels=n_labels), truth


def test_folds_spread_every_annotators_answers_evenly():
    data, _ = simulate(np.tile(np.eye(3) * 0.7 + 0.1, (40, 1, 1)), 300, 5, seed=1)
    folds = annotator_folds(data, 3, seed=0)
    per = np.zeros((data.n_annotators, 3), dtype=int)
    np.add.at(per, (data.annotator, folds), 1)
    assert (per.max(axis=1) - per.min(axis=1) <= 1).all()
    assert np.array_equal(folds, annotator_folds(data, 3, seed=0))  # fixed seed, fixed folds


def test_class_dependent_errors_select_a_confusion_model():
    # every annotator calls class 1 "0" half the time but never errs on class 0: a one-coin
    # model cannot express that, full confusion matrices can
    confusion = np.array([[0.95, 0.05], [0.5, 0.5]])
    data, truth = simulate(np.tile(confusion, (10, 1, 1)), 600, 5, seed=2)
    model = SelectedModel().fit(data)
    assert model.selected_ in {"ds", "ebcc"}, model.scores_
    assert model.scores_[model.selected_] > model.scores_["onecoin"]
    assert (model.label_codes_ == truth).mean() > (METHODS["mv"]().fit(data).label_codes_ == truth).mean()


def test_symmetric_sparse_annotators_do_not_select_map_confusions():
    # 400 annotators with ~7 answers each and symmetric errors: DS's 400 point-estimated full
    # matrices over-fit (over-confident posteriors predict held-out answers worst)
    rng = np.random.default_rng(3)
    accuracy = rng.uniform(0.55, 0.95, 400)
    confusions = ((1 - accuracy) / 3)[:, None, None] * (1 - np.eye(4)) + accuracy[:, None, None] * np.eye(4)
    data, _ = simulate(confusions, 700, 4, seed=3)
    model = SelectedModel().fit(data)
    assert model.selected_ != "ds" and min(model.scores_, key=model.scores_.get) == "ds", model.scores_


def test_selection_rule_is_validated():
    data, _ = simulate(np.tile(np.eye(2) * 0.6 + 0.2, (5, 1, 1)), 20, 3, seed=4)
    with pytest.raises(ValueError, match="unknown candidate"):
        SelectedModel(candidates=("ds", "nope")).fit(data)
    with pytest.raises(ValueError, match="n_folds"):
        SelectedModel(n_folds=1).fit(data)
    assert SelectedModel(candidates=("mv",)).fit(data).selected_ == "mv"


def test_calibrated_probas_keep_the_label_and_sum_to_one():
    rng = np.random.default_rng(5)
    probas = rng.dirichlet(np.ones(4) * 0.3, size=500)
    probas[0] = [1.0, 0.0, 0.0, 0.0]
    out = calibrate_probas(probas, (0.5, 0.2), gold_items=np.array([3]))
    assert np.allclose(out.sum(axis=1), 1.0)
    assert np.array_equal(out.argmax(axis=1)[1:], probas.argmax(axis=1)[1:])
    assert np.array_equal(out[3], probas[3])
    assert out[0, 0] < 1.0 and np.allclose(out[0, 1:], (1 - out[0, 0]) / 3)  # 1.000 is shrunk
    free = out.max(axis=1) > np.sort(out, axis=1)[:, -2] + 1e-9
    expected = platt_confidence(probas.max(axis=1), 0.5, 0.2)
    unfloored = np.isclose(out.max(axis=1), expected)
    assert unfloored.mean() > 0.5 and free.all()
    assert np.array_equal(calibrate_probas(probas, None), probas)
    assert (calibrated_top(np.array([0.5]), np.array([0.5]), 2, (0.1, -3.0)) >= 0.5).all()


def test_platt_fit_recovers_a_known_map():
    rng = np.random.default_rng(6)
    raw = rng.uniform(0.5, 0.999, 20000)
    correct = rng.random(20000) < platt_confidence(raw, 0.6, 0.3)
    a, b = fit_platt(raw, correct)
    assert a == pytest.approx(0.6, abs=0.05) and b == pytest.approx(0.3, abs=0.08)


def test_resolve_method_refuses_unknown_names_and_lists_the_valid_ones():
    assert resolve_method("majority_vote") == "mv"
    with pytest.raises(ValueError, match="valid methods: .*ds.*majority_vote"):
        resolve_method("dawid-skene-typo")


def test_the_default_ships_a_calibration_map_and_applies_it():
    from goldlabel.quality.calibration import CALIBRATION

    assert "auto" in CALIBRATION
    data, _ = simulate(np.tile(np.array([[0.8, 0.2], [0.3, 0.7]]), (8, 1, 1)), 200, 3, seed=7)
    raw = SelectedModel().fit(data)  # raw by default: the map missed its ECE goal (docs/quality.md)
    calibrated = SelectedModel(calibrate=True).fit(data)
    assert calibrated.selected_ == raw.selected_
    assert np.array_equal(calibrated.label_codes_, raw.label_codes_)
    top = raw.probas_.max(axis=1)
    expected = calibrated_top(top, np.sort(raw.probas_, axis=1)[:, -2], 2, CALIBRATION["auto"])
    assert np.allclose(calibrated.probas_.max(axis=1), expected)
    assert not np.allclose(calibrated.probas_, raw.probas_)


def test_stacking_weights_maximise_the_mixture_log_score():
    from goldlabel.quality.selection import stacking_weights

    rng = np.random.default_rng(8)
    # answers drawn from a 0.3 / 0.7 mixture of two candidates' predictive distributions
    first, second = rng.uniform(0.05, 0.95, 4000), rng.uniform(0.05, 0.95, 4000)
    from_second = rng.random(4000) < 0.7
    p_first = np.where(from_second, first * 0.3, first)
    p_second = np.where(from_second, second, second * 0.3)
    predictive = np.column_stack([p_first, p_second, np.full(4000, 1e-3)])
    weights = stacking_weights(predictive)
    assert weights.sum() == pytest.approx(1.0) and weights[2] < 0.01
    score = np.log(predictive @ weights).sum()
    for other in ([0.5, 0.5, 0.0], [0.2, 0.8, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]):
        assert score >= np.log(predictive @ np.array(other)).sum() - 1e-6
    assert np.allclose(stacking_weights(predictive[:, :1]), [1.0])


def test_stacked_default_mixes_the_candidates_posteriors():
    confusion = np.array([[0.9, 0.1], [0.35, 0.65]])
    data, _ = simulate(np.tile(confusion, (12, 1, 1)), 300, 4, seed=9)
    pool = ("mv", "onecoin", "ds_early", "ds")
    model = SelectedModel(candidates=pool, combine="stack").fit(data)
    assert set(model.weights_) <= set(pool) and sum(model.weights_.values()) == pytest.approx(1.0)
    expected = sum(w * METHODS[n]().fit(data).probas_ if n != "ds_early" else
                   w * METHODS["ds"](stopping="crowdkit").fit(data).probas_ for n, w in model.weights_.items())
    assert np.allclose(model.probas_, expected)
    assert np.allclose(model.probas_.sum(axis=1), 1.0)
    assert model.confusions_.shape == (data.n_annotators, 2, 2) and model.prior_.shape == (2,)
    selected = SelectedModel(candidates=pool).fit(data)
    assert len(selected.weights_) == 1 and selected.selected_ in pool
    with pytest.raises(ValueError, match="combine"):
        SelectedModel(combine="vote").fit(data)


def test_crowdkit_stopping_rule_is_validated_and_stops_early():
    from goldlabel.quality import DawidSkene

    data, _ = simulate(np.tile(np.array([[0.8, 0.2], [0.3, 0.7]]), (8, 1, 1)), 200, 3, seed=10)
    with pytest.raises(ValueError, match="stopping"):
        DawidSkene(stopping="never").fit(data)
    early = DawidSkene(stopping="crowdkit").fit(data)
    converged = DawidSkene(tol=1e-12).fit(data)
    assert 1 <= early.n_iter_ < converged.n_iter_
    assert len(early.loss_history_) == early.n_iter_
