"""M-MSR: annotator skills by robust rank-one completion of the agreement matrix (crowd-kit's ``MMSR``).

For M labels and annotators i, j with tasks in common, the rescaled agreement
``C_ij = M / (M - 1) * agree_ij - 1 / (M - 1)`` has expectation ``s_i s_j`` (``s`` the skill
above chance). M-MSR fits ``|C| ~ u v^T`` by alternating trimmed means: each entry of ``v``
is the mean of ``|C_ij| / u_i`` over i, dropping the F largest and F smallest values on either
side of the current value (F from the sparsest annotator's number of partners), then ``u``
likewise; the signs come from the agreement graph (an eigenvector of its signed lift). Labels
are the vote weighted by ``log((M - 1) p / (1 - p))``, p the accuracy implied by ``s``.

Every round updates all annotators at once: rows of the agreement matrix are sorted and trimmed
by index arithmetic, never one annotator at a time.

Ma, Q., Olshevsky, A. (2020). Adversarial crowdsourcing through robust rank-one matrix
completion. NeurIPS 2020.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from scipy import sparse

from .answers import _pick_column


def _trimmed_means(values: np.ndarray, observed: np.ndarray, current: np.ndarray, trim: int,
                   n_tasks: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise mean of the observed ``values`` after M-MSR's trimming around ``current``.

    Sorted, a row keeps the values >= current if fewer than ``trim`` lie below it, else drops
    the ``trim`` smallest (a negative ``trim`` keeps only the last ``-trim``); then keeps the
    values <= current if fewer than ``trim`` lie above it, else drops the ``trim`` largest. A
    single kept zero counts as 1 / sqrt(n_tasks). Returns the means and which rows kept any."""
    k = observed.sum(axis=1)
    ordered = np.sort(np.where(observed, values, np.inf), axis=1)
    position = np.arange(values.shape[1])[None, :]
    valid = position < k[:, None]
    below = ((ordered < current[:, None]) & valid).sum(axis=1)
    if trim >= 0:
        lo = np.where(below < trim, below, np.minimum(trim, k))
    else:
        lo = np.maximum(k + trim, 0)
    kept = (position >= lo[:, None]) & valid
    above = ((ordered > current[:, None]) & kept).sum(axis=1)
    at_most = ((ordered <= current[:, None]) & kept).sum(axis=1)
    if trim >= 0:
        hi = np.where(above < trim, lo + at_most, k - trim)
    else:
        hi = k
    kept &= position < hi[:, None]
    n_kept = kept.sum(axis=1)
    total = np.where(kept, ordered, 0.0).sum(axis=1)
    single_zero = (n_kept == 1) & (total == 0)
    total = np.where(single_zero, 1.0 / np.sqrt(n_tasks), total)
    means = np.divide(total, n_kept, out=np.zeros(len(k)), where=n_kept > 0)
    return means, n_kept > 0


def _signs(cov: np.ndarray, magnitude: np.ndarray) -> np.ndarray:
    """Signed skills from their magnitudes: annotators whose agreement row sums to non-zero get
    the sign pattern of the eigenvector of smallest |eigenvalue| of I + W, W the row-normalised
    adjacency of the signed graph lifted to one extra node per positive pair; others get 0."""
    valid = np.flatnonzero(cov.sum(axis=1) != 0)
    sign = np.sign(cov[np.ix_(valid, valid)])
    k = len(valid)
    first, second = np.nonzero(np.triu(sign) == 1)
    n_pos = len(first)
    lift = np.zeros((n_pos, k))
    lift[np.arange(n_pos), first] += 1.0
    lift[np.arange(n_pos), second] += 1.0
    negative = np.where(sign == 1, 0.0, np.abs(sign))
    adjacency = np.block([[negative, lift.T], [lift, np.zeros((n_pos, n_pos))]])
    walk = adjacency / adjacency.sum(axis=1, keepdims=True)
    eigenvalues, eigenvectors = np.linalg.eig(walk + np.eye(k + n_pos))
    vector = np.sign(eigenvectors[:, int(np.argmin(np.abs(eigenvalues)))].real)[:k]
    out = np.zeros(len(magnitude))
    out[valid] = np.sign(vector.sum()) * magnitude[valid] * vector
    return out


