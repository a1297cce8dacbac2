"""crowd-kit's image segmentation cases (Toloka/crowd-kit ``tests/aggregation/test_image_aggregation.py``
and ``data_image.py``) in our form, plus what its per-task loop hides: tasks of several mask
shapes in one frame, and per-task convergence when every task is fitted at once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_series_equal

import goldlabel.quality as q


def _mask(*rows: str) -> np.ndarray:
    return np.array([[c == "1" for c in row] for row in rows], dtype=bool)


WORKERS = ["bf3a", "be37", "e044"]
IMAGES = {
    1: [_mask("00010000", "11111111", "11111111"),
        _mask("00000000", "11111111", "11111111"),
        _mask("00000000", "00001100", "00001100")],
    2: [_mask("00000000", "00000001", "11111111"),
        _mask("11111111", "11111111", "11111100"),
        _mask("00000000", "11111000", "11111110")],
}
SIMPLE = pd.DataFrame({
    "task": [1, 1, 1, 2, 2, 2],
    "worker": WORKERS * 2,
    "segmentation": IMAGES[1] + IMAGES[2],
    "image": [np.zeros((3, 8, 3)) for _ in range(6)],
})
MV_RESULT = pd.Series([_mask("00000000", "11111111", "11111111"), _mask("00000000", "11111001", "11111110")],
                      index=pd.Index([1, 2], name="task"), name="agg_segmentation")
# RASA and EM both drop the stray top-right pixel of task 2 that the plain vote keeps
WEIGHTED_RESULT = pd.Series([_mask("00000000", "11111111", "11111111"), _mask("00000000", "11111000", "11111110")],
                            index=pd.Index([1, 2], name="task"), name="agg_segmentation")


def _assert_masks_equal(result: pd.Series, expected: pd.Series) -> None:
    # crowd-kit's own check: assert_series_equal compares the object column mask by mask
    assert_series_equal(result, expected)
    for got in result:
        assert got.dtype == bool


def test_simple_segmentation_mv():
    _assert_masks_equal(q.SegmentationMajorityVote().fit_predict(SIMPLE), MV_RESULT)


def test_skills_segmentation_mv():
    frame = pd.DataFrame({"task": [1, 1, 1], "worker": WORKERS,
                          "segmentation": [_mask("11000", "10000"), _mask("10101", "00000"), _mask("01110", "00000")]})
    skills = pd.Series([1, 1, 3], pd.Index(WORKERS, name="worker"))
    expected = pd.Series([_mask("01110", "00000")], index=pd.Index([1], name="task"), name="agg_segmentation")
    _assert_masks_equal(q.SegmentationMajorityVote().fit_predict(frame, skills), expected)
    # without the skills the third worker is outvoted on the left half
    assert q.SegmentationMajorityVote().fit_predict(frame).loc[1][0].tolist() == [True, True, True, False, False]


@pytest.mark.parametrize(("n_iter", "tol"), [(10, 0), (100500, 1e-5)])
def test_simple_segmentation_rasa_iter(n_iter, tol):
    _assert_masks_equal(q.SegmentationRASA(n_iter=n_iter, tol=tol).fit_predict(SIMPLE), WEIGHTED_RESULT)


@pytest.mark.parametrize(("n_iter", "tol"), [(10, 0), (100500, 1e-5)])
def test_simple_segmentation_em_iter(n_iter, tol):
    _assert_masks_equal(q.SegmentationEM(n_iter=n_iter, tol=tol).fit_predict(SIMPLE), WEIGHTED_RESULT)


@pytest.mark.parametrize("model", [q.SegmentationEM, q.SegmentationRASA])
def test_zero_iter(model):
    result = model(n_iter=0).fit_predict(SIMPLE)
    assert result.index.equals(MV_RESULT.index)
    assert all(got.shape == (3, 8) and got.dtype == bool for got in result)


# ------------------------------------------------------------------------------ beyond crowd-kit's


@pytest.mark.parametrize("model", [q.SegmentationMajorityVote, q.SegmentationEM, q.SegmentationRASA])
def test_all_tasks_at_once_equal_each_task_alone(model):
    # random masks around a per-task truth, tasks of two shapes, interleaved rows: every task's
    # result must not depend on the others (each stops at its own convergence)
    rng = np.random.default_rng(7)
    rows = []
    for task in range(12):
        shape = (4, 6) if task % 2 else (5, 3)
        truth = rng.random(shape) < 0.4
        for worker in range(int(rng.integers(1, 6))):
            noise = rng.random(shape) < rng.uniform(0.05, 0.45)
            rows.append({"task": f"t{task:02d}", "worker": f"w{worker}", "segmentation": truth ^ noise})
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=3).reset_index(drop=True)
    together = model().fit_predict(frame)
    assert list(together.index) == sorted(frame.task.unique())
    for task, group in frame.groupby("task"):
        alone = model().fit_predict(group).loc[task]
        np.testing.assert_array_equal(together.loc[task], alone)
        assert together.loc[task].shape == group.segmentation.iloc[0].shape


def test_em_empty_region_gives_an_empty_mask():
    frame = pd.DataFrame({"task": ["a", "a", "b"], "worker": ["w1", "w2", "w1"],
                          "segmentation": [np.zeros((2, 2), bool), np.zeros((2, 2), bool), np.eye(2, dtype=bool)]})
    result = q.SegmentationEM().fit_predict(frame)
    assert not result.loc["a"].any()
    np.testing.assert_array_equal(result.loc["b"], np.eye(2, dtype=bool))


def test_rasa_empty_answers_agree():
    frame = pd.DataFrame({"task": ["a", "a"], "worker": ["w1", "w2"],
                          "segmentation": [np.zeros((2, 2), bool), np.zeros((2, 2), bool)]})
    assert not q.SegmentationRASA().fit_predict(frame).loc["a"].any()


@pytest.mark.parametrize("model", [q.SegmentationMajorityVote, q.SegmentationEM, q.SegmentationRASA])
@pytest.mark.parametrize("missing", ["task", "worker", "segmentation"])
def test_missing_column_is_a_key_error(model, missing):
    with pytest.raises(KeyError, match=missing):
        model().fit_predict(SIMPLE.drop(columns=[missing]))


def test_masks_of_one_task_must_share_a_shape():
    frame = pd.DataFrame({"task": ["a", "a"], "worker": ["w1", "w2"],
                          "segmentation": [np.zeros((2, 2), bool), np.zeros((2, 3), bool)]})
    with pytest.raises(ValueError, match="'a' differ in shape"):
        q.SegmentationEM().fit(frame)


def test_missing_skill_policies():
    skills = pd.Series({"bf3a": 1.0, "be37": 1.0})
    with pytest.raises(ValueError, match="no skill for worker 'e044'"):
        q.SegmentationMajorityVote().fit(SIMPLE, skills)
    ignored = q.SegmentationMajorityVote(on_missing_skill="ignore").fit_predict(SIMPLE, skills)
    # two answers left per task: a pixel either of them marks is in (ties go in)
    np.testing.assert_array_equal(ignored.loc[1], IMAGES[1][0] | IMAGES[1][1])
    valued = q.SegmentationMajorityVote(on_missing_skill="value", default_skill=5.0).fit_predict(SIMPLE, skills)
    np.testing.assert_array_equal(valued.loc[2], IMAGES[2][2])
    # crowd-kit's test_majority_vote.py: with no skill at all, ignoring leaves nothing: an error
    with pytest.raises(ValueError, match="leaves nothing to aggregate"):
        q.SegmentationMajorityVote(on_missing_skill="ignore").fit(SIMPLE, pd.Series([], dtype=float))
    with pytest.raises(ValueError, match="on_missing_skill must be one of"):
        q.SegmentationMajorityVote(on_missing_skill="drop")
