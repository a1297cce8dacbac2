"""Binary segmentation masks: majority vote, RASA and EM, crowd-kit's image segmentation methods.

Each takes crowd-kit's frame (columns ``task``, ``worker``, ``segmentation``: one boolean mask
per answer, all masks of a task the same shape) and returns ``segmentations_``, a pandas Series
of boolean masks indexed by task and named ``agg_segmentation``. Every task is fitted at once:
the masks of all tasks of one shape are stacked into an (answers, pixels) matrix and the
per-task sums are segment sums over it, so there is no Python loop per task or per answer (one
step per distinct mask shape). Iterative methods stop each task when it converges, as
crowd-kit does task by task.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np

from .answers import _pick_column

_ON_MISSING = ("error", "ignore", "value")
#: crowd-kit's SegmentationRASA distance offset (weights are log(1 / (d + eps) + 1))
_RASA_EPS = 1e-5
#: SegmentationEM zeroes posteriors below this, as crowd-kit does
_EM_EPS = 1e-15


class _Stacked:
    """The masks of every task of one shape, answers sorted by task.

    ``seg``: (n_answers, n_pixels) float 0/1; ``task``: each answer's row in the group's task
    list; ``starts``: first answer of each task (for ``np.add.reduceat``); ``counts``: answers
    per task; ``shape``: the mask shape; ``positions``: the group's tasks' rows in the result.
    """

    def __init__(self, masks: np.ndarray, task: np.ndarray, weight: np.ndarray, positions: np.ndarray,
                 shape: tuple[int, ...]) -> None:
        order = np.argsort(task, kind="stable")
        self.seg = np.stack(list(masks[order])).reshape(len(order), -1).astype(np.float64)
        task = task[order]
        self.weight = weight[order]
        self.group_tasks, self.task, self.counts = np.unique(task, return_inverse=True, return_counts=True)
        self.starts = np.concatenate(([0], np.cumsum(self.counts)[:-1]))
        self.positions = positions[self.group_tasks]
        self.shape = shape

    def per_task(self, values: np.ndarray) -> np.ndarray:
        """Sum of per-answer rows (or scalars) over each task's answers."""
        return np.add.reduceat(values, self.starts, axis=0)

    def masks(self, flat: np.ndarray) -> list[np.ndarray]:
        return list(flat.reshape(-1, *self.shape))


def _read(data: Any) -> tuple[Any, str, str, str]:
    columns = [str(c) for c in getattr(data, "columns", [])]
    if not hasattr(data, "columns"):
        raise TypeError("expected a pandas DataFrame with columns task, worker, segmentation")
    task = _pick_column(columns, ("task", "item"))
    worker = _pick_column(columns, ("worker", "annotator"))
    seg = _pick_column(columns, ("segmentation",))
    return data, task, worker, seg


def _groups(data: Any, task_col: str, seg_col: str, weight: np.ndarray) -> tuple[Any, list[_Stacked]]:
    """Task index (sorted, as crowd-kit's groupby gives it) and the answers stacked per mask shape."""
    import pandas as pd

    codes, tasks = pd.factorize(data[task_col], sort=True)
    masks = data[seg_col].to_numpy(dtype=object)
    shape_codes, shape_list = pd.factorize(data[seg_col].map(np.shape))
    per_task_shapes = pd.DataFrame({"t": codes, "s": shape_codes}).groupby("t")["s"].nunique()
    if (per_task_shapes > 1).any():
        bad = tasks[int(per_task_shapes.index[(per_task_shapes > 1).to_numpy()][0])]
        raise ValueError(f"the segmentations of task {bad!r} differ in shape; one task's masks must match")
    positions = np.arange(len(tasks))
    stacks = []
    for s in range(len(shape_list)):  # one step per distinct mask shape
        rows = np.flatnonzero(shape_codes == s)
        stacks.append(_Stacked(masks[rows], codes[rows], weight[rows], positions,
                               tuple(shape_list[s])))
    index = pd.Index(tasks, name=task_col)
    return index, stacks


