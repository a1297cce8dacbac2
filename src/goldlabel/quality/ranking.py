"""Ranking and pairwise comparisons: Bradley-Terry and the noise-aware CrowdBT.

Input: comparisons in long format, integer codes ``annotator``, ``winner``, ``loser``
(candidates ``0..n_candidates-1``). A ranking question over several items fits in one
model: give each (item, candidate) its own candidate code -- comparisons never cross
items, so scores decouple, while CrowdBT still learns one reliability per annotator from
all items. Full rankings become comparisons with :func:`rankings_to_comparisons`.
Every update is a bincount over comparisons.

crowd-kit's pairwise frames work too (columns ``worker``, ``left``, ``right``, ``label``, the
label being the winner): ``BradleyTerry().fit(frame)`` and ``NoisyBradleyTerry().fit(frame)``
give crowd-kit's ``scores_`` Series, indexed by candidate.
"""

from __future__ import annotations

from typing import Any, Self, cast

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from .answers import _pick_column

__all__ = ["BradleyTerry", "CrowdBT", "NoisyBradleyTerry", "rankings_to_comparisons"]


def rankings_to_comparisons(annotator: Any, rankings: Any) -> tuple[np.ndarray, ...]:
    """Break full or partial rankings into all implied pairs.

    ``rankings`` is (n_rankings, k): candidate codes best first, padded with -1 for
    shorter rankings; ``annotator`` has one code per ranking. Returns
    ``(annotator, winner, loser)`` with k (k - 1) / 2 pairs per full ranking.
    """
    rankings = np.atleast_2d(np.asarray(rankings, dtype=np.int64))
    annotator = np.asarray(annotator, dtype=np.int64).ravel()
    if len(annotator) != len(rankings):
        raise ValueError(
            f"one annotator per ranking: got {len(annotator)} annotators, {len(rankings)} rankings"
        )
    hi, lo = np.triu_indices(rankings.shape[1], k=1)
    winner, loser = rankings[:, hi], rankings[:, lo]
    who = np.broadcast_to(annotator[:, None], winner.shape)
    keep = (winner >= 0) & (loser >= 0)
    return who[keep], winner[keep], loser[keep]


def _check(annotator: Any, winner: Any, loser: Any) -> tuple[np.ndarray, ...]:
    arrays = [np.asarray(a).ravel() for a in (annotator, winner, loser)]
    if not len(arrays[0]) == len(arrays[1]) == len(arrays[2]):
        raise ValueError(
            "annotator, winner and loser must have the same length, got "
            f"{len(arrays[0])}, {len(arrays[1])}, {len(arrays[2])}"
        )
    if len(arrays[0]) == 0:
        raise ValueError("no comparisons to aggregate")
    for name, a in zip(("annotator", "winner", "loser"), arrays):
        if a.dtype.kind not in "iu" or a.min() < 0:
            raise ValueError(f"{name} must be integer codes 0..n-1")
    if np.any(arrays[1] == arrays[2]):
        raise ValueError("a comparison has the same candidate as winner and loser")
    return tuple(a.astype(np.int64) for a in arrays)


def _frame_comparisons(data: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """crowd-kit's pairwise frame -> (candidates sorted, left, right, winner codes, worker column).

    Candidates are every value of ``left``, ``right`` and ``label``, sorted (crowd-kit's order);
    a label that is neither its row's left nor its right is refused."""
    import pandas as pd

    columns = [str(c) for c in data.columns]
    for name in ("left", "right", "label"):
        _pick_column(columns, (name,))
    values = pd.concat([data["left"], data["right"], data["label"]], ignore_index=True)
    codes, candidates = pd.factorize(values, sort=True)
    n = len(data)
    left, right, label = codes[:n], codes[n:2 * n], codes[2 * n:]
    bad = (label != left) & (label != right)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"row {data.index[row]!r}: label {data['label'].iloc[row]!r} is neither its left "
                         f"{data['left'].iloc[row]!r} nor its right {data['right'].iloc[row]!r}")
    return candidates, left.astype(np.int64), right.astype(np.int64), label.astype(np.int64), bad


