"""Active learning, the model as an annotator, and the confident-learning label audit."""

from __future__ import annotations

import time

import numpy as np
import pytest

from goldlabel import quality
from goldlabel.models import (
    UncertaintyDiversity,
    add_model_answers,
    cold_start,
    entropy_uncertainty,
    find_label_issues,
    human_answer_counts,
    k_center_greedy,
    margin_uncertainty,
    model_votes,
)


def test_uncertainty_measures():
    p = np.array([[0.5, 0.5], [0.9, 0.1], [1.0, 0.0]])
    np.testing.assert_allclose(margin_uncertainty(p), [1.0, 0.2, 0.0])
    np.testing.assert_allclose(entropy_uncertainty(p)[[0, 2]], [1.0, 0.0], atol=1e-9)


def test_k_center_covers_clusters_and_cold_start_is_diverse():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(8, 16)) * 10
    cluster = rng.integers(8, size=4000)
    X = centers[cluster] + rng.normal(size=(4000, 16))
    picked = k_center_greedy(X, 8)
    assert len(set(cluster[picked].tolist())) == 8  # one per cluster: random picks rarely do
    start = cold_start(X, 8, np.random.default_rng(1))
    assert len(set(cluster[start].tolist())) == 8
    # already-covered clusters are not picked again
    covered = X[np.isin(cluster, [0, 1, 2, 3])][:50]
    again = k_center_greedy(X, 4, already=covered)
    assert set(cluster[again].tolist()) == {4, 5, 6, 7}


def test_policy_prefers_uncertain_items_then_spreads_them():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(5000, 32)).astype(np.float32)
    p1 = rng.random(5000)
    probas = np.stack([p1, 1 - p1], axis=1)
    policy = UncertaintyDiversity(pool_factor=5, min_pool=200)
    chosen = policy.select(probas, X, 40, rng=rng)
    assert len(set(chosen.tolist())) == 40
    threshold = np.sort(margin_uncertainty(probas))[-200]
    assert (margin_uncertainty(probas)[chosen] >= threshold).all()
    assert len(policy.select(None, X, 10, rng=rng)) == 10  # cold start
    with pytest.raises(ValueError, match="margin"):
        UncertaintyDiversity(measure="random")


def test_selection_over_a_large_project_is_fast():
    """200k x 384 here (1M is benchmarked in docs/models.md): seconds, not minutes."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200_000, 384), dtype=np.float32)
    p1 = rng.random(200_000)
    probas = np.stack([p1, 1 - p1], axis=1)
    started = time.perf_counter()
    chosen = UncertaintyDiversity().select(probas, X, 100, rng=rng)
    assert time.perf_counter() - started < 10 and len(chosen) == 100


def test_model_answers_only_where_humans_answered():
    # 3 items: items 0 and 1 have human answers, item 2 none
    answers = quality.encode([0, 0, 1], ["ann", "bob", "ann"], ["a", "b", "b"], label_order=["a", "b"])
    answers = quality.Answers(answers.item, answers.annotator, answers.label,
                              np.array([0, 1, 2]), answers.annotator_ids, answers.label_ids)
    probas = np.array([[0.95, 0.05], [0.3, 0.7], [0.99, 0.01]])
    combined, codes = add_model_answers(answers, probas)
    model_rows = np.isin(combined.annotator, codes)
    assert sorted(combined.item[model_rows].tolist()) == [0, 1]  # never item 2
    label, band = model_votes(probas)
    assert label.tolist() == [0, 1, 0] and band.tolist() == [3, 1, 5]
    assert combined.annotator_ids[codes[3]] == "model@0.90"
    np.testing.assert_array_equal(human_answer_counts(combined, codes), [2, 1, 0])
    fitted = quality.DawidSkene().fit(combined)
    assert np.asarray(fitted.confusions_).shape[0] == combined.n_annotators
    with pytest.raises(ValueError, match="probas must be"):
        add_model_answers(answers, probas[:2])


def test_model_band_confusions_are_learned_from_human_answers():
    """A simulated crowd of 3 humans (80% right) and a model that is right 97% when sure and
    55% when not: DS learns the two bands apart, from the items humans answered."""
    rng = np.random.default_rng(4)
    n = 3000
    truth = rng.integers(2, size=n)
    items = np.repeat(np.arange(n), 3)
    right = rng.random(3 * n) < 0.8
    labels = np.where(right, truth[items], 1 - truth[items])
    answers = quality.from_codes(items, rng.integers(30, size=3 * n), labels, n_items=n,
                                 n_annotators=30, n_labels=2)
    sure = rng.random(n) < 0.5
    model_right = np.where(sure, rng.random(n) < 0.97, rng.random(n) < 0.55)
    model_label = np.where(model_right, truth, 1 - truth)
    confidence = np.where(sure, 0.995, 0.65)
    probas = np.zeros((n, 2))
    probas[np.arange(n), model_label] = confidence
    probas[np.arange(n), 1 - model_label] = 1 - confidence
    combined, codes = add_model_answers(answers, probas)
    fitted = quality.DawidSkene().fit(combined)
    confusions = np.asarray(fitted.confusions_)
    sure_accuracy = np.diagonal(confusions[codes[5]]).mean()
    unsure_accuracy = np.diagonal(confusions[codes[1]]).mean()
    assert sure_accuracy > 0.93 and 0.45 < unsure_accuracy < 0.7


def test_confident_learning_finds_flipped_labels():
    rng = np.random.default_rng(5)
    n = 2000
    truth = rng.integers(3, size=n)
    # out-of-fold probabilities of a decent model: mass 0.8 on the truth, with noise
    probas = rng.dirichlet(np.ones(3) * 0.5, size=n) * 0.3
    probas[np.arange(n), truth] += 0.7
    probas /= probas.sum(axis=1, keepdims=True)
    flipped = rng.random(n) < 0.1
    labels = np.where(flipped, (truth + rng.integers(1, 3, size=n)) % 3, truth)
    for method in ("prune_by_noise_rate", "confident_learning", "both"):
        issues = find_label_issues(labels, probas, method=method)
        precision = flipped[issues.indices].mean()
        recall = flipped[issues.indices].sum() / flipped.sum()
        assert precision > 0.8 and recall > 0.6, (method, precision, recall)
        sc = issues.self_confidence[issues.indices]
        assert (np.diff(sc) >= 0).all()  # ranked: lowest self-confidence first
    assert issues.joint.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown method"):
        find_label_issues(labels, probas, method="nope")


def test_label_error_audit_never_flags_a_label_the_model_prefers():
    # a model under-confident in class 1 (its mean p_1 on items labeled 1 is about 0.4): items
    # labeled 0 at p_1 = 0.42 reach class 1's threshold and enter the confident joint's
    # off-diagonal, although their top class is their label; the count to prune (and the
    # margin ranking) then reaches them
    rng = np.random.default_rng(11)
    n = 3000
    truth = (rng.random(n) < 0.3).astype(np.int64)
    p1 = np.where(truth == 1, rng.uniform(0.2, 0.6, n), rng.uniform(0.0, 0.47, n))
    probas = np.column_stack([1 - p1, p1])
    flipped = rng.random(n) < 0.15
    labels = np.where(flipped, 1 - truth, truth)
    for method in ("prune_by_noise_rate", "confident_learning", "both"):
        issues = find_label_issues(labels, probas, method=method)
        agrees = probas.argmax(axis=1) == labels
        assert not agrees[issues.indices].any(), method
        assert len(issues.indices) > 0
