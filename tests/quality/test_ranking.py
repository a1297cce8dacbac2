"""Bradley-Terry and CrowdBT on simulated comparisons with known scores."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from goldlabel.quality.ranking import BradleyTerry, CrowdBT, rankings_to_comparisons


def simulate(n_candidates=200, n_annotators=30, n_comparisons=6000, adversarial=0.3, seed=0):
    rng = np.random.default_rng(seed)
    score = rng.normal(0, 1.5, n_candidates)
    eta = np.where(rng.random(n_annotators) < adversarial, 0.2, 0.95)
    annotator = rng.integers(0, n_annotators, n_comparisons)
    i = rng.integers(0, n_candidates, n_comparisons)
    j = (i + rng.integers(1, n_candidates, n_comparisons)) % n_candidates
    i_wins = rng.random(n_comparisons) < 1 / (1 + np.exp(score[j] - score[i]))
    i_wins ^= rng.random(n_comparisons) > eta[annotator]
    return annotator, np.where(i_wins, i, j), np.where(i_wins, j, i), score, eta


def test_rankings_to_comparisons():
    annotator, winner, loser = rankings_to_comparisons([0, 1], [[3, 1, 2], [2, 0, -1]])
    pairs = set(zip(annotator.tolist(), winner.tolist(), loser.tolist()))
    assert pairs == {(0, 3, 1), (0, 3, 2), (0, 1, 2), (1, 2, 0)}


def test_two_candidates_maximum_likelihood():
    # 3 wins to 1: the MLE of gamma_0 / gamma_1 is 3
    model = BradleyTerry(prior=0.0).fit([0, 0, 0, 0], [0, 0, 0, 1], [1, 1, 1, 0])
    assert model.scores_[0] - model.scores_[1] == pytest.approx(np.log(3), abs=1e-6)
    assert model.predict_proba([0], [1])[0] == pytest.approx(0.75, abs=1e-6)
    assert model.ranking_.tolist() == [0, 1]


def test_prior_keeps_unbeaten_candidates_finite():
    model = BradleyTerry().fit([0, 0], [0, 1], [1, 2])
    assert np.all(np.isfinite(model.scores_))
    assert model.ranking_.tolist() == [0, 1, 2]


def test_bradley_terry_recovers_scores_without_noise():
    annotator, winner, loser, score, _ = simulate(adversarial=0.0)
    model = BradleyTerry().fit(annotator, winner, loser, n_candidates=len(score))
    assert spearmanr(model.scores_, score)[0] > 0.95


def test_crowd_bt_beats_bradley_terry_with_adversaries():
    # measured (seed 0): Bradley-Terry 0.865, CrowdBT 0.961 Spearman; reliabilities r = 0.995
    annotator, winner, loser, score, eta = simulate()
    bt = BradleyTerry().fit(annotator, winner, loser, n_candidates=len(score))
    crowd = CrowdBT().fit(annotator, winner, loser, n_candidates=len(score))
    assert spearmanr(crowd.scores_, score)[0] > 0.95
    assert spearmanr(crowd.scores_, score)[0] > spearmanr(bt.scores_, score)[0] + 0.05
    assert np.corrcoef(crowd.reliabilities_, eta)[0, 1] > 0.95
    assert np.all(crowd.sd_ > 0)


def test_bad_input():
    with pytest.raises(ValueError, match="same candidate"):
        BradleyTerry().fit([0], [1], [1])
    with pytest.raises(ValueError, match="same length"):
        CrowdBT().fit([0, 1], [1], [0])
