"""Agreement metrics against published worked examples (exact values)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from goldlabel.quality.agreement import (
    annotator_agreement,
    cohen_kappa,
    fleiss_kappa,
    item_agreement,
    krippendorff_alpha,
    pairwise_cohen_kappa,
)

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C:
# 4 observers x 12 units, values 1..5, None = missing.
KRIPPENDORFF = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]

# Fleiss' kappa worked example (Wikipedia "Fleiss' kappa"): 10 subjects, 14 raters, 5 classes.
FLEISS = np.array([
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
])


def long_from_table(table):
    item, annotator, label = [], [], []
    for a, row in enumerate(table):
        for u, v in enumerate(row):
            if v is not None:
                item.append(u), annotator.append(a), label.append(v - 1)
    return np.array(item), np.array(annotator), np.array(label)


def long_from_counts(counts):
    item, label = np.nonzero(counts)
    reps = counts[item, label]
    item, label = np.repeat(item, reps), np.repeat(label, reps)
    return item, np.arange(len(item)), label


@pytest.mark.parametrize("level, expected", [
    ("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797),
])
def test_krippendorff_worked_example(level, expected):
    alpha = krippendorff_alpha(*long_from_table(KRIPPENDORFF), level=level, values=np.arange(1, 6))
    assert alpha == pytest.approx(expected, abs=5e-4)


def test_krippendorff_nominal_exact():
    # unrounded value behind the printed .743: D_o = 4/40, D_e = 1 - sum n_c(n_c-1) / (n(n-1))
    alpha = krippendorff_alpha(*long_from_table(KRIPPENDORFF), level="nominal")
    assert alpha == pytest.approx(0.7434210526, abs=1e-9)


def test_fleiss_worked_example():
    assert fleiss_kappa(*long_from_counts(FLEISS)) == pytest.approx(0.20993, abs=1e-5)


def test_cohen_worked_example():
    # Wikipedia "Cohen's kappa": 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no -> 0.4
    a = np.array([0] * 25 + [1] * 25)
    b = np.array([0] * 20 + [1] * 5 + [0] * 10 + [1] * 15)
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    kappa, shared = pairwise_cohen_kappa(
        np.r_[np.arange(50), np.arange(50)], np.r_[np.zeros(50, int), np.ones(50, int)], np.r_[a, b]
    )
    assert kappa[0, 1] == pytest.approx(0.4) and kappa[1, 0] == pytest.approx(0.4)
    assert shared[0, 1] == 50


def test_pairwise_cohen_uses_shared_items_only():
    rng = np.random.default_rng(3)
    item = np.r_[np.arange(40), np.arange(20, 60), np.arange(0, 60, 2)]
    annotator = np.r_[np.zeros(40, int), np.ones(40, int), np.full(30, 2)]
    label = rng.integers(0, 3, len(item))
    kappa, shared = pairwise_cohen_kappa(item, annotator, label)
    for j, k in [(0, 1), (0, 2), (1, 2)]:
        common = np.intersect1d(item[annotator == j], item[annotator == k])
        lj = label[annotator == j][np.searchsorted(item[annotator == j], common)]
        lk = label[annotator == k][np.searchsorted(item[annotator == k], common)]
        assert shared[j, k] == len(common)
        assert kappa[j, k] == pytest.approx(cohen_kappa(lj, lk, n_labels=3))


def test_item_and_annotator_agreement():
    item, annotator, label = long_from_table(KRIPPENDORFF)
    per_item = item_agreement(item, annotator, label)
    assert per_item[0] == 1.0 and per_item[1] == 0.5 and np.isnan(per_item[11])
    per_annotator = annotator_agreement(item, annotator, label)
    assert per_annotator[0] == pytest.approx(22 / 27)
    assert per_annotator.shape == (4,)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="same length"):
        krippendorff_alpha([0, 1], [0], [0, 1])
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha([0, 0], [0, 1], [0, 1], level="cardinal")


answers_st = st.lists(
    st.tuples(st.integers(0, 7), st.integers(0, 4), st.integers(0, 3)),
    min_size=4, max_size=60, unique_by=lambda t: (t[0], t[1]),
)


@settings(max_examples=40, deadline=None)
@given(answers_st, st.permutations(range(4)))
def test_relabeling_classes_leaves_nominal_metrics_unchanged(rows, perm):
    item, annotator, label = (np.array(c) for c in zip(*rows))
    relabeled = np.asarray(perm)[label]
    for metric in (krippendorff_alpha, fleiss_kappa):
        before, after = metric(item, annotator, label), metric(item, annotator, relabeled)
        assert (np.isnan(before) and np.isnan(after)) or before == pytest.approx(after)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=3, max_size=20))
def test_perfect_agreement_gives_one(truth):
    truth = np.array(truth)
    if len(np.unique(truth)) < 2:
        return
    item = np.repeat(np.arange(len(truth)), 3)
    annotator = np.tile(np.arange(3), len(truth))
    label = np.repeat(truth, 3)
    for level in ("nominal", "ordinal", "interval"):
        assert krippendorff_alpha(item, annotator, label, level=level) == pytest.approx(1.0)
    assert fleiss_kappa(item, annotator, label) == pytest.approx(1.0)
