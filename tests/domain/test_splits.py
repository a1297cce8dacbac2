"""Splits: a stable hash of the external_id, in the project's proportions."""

from __future__ import annotations

import pytest

from goldlabel.domain.splits import SPLITS, check_split_ratios, split_of, split_point, splits_of


def test_split_is_a_function_of_the_external_id_alone():
    ids = [f"item-{i}" for i in range(2000)]
    first = [split_of(x) for x in ids]
    assert first == [split_of(x) for x in reversed(ids)][::-1]
    assert set(first) == set(SPLITS)


@pytest.mark.parametrize("ratios", [(0.8, 0.1, 0.1), (0.5, 0.25, 0.25), (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)])
def test_split_shares_follow_the_ratios(ratios):
    n = 20000
    counts = dict.fromkeys(SPLITS, 0)
    for i in range(n):
        counts[split_of(f"doc/{i}.txt", ratios)] += 1
    for name, share in zip(SPLITS, ratios, strict=True):
        # Binomial standard deviation at n = 20000 is at most 0.0036: 0.015 is four of them.
        assert abs(counts[name] / n - share) < 0.015, (name, counts)


def test_shrinking_train_never_moves_an_item_into_train():
    ids = [f"x{i}" for i in range(5000)]
    before = {x: split_of(x, (0.8, 0.1, 0.1)) for x in ids}
    after = {x: split_of(x, (0.7, 0.1, 0.2)) for x in ids}
    moved = {x for x in ids if before[x] != after[x]}
    assert moved and all(after[x] in ("validation", "test") for x in moved)
    assert all(0.0 <= split_point(x) < 1.0 for x in ids)


@pytest.mark.parametrize("ratios", [(0.5, 0.5), (0.8, 0.1, 0.2), (1.2, -0.1, -0.1)])
def test_bad_ratios_are_refused(ratios):
    with pytest.raises(ValueError):
        check_split_ratios(ratios)


@pytest.mark.parametrize("ratios", [(0.8, 0.1, 0.1), (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.7, 0.3, 0.0),
                                    (0.3333333, 0.3333333, 0.3333334)])
def test_a_batch_splits_as_the_hash_points_say(ratios):
    # splits_of (an export's batch at once) against the definition: the point of each id on
    # [0, 1) cut at the cumulative shares, the top left by rounding going to the last split
    # with a share
    ids = [f"img/{i}.jpg" for i in range(3000)] + ["", "é", "\ud800"]
    edges = [sum(ratios[:k + 1]) for k in range(3)]
    last = max(k for k, share in enumerate(ratios) if share > 0)
    want = [SPLITS[next((k for k, edge in enumerate(edges) if split_point(x) < edge), last)] for x in ids]
    assert splits_of(ids, ratios) == want
    assert [split_of(x, ratios) for x in ids[:50]] == want[:50]
    assert splits_of([], ratios) == []
