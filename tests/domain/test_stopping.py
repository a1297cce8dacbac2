"""decide_status: the one-item path (per answer) decides exactly as the vectorized one (re-fit)."""

import itertools

import numpy as np

from goldlabel.domain.stopping import decide_status

CONFIDENCES = [np.nan, 0.0, 0.5, 0.95 - 2e-12, np.nextafter(0.95 - 1e-12, 0), 0.95 - 1e-12, 0.95, 0.97, 1.0]


def test_one_item_decides_as_many_items():
    for count, conf, target, overlap_min, overlap_max, target_confidence in itertools.product(
        range(7), CONFIDENCES, range(7), range(4), range(7), (0.95, 0.9, 1)
    ):
        one = decide_status(np.array([count]), np.array([conf]), np.array([target]), overlap_min, overlap_max,
                            target_confidence)
        # two items take the vectorized path; the first is the same item
        many = decide_status(np.array([count, 0]), np.array([conf, np.nan]), np.array([target, 0]), overlap_min,
                             overlap_max, target_confidence)
        assert one[0].dtype == many[0].dtype and one[1].dtype == many[1].dtype
        assert one[0].shape == one[1].shape == (1,)
        assert (one[0][0], one[1][0]) == (many[0][0], many[1][0]), (count, conf, target, overlap_min, overlap_max)


def test_rule():
    status, target = decide_status(np.array([1, 2, 3, 5, 0]), np.array([0.97, 0.5, np.nan, 0.5, np.nan]),
                                   np.array([1, 2, 3, 3, 1]), 1, 5, 0.95)
    assert status.tolist() == ["final", "open", "final", "needs_review", "open"]
    assert target.tolist() == [1, 3, 3, 3, 1]
    status, target = decide_status(np.array([2]), np.array([0.5]), np.array([2]), 1, 5, 0.95)
    assert (str(status[0]), int(target[0])) == ("open", 3)
    # other dtypes and per-item arrays still go the vectorized way
    status, target = decide_status(np.array([2], dtype=np.int32), np.array([0.99]), np.array([2], dtype=np.int32),
                                   1, 5, 0.95)
    assert (str(status[0]), int(target[0])) == ("final", 2)
