"""Gold scoring per kind (goldlabel.quality.gold): known answers, cross-checks against
scipy and plain dynamic programming, and properties (an answer equal to its gold scores 1)."""

from __future__ import annotations

import itertools
from dataclasses import fields

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from goldlabel.quality.gold import (
    DEFAULT_THRESHOLDS,
    GoldThresholds,
    compute_levenshtein,
    score_boxes,
    score_spans,
    score_values,
)
from goldlabel.schemas import QualitySettings


def span(start, end, label="A"):
    return {"start": start, "end": end, "label": label}


def box(x, y, w, h, label="A"):
    return {"x": x, "y": y, "w": w, "h": h, "label": label}


def scored(kind, answers, gold, **kw):
    s = score_values(kind, answers, gold, **kw)
    return s.score.round(4).tolist(), s.passed.tolist()


def test_choice():
    assert scored("choice", ["a", "b", None], ["a", "a", "a"]) == ([1.0, 0.0, 0.0], [True, False, False])


def test_rating_tolerance_and_distance():
    scale = (1, 5, 1)
    assert scored("rating", [3, 4, 1, None], [3, 3, 5, 3], scale=scale) == (
        [1.0, 0.75, 0.0, 0.0], [True, False, False, False])
    within_one = GoldThresholds(rating_tolerance=1)
    assert scored("rating", [4, 5], [3, 3], scale=scale, thresholds=within_one)[1] == [True, False]
    # Continuous scale: a twentieth of the range by default; float noise does not fail a pass.
    assert scored("rating", [0.1 + 0.2, 0.36, 0.5], [0.3, 0.3, 0.3], scale=(0, 1, None))[1] == [True, False, False]


def test_multi_choice_jaccard():
    labels = ["a", "b", "c"]
    answers = [["a"], [], ["a", "b"], ["c"], ["a", "b", "c"]]
    gold = [["a", "b"], [], ["a", "b"], ["a"], ["a"]]
    assert scored("multi_choice", answers, gold, labels=labels) == (
        [0.5, 1.0, 1.0, 0.0, 0.3333], [True, True, True, False, False])
    strict = GoldThresholds(multi_choice_min_jaccard=1.0)
    assert scored("multi_choice", answers, gold, labels=labels, thresholds=strict)[1] == [
        False, True, True, False, False]


def test_spans_f1_with_iou_matching():
    labels = ["A", "B"]
    answers = [[span(0, 5)], [], [span(0, 4, "B")], [span(0, 10), span(20, 30)], [span(0, 2)], None]
    gold = [[span(0, 4), span(6, 9, "B")], [], [span(0, 4)], [span(0, 10), span(20, 30)], [span(0, 10)], []]
    score, passed = scored("spans", answers, gold, labels=labels)
    # IoU 0.8 matches (1 of 2 gold: F1 2/3); nothing vs nothing; wrong label; exact; IoU 0.2.
    assert score == [0.6667, 1.0, 0.0, 1.0, 0.0, 1.0]
    assert passed == [False, True, False, True, False, True]


def test_boxes_one_to_one_matching():
    labels = ["car"]
    # Two answer boxes on one gold box: one matches, the other is a false positive.
    answers = [[box(0, 0, 10, 10, "car"), box(1, 1, 10, 10, "car")], [box(0, 0, 10, 10, "car")], []]
    gold = [[box(0, 0, 10, 10, "car")], [box(5, 5, 10, 10, "car")], [box(0, 0, 1, 1, "car")]]
    score, passed = scored("boxes", answers, gold, labels=labels)
    assert score == [pytest.approx(2 / 3, abs=1e-4), 0.0, 0.0]
    assert passed == [False, False, False]
    assert scored("boxes", gold, gold, labels=labels) == ([1.0, 1.0, 1.0], [True, True, True])


