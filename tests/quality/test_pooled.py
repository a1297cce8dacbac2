"""Pooled cold-start estimates (goldlabel.quality.pooled): known answers and recovery on
simulated one-coin annotators."""

from __future__ import annotations

import numpy as np
import pytest

from goldlabel.quality.pooled import (
    agreement_accuracy,
    pairwise_agreement,
    rating_noise,
    shrink_accuracy,
)


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("p", [0.55, 0.7, 0.95, 1.0])
def test_agreement_accuracy_inverts_the_one_coin_agreement(k, p):
    agree = p * p + (1 - p) ** 2 / (k - 1)
    assert agreement_accuracy(agree, k) == pytest.approx(p)
    assert agreement_accuracy(p * p, None) == pytest.approx(p)


def test_agreement_below_chance_is_chance():
    assert agreement_accuracy(0.2, 2) == pytest.approx(0.5)
    assert agreement_accuracy(0.0, None) == 0.0


def test_pairwise_agreement_counts_pairs_within_items():
    item = np.array([7, 7, 7, 9, 9, 4])
    code = np.array([1, 1, 0, 2, 2, 0])
    # item 7: 3 pairs, 1 agreeing; item 9: 1 pair, agreeing; item 4: one answer, no pair.
    assert pairwise_agreement(item, code) == (2.0, 4.0, 3.0)
    assert pairwise_agreement(np.array([], np.int64), np.array([], np.int64)) == (0.0, 0.0, 0.0)


def test_recovers_the_accuracy_of_simulated_annotators():
    rng = np.random.default_rng(0)
    k, p, n_items, per_item = 3, 0.8, 4000, 3
    truth = rng.integers(0, k, n_items)
    item = np.repeat(np.arange(n_items), per_item)
    right = rng.random(item.size) < p
    wrong = (truth[item] + rng.integers(1, k, item.size)) % k
    code = np.where(right, truth[item], wrong)
    agreeing, pairs, evidence = pairwise_agreement(item, code)
    assert evidence == n_items * (per_item - 1)
    assert agreement_accuracy(agreeing / pairs, k) == pytest.approx(p, abs=0.02)


def test_shrinkage_weights_each_source_by_its_evidence():
    assert shrink_accuracy(1.0, 0, 0.7, 20) == pytest.approx(0.7)
    assert shrink_accuracy(1.0, 20, 0.7, 20) == pytest.approx(0.85)
    assert shrink_accuracy(0.9, 0, 0.7, 20, gold_correct=10, gold_total=20) == pytest.approx(24 / 40)
    assert shrink_accuracy(0.9, 0, 0.7, 0) == pytest.approx(0.7)


def test_rating_noise_is_the_within_item_sum_of_squares():
    ss, dof = rating_noise(np.array([1, 1, 2, 2, 2, 3]), np.array([4.0, 4.0, 1.0, 2.0, 3.0, 5.0]))
    assert (ss, dof) == (pytest.approx(2.0), 3.0)