def _weighted_bt(winner: np.ndarray, loser: np.ndarray, weight: np.ndarray, n: int, prior: float,
                 strength: np.ndarray, n_iter: int, tol: float) -> np.ndarray:
    """MAP Bradley-Terry by the MM algorithm on fractional outcomes.

    Comparison k says winner beat loser with weight w_k and loser beat winner with
    1 - w_k. With a Gamma(1 + prior, prior) prior on each strength (Caron & Doucet 2012)
    the MM update is
        gamma_i = (prior + W_i) / (prior + sum_{k: i in k} 1 / (gamma_i + gamma_other)),
    W_i the weighted wins of i. The prior keeps candidates with no wins finite and
    separate components comparable.
    """
    wins = np.bincount(winner, weights=weight, minlength=n) + np.bincount(
        loser, weights=1.0 - weight, minlength=n
    )
    gamma = strength.copy()
    for _ in range(n_iter):
        inv = 1.0 / (gamma[winner] + gamma[loser])
        denom = np.bincount(winner, weights=inv, minlength=n) + np.bincount(
            loser, weights=inv, minlength=n
        )
        new = (prior + wins) / (prior + denom)
        new /= np.exp(np.mean(np.log(new)))  # fix the scale: geometric mean 1
        change = float(np.abs(np.log(new) - np.log(gamma)).max())
        gamma = new
        if change <= tol:
            break
    return gamma


def _score_sd(scores: np.ndarray, winner: np.ndarray, loser: np.ndarray, n: int, prior: float) -> np.ndarray:
    """Laplace approximation, diagonal only: sd_i = 1 / sqrt(sum_k p_k (1 - p_k) + prior)."""
    p = 1.0 / (1.0 + np.exp(scores[loser] - scores[winner]))
    info = p * (1.0 - p)
    fisher = np.bincount(winner, weights=info, minlength=n) + np.bincount(
        loser, weights=info, minlength=n
    )
    sd: np.ndarray = 1.0 / np.sqrt(fisher + prior)
    return sd


class BradleyTerry:
    """Bradley-Terry model: P(i beats j) = gamma_i / (gamma_i + gamma_j) = sigmoid(s_i - s_j).

    Fitted by the MM algorithm (Hunter 2004) with a Gamma(1 + prior, prior) prior on
    gamma (MAP; ``prior=0`` is maximum likelihood, which diverges for a candidate that
    never loses or never wins). Learned: ``scores_`` = log gamma (geometric mean 1, so
    scores are centred), ``sd_`` (diagonal Laplace approximation), ``ranking_``
    (candidates best first).

    Bradley, R. A., Terry, M. E. (1952). Rank analysis of incomplete block designs.
    Biometrika 39, 324-345. Hunter, D. R. (2004). MM algorithms for generalized
    Bradley-Terry models. Annals of Statistics 32(1), 384-406. Caron, F., Doucet, A.
    (2012). Efficient Bayesian inference for generalized Bradley-Terry models. JCGS 21(1).
    """

    def __init__(self, prior: float | None = None, n_iter: int = 1000, tol: float = 1e-8) -> None:
        self.prior = prior
        self.n_iter = n_iter
        self.tol = tol

    def fit(self, annotator: Any, winner: Any = None, loser: Any = None, n_candidates: int | None = None) -> Self:
        """Fit on code arrays, or on crowd-kit's pairwise frame passed alone (``fit(frame)``).

        On a frame, as crowd-kit's: ``scores_`` is a Series of strengths gamma normalised to sum
        to 1, indexed by candidate (sorted) and named ``agg_score``; ``prior`` defaults to 0
        (maximum likelihood: a candidate that never wins scores 0); ``tol`` bounds the L1
        change of the scores between two rounds."""
        if hasattr(annotator, "columns"):
            return self._fit_frame(annotator)
        annotator, winner, loser = _check(annotator, winner, loser)
        n = n_candidates or int(max(winner.max(), loser.max())) + 1
        prior = 0.1 if self.prior is None else self.prior
        gamma = _weighted_bt(winner, loser, np.ones(len(winner)), n, prior,
                             np.ones(n), self.n_iter, self.tol)
        self.scores_ = np.log(gamma)
        self.sd_ = _score_sd(self.scores_, winner, loser, n, prior)
        self.ranking_ = np.argsort(-self.scores_, kind="stable")
        return self

    def _fit_frame(self, data: Any) -> Self:
        import pandas as pd

        candidates, left, right, label, _ = _frame_comparisons(data)
        n = len(candidates)
        self.loss_history_: list[float] = []
        if n == 0:
            self.scores_ = pd.Series([], dtype=np.float64, name="agg_score")
            return self
        prior = 0.0 if self.prior is None else self.prior
        winner, loser = label, np.where(label == left, right, left)
        wins = np.bincount(winner, minlength=n).astype(np.float64)
        gamma = np.full(n, 1.0 / max(n, 1))
        for it in range(self.n_iter):
            inv = 1.0 / (gamma[winner] + gamma[loser])
            denom = np.bincount(winner, weights=inv, minlength=n) + np.bincount(loser, weights=inv, minlength=n)
            new = (prior + wins) / (prior + denom)
            new /= new.sum()
            change = float(np.abs(new - gamma).sum())
            gamma = new
            if it > 0:  # crowd-kit compares from the second round on
                self.loss_history_.append(change)
                if change < self.tol:
                    break
        self.scores_ = pd.Series(gamma, index=pd.Index(np.asarray(candidates)), name="agg_score",
                                 dtype=np.float64)
        return self

    def fit_predict(self, data: Any) -> Any:
        """crowd-kit's ``fit_predict``: ``fit(frame).scores_``."""
        return self.fit(data).scores_

    def predict_proba(self, first: Any, second: Any) -> np.ndarray:
        """P(first beats second) for arrays of candidate codes."""
        first, second = np.asarray(first), np.asarray(second)
        return cast("np.ndarray", 1.0 / (1.0 + np.exp(self.scores_[second] - self.scores_[first])))


