"""Multi-choice: per-label binary Dawid-Skene on simulated annotators."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from goldlabel.quality.multi_choice import (
    MultiChoiceDawidSkene,
    MultiChoiceMajorityVote,
    encode_multi_choice,
)


def simulate(n_items=600, n_labels=5, n_annotators=40, per_item=5, seed=0):
    rng = np.random.default_rng(seed)
    truth = rng.random((n_items, n_labels)) < 0.3
    sens = rng.uniform(0.5, 0.95, (n_annotators, 1))
    spec = rng.uniform(0.7, 0.99, (n_annotators, 1))
    spammer = rng.random(n_annotators) < 0.2
    item = np.repeat(np.arange(n_items), per_item)
    annotator = np.argsort(rng.random((n_items, n_annotators)), axis=1)[:, :per_item].ravel()
    z = truth[item]
    noise = rng.random(z.shape)
    selected = np.where(z, noise < sens[annotator], noise > spec[annotator])
    selected[spammer[annotator]] = rng.random((spammer[annotator].sum(), n_labels)) < 0.5
    return item, annotator, selected, truth


def test_encode_multi_choice():
    selected, vocabulary = encode_multi_choice([["b", "a"], [], ["c"]])
    assert vocabulary.tolist() == ["a", "b", "c"]
    assert selected.tolist() == [[True, True, False], [False, False, False], [False, False, True]]
    with pytest.raises(ValueError, match="'z' is not in labels"):
        encode_multi_choice([["z"]], labels=["a"])


def test_beats_per_label_majority_vote():
    # measured: two-coin 0.944, one-coin 0.908, majority vote 0.916 (seed 0)
    item, annotator, selected, truth = simulate()
    two = MultiChoiceDawidSkene().fit(item, annotator, selected)
    vote = MultiChoiceMajorityVote().fit(item, annotator, selected)
    assert (two.labels_ == truth).mean() > 0.93
    assert (two.labels_ == truth).mean() > (vote.labels_ == truth).mean() + 0.015
    one = MultiChoiceDawidSkene(coin="one").fit(item, annotator, selected)
    assert (one.labels_ == truth).mean() > 0.89
    assert two.probas_.shape == truth.shape
    assert np.all((two.probas_ >= 0) & (two.probas_ <= 1))
    assert two.sensitivities_.shape == (40, 5)


def test_perfect_annotators_reproduce_truth():
    item, annotator, _, truth = simulate(n_items=100, per_item=3, seed=2)
    model = MultiChoiceDawidSkene().fit(item, annotator, truth[item])
    assert np.array_equal(model.labels_, truth)


@settings(max_examples=15, deadline=None)
@given(st.permutations(range(5)), st.integers(0, 100))
def test_permuting_labels_permutes_output(perm, seed):
    item, annotator, selected, _ = simulate(n_items=60, n_annotators=10, per_item=3, seed=seed)
    perm = np.asarray(perm)
    a = MultiChoiceDawidSkene().fit(item, annotator, selected)
    b = MultiChoiceDawidSkene().fit(item, annotator, selected[:, perm])
    assert b.probas_ == pytest.approx(a.probas_[:, perm], abs=1e-6)


def test_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        MultiChoiceDawidSkene().fit([0], [0], [True])
    with pytest.raises(ValueError, match="coin"):
        MultiChoiceDawidSkene(coin="three").fit([0], [0], [[True]])
