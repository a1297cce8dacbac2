"""Splits: a stable hash of the external_id, in the project's proportions."""

from __future__ import annotations

import pytest

from goldlabel.domain.splits import SPLITS, check_split_ratios, split_of, split_point


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