def _result(index: Any, stacks: list[_Stacked], flat_results: list[np.ndarray]) -> Any:
    import pandas as pd

    out = np.empty(len(index), dtype=object)
    for stack, flat in zip(stacks, flat_results, strict=True):  # one step per mask shape
        out[stack.positions] = stack.masks(flat.astype(bool))
    return pd.Series(out, index=index, name="agg_segmentation")


class SegmentationMajorityVote:
    """Pixel-wise (skill-weighted) majority vote: a pixel is in when the answers' skills that
    mark it weigh at least as much as those that do not (ties go in, as crowd-kit's).

    ``fit(data, skills=None)``: ``skills`` a Series worker -> weight; workers without one follow
    ``on_missing_skill`` ("error", "ignore": their answers are dropped, "value": ``default_skill``).

    Jung-Lin Lee, Y., et al. (2016). Quality control in crowdsourced image segmentation.
    """

    def __init__(self, on_missing_skill: str = "error", default_skill: float | None = None) -> None:
        if on_missing_skill not in _ON_MISSING:
            raise ValueError(f"on_missing_skill must be one of {', '.join(map(repr, _ON_MISSING))}; "
                             f"got {on_missing_skill!r}")
        self.on_missing_skill = on_missing_skill
        self.default_skill = default_skill

    def _weights(self, data: Any, worker: str, skills: Any) -> tuple[Any, np.ndarray]:
        import pandas as pd

        if skills is None:
            return data, np.ones(len(data))
        weight = data[worker].map(pd.Series(skills)).to_numpy(dtype=np.float64, copy=True)
        missing = np.isnan(weight)
        if missing.any():
            if self.on_missing_skill == "error":
                raise ValueError(f"no skill for worker {data[worker].to_numpy()[missing][0]!r}; pass "
                                 "on_missing_skill='ignore' or 'value' (with default_skill)")
            if self.on_missing_skill == "value":
                if self.default_skill is None:
                    raise ValueError("on_missing_skill='value' needs default_skill")
                weight[missing] = self.default_skill
            else:
                if missing.all():
                    raise ValueError("no worker of these answers has a skill: on_missing_skill='ignore' "
                                     "leaves nothing to aggregate")
                data, weight = data[~missing], weight[~missing]
        return data, weight

    def fit(self, data: Any, skills: Any = None) -> Self:
        data, task, worker, seg = _read(data)
        data, weight = self._weights(data, worker, skills)
        index, stacks = _groups(data, task, seg, weight)
        results = []
        for st in stacks:
            score = 2 * st.per_task(st.seg * st.weight[:, None]) - st.per_task(st.weight)[:, None]
            results.append(score >= 0)
        self.segmentations_ = _result(index, stacks, results)
        return self

    def fit_predict(self, data: Any, skills: Any = None) -> Any:
        return self.fit(data, skills).segmentations_


class _IterativeSegmentation:
    """Shared by SegmentationRASA and SegmentationEM: crowd-kit's ``n_iter`` / ``tol``, and a
    fit that stacks the answers per mask shape and runs the subclass's ``_fit_stack`` on each
    stack (every task of that shape at once)."""

    def __init__(self, n_iter: int = 10, tol: float = 1e-5) -> None:
        self.n_iter = n_iter
        self.tol = tol

    def _fit_stack(self, st: _Stacked) -> np.ndarray:
        raise NotImplementedError

    def fit(self, data: Any) -> Self:
        data, task, _worker, seg = _read(data)
        index, stacks = _groups(data, task, seg, np.ones(len(data)))
        self.segmentations_ = _result(index, stacks, [self._fit_stack(st) for st in stacks])
        return self

    def fit_predict(self, data: Any) -> Any:
        return self.fit(data).segmentations_