class NoisyBradleyTerry:
    """Bradley-Terry with a per-annotator skill and bias (crowd-kit's ``NoisyBradleyTerry``).

    Annotator k answers by the Bradley-Terry model with probability sigma(g_k) and otherwise
    picks the left candidate with probability sigma(q_k):
        P(k says left wins) = sigma(g_k) sigma(s_left - s_right) + (1 - sigma(g_k)) sigma(q_k).
    Maximum likelihood by L-BFGS-B (analytic gradient, every comparison at once), with a small
    penalty ``regularization_ratio`` pulling scores towards a shared anchor so they stay finite.
    Fits crowd-kit's pairwise frame (``worker``, ``left``, ``right``, ``label``); learned
    ``scores_`` = sigma(s) (Series named ``agg_score``, index ``label``), ``skills_`` =
    sigma(g) (``skill``), ``biases_`` = sigma(q) (``bias``), both indexed by worker.

    Bugakova, N., et al. (2019). Aggregation of pairwise comparisons with reduction of biases.
    NeurIPS 2019 Workshop on Crowdsourcing and Human-Centric Computing.
    """

    def __init__(self, n_iter: int = 100, tol: float = 1e-5, regularization_ratio: float = 1e-5,
                 random_state: int = 0) -> None:
        self.n_iter = n_iter
        self.tol = tol
        self.regularization_ratio = regularization_ratio
        self.random_state = random_state

    def fit(self, data: Any) -> Self:
        import pandas as pd

        candidates, left, right, label, _ = _frame_comparisons(data)
        worker_col = _pick_column([str(c) for c in data.columns], ("worker", "annotator"))
        worker, workers = pd.factorize(data[worker_col])
        n, m = len(candidates), len(workers)
        y = np.where(label == left, 1.0, -1.0)
        reg = self.regularization_ratio

        def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
            anchor, s, q, g = x[0], x[1:n + 1], x[n + 1:n + 1 + m], x[n + 1 + m:]
            d = y * (s[left] - s[right])
            a, b, c = expit(g[worker]), expit(d), expit(y * q[worker])
            like = a * b + (1.0 - a) * c
            # log-likelihood minus the penalty: log sigma(anchor - s) + log sigma(s - anchor) peaks at s = anchor
            value = -np.sum(np.log(like)) - reg * np.sum(log_expit(anchor - s) + log_expit(s - anchor))
            d_s = a * b * (1.0 - b) * y / like
            grad = np.zeros_like(x)
            grad[1:n + 1] = np.bincount(right, weights=d_s, minlength=n) - np.bincount(left, weights=d_s, minlength=n)
            grad[n + 1:n + 1 + m] = -np.bincount(worker, weights=(1.0 - a) * c * (1.0 - c) * y / like, minlength=m)
            d_g = a * (1.0 - a) * (b - c) / like
            grad[n + 1 + m:] = -np.bincount(worker, weights=d_g, minlength=m)
            pull = np.tanh((s - anchor) / 2.0)  # d/ds of the penalty term (log sigma pair), up to sign
            grad[1:n + 1] += reg * pull
            grad[0] = -reg * np.sum(pull)
            return float(value), grad

        # crowd-kit's starting point: uniform draws from numpy's legacy generator seeded random_state
        x0 = np.random.RandomState(self.random_state).random_sample(1 + n + 2 * m)
        if len(y):
            x0 = minimize(objective, x0, jac=True, method="L-BFGS-B",
                          options={"maxiter": self.n_iter, "ftol": self.tol}).x
        self.scores_ = pd.Series(expit(x0[1:n + 1]), index=pd.Index(np.asarray(candidates), name="label"),
                                 name="agg_score", dtype=np.float64)
        index = pd.Index(np.asarray(workers), name=worker_col)
        self.biases_ = pd.Series(expit(x0[n + 1:n + 1 + m]), index=index, name="bias", dtype=np.float64)
        self.skills_ = pd.Series(expit(x0[n + 1 + m:]), index=index, name="skill", dtype=np.float64)
        return self

    def fit_predict(self, data: Any) -> Any:
        return self.fit(data).scores_


