"""EBCC's evidence lower bound and its restarts: the bound is a bound, VB only raises it, and the
kept start is the best one."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.special import gammaln, logsumexp

import goldlabel.quality as q
from goldlabel.quality import from_codes


def perfect_annotators(truth, per_item: int, n_labels: int = 3) -> q.Answers:
    truth = np.asarray(truth)
    items = np.repeat(np.arange(len(truth)), per_item)
    annotators = np.tile(np.arange(per_item), len(truth))
    return from_codes(items, annotators, truth[items], n_labels=n_labels)


def test_one_perfect_annotator_keeps_the_rare_class():
    answers = perfect_annotators([0, 0, 0, 0, 1], per_item=1)
    model = q.EBCC().fit(answers)
    assert model.label_codes_.tolist() == [0, 0, 0, 0, 1]
    # the bound alone prefers a start that folds item 4 into a sub-type of class 0: using one
    # class fewer costs one log(M) fewer relabelings; the relabeling term undoes that bias
    assert model.start_elbos_.max() > model.elbo_
    for seed in range(5):
        assert q.EBCC(random_state=seed).fit(answers).label_codes_.tolist() == [0, 0, 0, 0, 1]


@pytest.mark.parametrize("n_labels,max_length", [(2, 5), (3, 4)])
def test_perfect_annotators_reproduce_every_short_truth(n_labels, max_length):
    for length in range(1, max_length + 1):
        for truth in itertools.product(range(n_labels), repeat=length):
            for per_item in (1, 2):
                model = q.EBCC().fit(perfect_annotators(truth, per_item, n_labels))
                assert model.label_codes_.tolist() == list(truth), (truth, per_item)


@pytest.mark.parametrize("n_subtypes", [1, 3])
def test_bound_never_decreases_over_iterations(simulate, n_subtypes):
    answers, _ = simulate(n_items=60, n_annotators=6, per_item=3, seed=8)
    bounds = np.array([
        q.EBCC(n_subtypes=n_subtypes, n_restarts=1, n_iter=n_iter, tol=0.0).fit(answers).start_elbos_
        for n_iter in range(1, 40)
    ])  # one column per start: the IBCC start, then the random split
    assert np.isfinite(bounds).all()
    slack = 1e-8 * np.abs(bounds[:-1])
    assert (np.diff(bounds, axis=0) >= -slack).all()
    assert (bounds[-1] - bounds[0] > 1.0).any()  # the bound moved: the check is not vacuous


def log_evidence(answers: q.Answers, n_subtypes: int, model: q.EBCC) -> float:
    """``log p(labels)`` under EBCC's model, summing every (class, sub-type) of every item."""
    n_labels, n_states = answers.n_labels, answers.n_labels * n_subtypes
    row_prior = model.off_diagonal_concentration + (
        model.diagonal_concentration - model.off_diagonal_concentration) * np.eye(n_labels)

    def log_beta(x):
        return gammaln(x).sum(axis=-1) - gammaln(x.sum(axis=-1))

    sub_prior = np.full(n_subtypes, model.subtype_concentration / n_subtypes)
    class_prior = np.full(n_labels, model.class_concentration)
    terms = []
    for states in itertools.product(range(n_states), repeat=answers.n_items):
        states = np.array(states)
        classes, subtypes = states // n_subtypes, states % n_subtypes
        term = log_beta(class_prior + np.bincount(classes, minlength=n_labels)) - log_beta(class_prior)
        for k in range(n_labels):
            counts = np.bincount(subtypes[classes == k], minlength=n_subtypes)
            term += log_beta(sub_prior + counts) - log_beta(sub_prior)
        counts = np.zeros((answers.n_annotators, n_states, n_labels))
        np.add.at(counts, (answers.annotator, states[answers.item], answers.label), 1)
        rows = np.repeat(row_prior, n_subtypes, axis=0)
        term += (log_beta(rows + counts) - log_beta(rows)).sum()
        terms.append(term)
    return float(logsumexp(terms))


@pytest.mark.parametrize("n_subtypes", [1, 2])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bound_stays_below_the_exact_log_evidence(n_subtypes, seed):
    rng = np.random.default_rng(seed)
    items = np.concatenate([np.arange(4), rng.integers(0, 4, 4)])
    answers = from_codes(items, rng.integers(0, 3, len(items)), rng.integers(0, 2, len(items)), n_labels=2)
    model = q.EBCC(n_subtypes=n_subtypes).fit(answers)
    exact = log_evidence(answers, n_subtypes, model)
    assert model.elbo_ <= exact
    # mean field gives up at most the sub-type relabelings and a little more per item
    assert model.elbo_ > exact - 4.0


def test_restarts_keep_the_best_start(simulate):
    answers, _ = simulate(n_items=80, n_annotators=8, per_item=3, seed=11)
    many = q.EBCC(n_subtypes=4, n_restarts=4, random_state=3).fit(answers)
    assert len(many.start_elbos_) == len(many.start_scores_) == 5
    best = int(np.argmax(many.start_scores_))
    assert many.elbo_ == many.start_elbos_[best]
    assert len(set(many.start_elbos_.round(6))) > 1  # the starts end in different optima
    # the random splits are drawn in turn from one generator: fewer restarts see a prefix, and
    # keep a fit no better than the one kept from all of them
    for n_restarts in range(4):
        fewer = q.EBCC(n_subtypes=4, n_restarts=n_restarts, random_state=3).fit(answers)
        np.testing.assert_array_equal(fewer.start_scores_, many.start_scores_[:n_restarts + 1])
        assert many.start_scores_.max() >= fewer.start_scores_.max()


def test_fixed_random_state_gives_the_same_fit(simulate):
    answers, _ = simulate(n_items=80, seed=12)
    first = q.EBCC(n_subtypes=3, random_state=5).fit(answers)
    second = q.EBCC(n_subtypes=3, random_state=5).fit(answers)
    np.testing.assert_array_equal(first.probas_, second.probas_)
    np.testing.assert_array_equal(first.start_elbos_, second.start_elbos_)
    assert first.elbo_ == second.elbo_


def test_bcc_runs_once_and_reports_its_bound(simulate):
    answers, _ = simulate(n_items=60, seed=13)
    model = q.BCC().fit(answers)
    assert len(model.start_elbos_) == 1 and model.elbo_ == model.start_elbos_[0]
    assert np.isfinite(model.elbo_) and model.elbo_ < 0


def test_negative_restarts_are_rejected():
    with pytest.raises(ValueError, match="n_restarts must be >= 0"):
        q.EBCC(n_restarts=-1).fit(perfect_annotators([0, 1], per_item=1))