class SegmentationRASA(_IterativeSegmentation):
    """Segmentation RASA: weighted pixel vote where each answer's weight is
    log(1 / (d + 1e-5) + 1), d = 1 - IoU of the answer with the current aggregate,
    normalised per task; iterated until the relative squared change of the weighted vote is
    below ``tol`` (per task) or ``n_iter`` rounds. ``n_iter=0`` gives the unweighted vote.

    Li, J., Fukumoto, F. (2019). A dataset of crowdsourced word sequences: collections and
    answer aggregation for ground truth creation. AnnoNLP, 24-28.
    """

    def _fit_stack(self, st: _Stacked) -> np.ndarray:
        n_tasks = len(st.counts)
        weights = 1.0 / st.counts[st.task]
        mv = st.per_task(st.seg * weights[:, None]) >= 0.5
        active = np.ones(n_tasks, dtype=bool)
        last: np.ndarray | None = None
        seg_bool = st.seg > 0
        for _ in range(self.n_iter):
            weighted = st.per_task(st.seg * weights[:, None])
            new_mv = weighted >= 0.5
            inter = (seg_bool & new_mv[st.task]).sum(axis=1)
            union = (seg_bool | new_mv[st.task]).sum(axis=1)
            # an empty answer on an empty aggregate is a perfect match (crowd-kit divides 0 by 0)
            iou = np.divide(inter, union, out=np.ones(len(inter)), where=union > 0)
            raw = np.log(1.0 / (1.0 - iou + _RASA_EPS) + 1.0)
            new_weights = raw / st.per_task(raw)[st.task]
            mv = np.where(active[:, None], new_mv, mv)
            weights = np.where(active[st.task], new_weights, weights)
            if last is not None:
                delta = weighted - last
                with np.errstate(divide="ignore", invalid="ignore"):
                    loss = (delta * delta).sum(axis=1) / (weighted * weighted).sum(axis=1)
                active &= ~(loss < self.tol)
            if not active.any():
                break
            last = weighted
        return mv


class SegmentationEM(_IterativeSegmentation):
    """Segmentation EM: each answer has one accuracy (the expected share of pixels it gets
    right within the region any answer marks), each pixel a posterior of being in; EM until
    the per-pixel evidence lower bound gains less than ``tol`` (per task) or ``n_iter`` rounds.
    The prior of a pixel is the share of answers marking it, then its last posterior.

    Jung-Lin Lee, Y., et al. (2016). Quality control in crowdsourced image segmentation.
    """

    @staticmethod
    def _accuracy(st: _Stacked, post: np.ndarray, region: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        expected_errors = (sizes + post.sum(axis=1)[st.task] - 2 * (st.seg * post[st.task]).sum(axis=1))
        return np.asarray(1.0 - expected_errors / region[st.task])

    def _fit_stack(self, st: _Stacked) -> np.ndarray:
        n_tasks = len(st.counts)
        priors = st.per_task(st.seg) / st.counts[:, None]
        region = st.per_task(st.seg).astype(bool).sum(axis=1).astype(np.float64)
        empty = region == 0
        region[empty] = 1.0  # masked out below; keeps the divisions finite
        sizes = st.seg.sum(axis=1)
        acc = self._accuracy(st, np.round(priors), region, sizes)
        active = ~empty
        loss = np.full(n_tasks, -np.inf)
        n_pixels = st.seg.shape[1]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for _ in range(self.n_iter):
                if not active.any():
                    break
                weighted = acc[:, None] * st.seg + (1.0 - acc[:, None]) * (1.0 - st.seg)
                pos = np.log(priors) + st.per_task(np.log(weighted))
                neg = np.log(1.0 - priors) + st.per_task(np.log(1.0 - weighted))
                post = np.nan_to_num(1.0 / (1.0 + np.exp(neg - pos)), nan=0.0)
                post[post < _EM_EPS] = 0.0
                new_acc = self._accuracy(st, post, region, sizes)
                weighted = new_acc[:, None] * st.seg + (1.0 - new_acc[:, None]) * (1.0 - st.seg)
                p_t = post[st.task]
                elbo = (st.per_task(np.nan_to_num((np.log(weighted) + np.log(priors)[st.task]) * p_t, nan=0.0)
                                    + np.nan_to_num((np.log(1.0 - weighted) + np.log(1.0 - priors)[st.task])
                                                    * (1.0 - p_t), nan=0.0)).sum(axis=1)
                        - np.nan_to_num(np.log(post) * post, nan=0.0).sum(axis=1))
                new_loss = elbo / (st.counts * n_pixels)
                priors = np.where(active[:, None], post, priors)
                acc = np.where(active[st.task], new_acc, acc)
                converged = new_loss - loss < self.tol
                loss = np.where(active, new_loss, loss)
                active &= ~converged
        result = priors > 0.5
        result[empty] = False
        return np.asarray(result)