def _greedy_reference(a_boxes, g_boxes, min_iou):
    """Pairs taken one by one in order of IoU: the definition the vectorized rounds follow."""
    def iou(p, q):
        w = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
        h = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
        inter = w * h
        return inter / ((p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter)
    edges = sorted(((iou(p, q), i, j) for i, p in enumerate(a_boxes) for j, q in enumerate(g_boxes)),
                   key=lambda e: (-e[0], e[1], e[2]))
    used_a, used_g, m = set(), set(), 0
    for value, i, j in edges:
        if value >= min_iou and i not in used_a and j not in used_g:
            used_a.add(i)
            used_g.add(j)
            m += 1
    return m


def test_box_matching_equals_sequential_greedy_on_random_crowds():
    rng = np.random.default_rng(7)
    n_pairs = 300
    na, ng = rng.integers(0, 6, n_pairs), rng.integers(0, 6, n_pairs)
    pair_a, pair_g = np.repeat(np.arange(n_pairs), na), np.repeat(np.arange(n_pairs), ng)

    def boxes(n):
        xy = rng.uniform(0, 20, (n, 2))
        return np.hstack([xy, xy + rng.uniform(5, 15, (n, 2))])

    ba, bg = boxes(len(pair_a)), boxes(len(pair_g))
    got = score_boxes(pair_a, ba, np.zeros(len(pair_a), int), pair_g, bg, np.zeros(len(pair_g), int),
                      n_pairs=n_pairs, min_iou=0.3, min_f1=0.8)
    for p in range(n_pairs):
        m = _greedy_reference(ba[pair_a == p], bg[pair_g == p], 0.3)
        total = na[p] + ng[p]
        assert got.score[p] == pytest.approx(2 * m / total if total else 1.0)
    assert 0 < got.score.mean() < 1  # the crowd is neither all right nor all wrong


def test_spans_arrays_api_matches_values_api():
    got = score_spans([0, 0, 1], [[0, 5], [6, 8], [3, 4]], [0, 1, 0], [0, 1], [[0, 5], [3, 4]], [0, 0],
                      n_pairs=3, min_iou=0.5, min_f1=0.8)
    assert got.score.tolist() == pytest.approx([2 / 3, 1.0, 1.0]) and got.passed.tolist() == [False, True, True]


def test_ranking_kendall_tau():
    gold = [["a", "b", "c", "d"]] * 4
    answers = [["a", "b", "c", "d"], ["b", "a", "c", "d"], ["d", "c", "b", "a"], None]
    score, passed = scored("ranking", answers, gold)
    # tau: 1, 1 - 2 * 1/6 = 2/3, -1; an absent answer fails.
    assert score == [1.0, pytest.approx(5 / 6, abs=1e-4), 0.0, 0.0]
    assert passed == [True, True, False, False]
    # Pairwise comparison: a ranking of two candidates passes only in the gold's order.
    assert scored("ranking", [["x", "y"], ["y", "x"]], [["x", "y"]] * 2)[1] == [True, False]


def test_ranking_with_ties_is_kendall_tau_b():
    answers = [[["a", "b"], ["c"], ["d"]], [["a"], ["b", "c", "d"]], [["a", "b", "c"]]]
    gold = [[["a"], ["b"], ["c", "d"]], [["a"], ["b"], ["c"], ["d"]], [["a"], ["b"], ["c"]]]
    got = score_values("ranking", answers, gold, allow_ties=True)
    for k, (answer, truth) in enumerate(zip(answers, gold)):
        ra = {c: r for r, g in enumerate(answer) for c in g}
        rg = {c: r for r, g in enumerate(truth) for c in g}
        keys = sorted(rg)
        tau = stats.kendalltau([ra[c] for c in keys], [rg[c] for c in keys]).statistic
        expected = 0.0 if np.isnan(tau) else tau  # one side all tied: no order to agree with
        assert (got.score[k] * 2 - 1) == pytest.approx(expected)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.permutations(list("abcdef")), min_size=1, max_size=8), st.permutations(list("abcdef")))
def test_ranking_matches_scipy(answers, truth):
    got = score_values("ranking", answers, [truth] * len(answers))
    for k, answer in enumerate(answers):
        position = {c: i for i, c in enumerate(answer)}
        tau = stats.kendalltau([position[c] for c in truth], range(len(truth))).statistic
        assert got.score[k] == pytest.approx((tau + 1) / 2)