class MMSR:
    """crowd-kit's ``MMSR(n_iter=10000, tol=1e-10, random_state=0)`` on a ``task``/``worker``/
    ``label`` frame: ``skills_`` (Series ``skill`` by worker, log-odds weights), ``labels_``,
    ``scores_`` (the skill-weighted vote's label shares), ``loss_history_``."""

    def __init__(self, n_iter: int = 10000, tol: float = 1e-10, random_state: int | None = 0) -> None:
        self.n_iter = n_iter
        self.tol = tol
        self.random_state = random_state

    def fit(self, data: Any) -> Self:
        import pandas as pd

        columns = [str(c) for c in data.columns]
        task_col = _pick_column(columns, ("task", "item"))
        worker_col = _pick_column(columns, ("worker", "annotator"))
        label_col = _pick_column(columns, ("label",))
        worker, workers = pd.factorize(data[worker_col])
        task, tasks = pd.factorize(data[task_col])
        label, labels = pd.factorize(data[label_col])
        n, n_tasks, n_labels = len(workers), len(tasks), len(labels)
        # one answer per (worker, task): the last, as crowd-kit's observation matrix keeps it
        last = ~pd.DataFrame({"w": worker, "t": task}).duplicated(keep="last").to_numpy()
        worker, task, label = worker[last], task[last], label[last]
        answered = sparse.csr_matrix((np.ones(len(worker)), (worker, task)), shape=(n, n_tasks))
        common = (answered @ answered.T).toarray()
        np.fill_diagonal(common, 0.0)
        # agreements: answers matched on (task, label), i.e. tasks as task * n_labels + label
        hit = sparse.csr_matrix((np.ones(len(worker)), (worker, task * n_labels + label)),
                                shape=(n, n_tasks * n_labels))
        agree = (hit @ hit.T).toarray()
        cov = np.divide(agree, common, out=np.zeros((n, n)), where=common > 0)
        cov = cov * n_labels / (n_labels - 1) - 1.0 / (n_labels - 1)
        observed = common > 0
        trim = int(np.floor(observed.sum(axis=0).min() / 2)) - 1
        magnitude = np.abs(cov)
        start = np.random.RandomState(self.random_state).random_sample(n)
        u, v = start.copy(), start.copy()
        self.loss_history_: list[float] = []
        with np.errstate(divide="ignore", invalid="ignore"):
            for _ in range(self.n_iter):
                u_prev, v_prev = u, v
                means, ok = _trimmed_means(magnitude.T / u[None, :], observed.T, v, trim, n_tasks)
                v = np.where(ok, means, v)
                means, ok = _trimmed_means(magnitude / v[None, :], observed, u, trim, n_tasks)
                u = np.where(ok, means, u)
                loss = float(np.linalg.norm(np.outer(u, v) - np.outer(u_prev, v_prev)))
                self.loss_history_.append(loss)
                if loss < self.tol:
                    break
        scale = np.sqrt(np.linalg.norm(u) / np.linalg.norm(v))
        above_chance = _signs(cov, u / scale)
        above_chance = np.minimum(above_chance, 1 - 1.0 / np.sqrt(n_tasks))
        above_chance = np.maximum(above_chance, -1.0 / (n_labels - 1) + 1.0 / np.sqrt(n_tasks))
        accuracy = above_chance * (n_labels - 1) / n_labels + 1.0 / n_labels
        skills = np.log(accuracy * (n_labels - 1) / (1 - accuracy))
        self.skills_ = pd.Series(skills, index=pd.Index(np.asarray(workers), name=worker_col), name="skill")
        return self._apply(data)

    def _apply(self, data: Any) -> Self:
        from .majority_vote import MajorityVote

        vote = MajorityVote().fit(data, skills=self.skills_)
        self.labels_ = vote.labels_
        self.scores_ = vote.probas_
        return self

    def predict(self, data: Any) -> Any:
        return self._apply(data).labels_

    def predict_score(self, data: Any) -> Any:
        return self._apply(data).scores_

    def fit_predict(self, data: Any) -> Any:
        return self.fit(data).labels_

    def fit_predict_score(self, data: Any) -> Any:
        return self.fit(data).scores_