class CrowdBT(BradleyTerry):
    """Bradley-Terry with a per-annotator reliability (CrowdBT).

    Annotator k reports the true order with probability eta_k and flips it otherwise:
        P(k says i > j) = eta_k sigmoid(s_i - s_j) + (1 - eta_k) sigmoid(s_j - s_i).
    EM: the E-step gives each comparison the posterior r that the report is truthful,
        r = eta_k p / (eta_k p + (1 - eta_k)(1 - p)),  p = sigmoid(s_winner - s_loser);
    the M-step sets eta_k = (sum r + a) / (n_k + a + b) (Beta pseudo-counts
    ``reliability_prior``) and refits Bradley-Terry on fractional outcomes (winner beat
    loser with weight r). An adversarial annotator (eta < 0.5) has their votes reversed.
    Learned in addition: ``reliabilities_`` (n_annotators,).

    Chen, X., Bennett, P. N., Collins-Thompson, K., Horvitz, E. (2013). Pairwise ranking
    aggregation in a crowdsourced setting. WSDM, 193-202.
    """

    def __init__(
        self,
        prior: float = 0.1,
        reliability_prior: tuple[float, float] = (4.0, 1.0),
        n_iter: int = 100,
        tol: float = 1e-6,
        n_inner: int = 20,
    ) -> None:
        super().__init__(prior=prior, n_iter=n_iter, tol=tol)
        self.prior: float = prior
        self.reliability_prior = reliability_prior
        self.n_inner = n_inner

    def fit(self, annotator: Any, winner: Any = None, loser: Any = None, n_candidates: int | None = None,
            n_annotators: int | None = None) -> Self:
        annotator, winner, loser = _check(annotator, winner, loser)
        n = n_candidates or int(max(winner.max(), loser.max())) + 1
        n_annotators = n_annotators or int(annotator.max()) + 1
        a, b = self.reliability_prior
        n_k = np.bincount(annotator, minlength=n_annotators)
        gamma = _weighted_bt(winner, loser, np.ones(len(winner)), n, self.prior,
                             np.ones(n), 200, self.tol)
        eta = np.full(n_annotators, (a + 0.0) / (a + b))
        self.n_iter_ = 0
        for it in range(self.n_iter):
            p = gamma[winner] / (gamma[winner] + gamma[loser])
            truthful = eta[annotator] * p
            r = truthful / (truthful + (1.0 - eta[annotator]) * (1.0 - p))
            eta = (np.bincount(annotator, weights=r, minlength=n_annotators) + a) / (n_k + a + b)
            new = _weighted_bt(winner, loser, r, n, self.prior, gamma, self.n_inner, self.tol)
            change = float(np.abs(np.log(new) - np.log(gamma)).max())
            gamma = new
            self.n_iter_ = it + 1
            if change <= self.tol:
                break
        self.scores_ = np.log(gamma)
        self.reliabilities_ = eta
        self.sd_ = _score_sd(self.scores_, winner, loser, n, self.prior)
        self.ranking_ = np.argsort(-self.scores_, kind="stable")
        return self