def _levenshtein_reference(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=12), st.text(max_size=12)), min_size=9, max_size=20))
def test_levenshtein_matches_dynamic_programming(pairs):
    first, second = [p[0] for p in pairs], [p[1] for p in pairs]
    assert compute_levenshtein(first, second).tolist() == [_levenshtein_reference(a, b) for a, b in pairs]


def test_text_similarity():
    answers = ["The  Cat sat", "the cat sat", "a dog", "", None]
    gold = ["the cat sat", "the cat sad", "the cat sat", "", "x"]
    score, passed = scored("text", answers, gold)
    assert score == [1.0, pytest.approx(1 - 1 / 11, abs=1e-4), pytest.approx(1 - 9 / 11, abs=1e-4), 1.0, 0.0]
    assert passed == [True, True, False, True, False]


@pytest.mark.parametrize("kind,value,extra", [
    ("choice", "a", {}),
    ("rating", 4, {"scale": (1, 5, 1)}),
    ("multi_choice", ["a", "b"], {"labels": ["a", "b"]}),
    ("spans", [span(0, 3), span(5, 9, "B")], {"labels": ["A", "B"]}),
    ("boxes", [box(0, 0, 0.5, 0.5), box(0.2, 0.2, 0.5, 0.5)], {"labels": ["A"]}),
    ("ranking", ["2", "0", "1"], {}),
    ("text", "Bonjour tout le monde", {}),
])
def test_an_answer_equal_to_its_gold_passes_with_score_one(kind, value, extra):
    s = score_values(kind, [value], [value], **extra)
    assert s.score.tolist() == [1.0] and s.passed.tolist() == [True]


def test_vectorized_batch_equals_one_by_one():
    rng = np.random.default_rng(3)
    labels = ["A", "B"]
    gold = [[span(int(s), int(s) + int(w), labels[int(k)]) for s, w, k in
             zip(rng.integers(0, 50, 3), rng.integers(1, 8, 3), rng.integers(0, 2, 3))] for _ in range(40)]
    answers = [[{**s, "end": s["end"] + int(rng.integers(0, 3))} for s in g if rng.random() < 0.8] for g in gold]
    batch = score_values("spans", answers, gold, labels=labels)
    single = [score_values("spans", [a], [g], labels=labels).score[0] for a, g in zip(answers, gold)]
    assert batch.score.tolist() == pytest.approx(single)


def test_thresholds_defaults_agree_with_the_project_settings():
    qs = QualitySettings()
    for f in fields(GoldThresholds):
        assert getattr(qs, f"gold_{f.name}") == getattr(DEFAULT_THRESHOLDS, f.name), f.name
    custom = GoldThresholds.from_settings({"gold_text_min_similarity": 0.9, "gold_rating_tolerance": None})
    assert custom.text_min_similarity == 0.9 and custom.rating_tolerance is None


def test_mismatched_lengths_and_unknown_kind_are_errors():
    with pytest.raises(ValueError, match="2 answers against 1"):
        score_values("choice", ["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no gold scoring"):
        score_values("video", ["a"], ["a"])
    assert list(itertools.chain(score_values("text", [], []).score)) == []


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.text("abc", max_size=80), st.text("abc", max_size=80)), min_size=1, max_size=3))
def test_levenshtein_bit_vectors_match_dynamic_programming(pairs):
    # Few pairs take the bit-vector path (longer than 64 characters: several machine words).
    first, second = [p[0] for p in pairs], [p[1] for p in pairs]
    assert compute_levenshtein(first, second).tolist() == [_levenshtein_reference(a, b) for a, b in pairs]


def test_levenshtein_batch_of_equal_lengths():
    # Every first string as long as the others: the batch swaps rows instead of masking them.
    rng = np.random.default_rng(5)
    first = ["".join(rng.choice(list("xyz"), 6)) for _ in range(30)]
    second = ["".join(rng.choice(list("xyz"), int(rng.integers(0, 9)))) for _ in range(30)]
    assert compute_levenshtein(first, second).tolist() == [_levenshtein_reference(a, b) for a, b in zip(first, second)]
