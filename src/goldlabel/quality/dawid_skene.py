"""Dawid-Skene (full confusion matrices) and one-coin Dawid-Skene, plus the incremental
per-item posterior the server uses between full re-fits."""

from __future__ import annotations

import math
from typing import Any, Self, cast

import numpy as np

from goldlabel.quality.answers import Answers

from .categorical import (
    CategoricalEstimator,
    CountMatrix,
    clamp_gold,
    confusion_diagonal,
    majority_posteriors,
    normalize_rows,
    softmax_rows,
)

__all__ = ["DawidSkene", "OneCoinDawidSkene", "item_posterior"]


class DawidSkene(CategoricalEstimator):
    r"""Dawid-Skene: each annotator j has a confusion matrix :math:`\pi_j[k, l] = P(l_{ij}=l \mid y_i=k)`,
    items have class prior :math:`p_k`, answers are independent given the true class:

    .. math:: P(y_i = k \mid L) \propto p_k \prod_{j \in i} \pi_j[k, l_{ij}]

    Fitted by EM from the majority-vote posteriors. The M-step adds to every cell of row k a
    Dirichlet pseudo-count :math:`\alpha K m_k`, :math:`m_k` the share of the answers' expected
    mass on class k (so ``alpha`` per cell when classes are balanced), so that an annotator
    seen a few times has no zero probabilities; proportional pseudo-counts keep rows the data
    make equal equal (a flat ``alpha`` makes thousands of uninformative annotators look
    informative).

    crowd-kit compatible: ``initial_error`` (in :meth:`fit`) and ``initial_error_strategy``
    start the first M-step from known confusions, ``"addition"`` adding them as counts,
    ``"assign"`` using them as they are; ``errors_`` (rows annotator and answered label,
    columns true label; the unsmoothed estimate from the final posteriors), ``priors_`` and
    ``loss_history_`` are crowd-kit's attributes. ``confusions_`` / ``prior_`` are the
    (smoothed) parameters that produced ``probas_``.

    ``stopping``: ``"loglik"`` (default) stops when the log-likelihood changes by less than
    ``tol``; ``"crowdkit"`` stops as crowd-kit 1.4 does, as soon as its per-answer objective
    (expected complete-data log-likelihood with the class prior counted once per *answer*,
    plus the posteriors' entropy, under the M-step that follows the E-step) fails to rise by
    ``tol``. That objective is not a bound EM must raise, so the rule often stops after 2-3
    iterations: an early-stopped EM, which is a regulariser on some crowds (one of the
    default's candidates, ``"ds_early"``).

    Dawid & Skene (1979), "Maximum likelihood estimation of observer error-rates using the EM
    algorithm", JRSS C 28(1).
    """

    def __init__(self, n_iter: int = 100, tol: float = 1e-5, initial_error_strategy: str | None = None,
                 alpha: float = 0.01, stopping: str = "loglik"):
        self.n_iter = n_iter
        self.tol = tol
        self.initial_error_strategy = initial_error_strategy
        self.alpha = alpha
        self.stopping = stopping

    def fit(self, answers: Any, gold: Any = None, initial_error: Any = None, *,
            true_labels: Any = None) -> Self:
        """Fit by EM; ``gold`` / ``true_labels`` clamp known items, ``initial_error`` (a
        crowd-kit error frame indexed by annotator and answered label, one column per true
        label) seeds the first M-step as ``initial_error_strategy`` says."""
        if self.stopping not in ("loglik", "crowdkit"):
            raise ValueError(f"stopping must be 'loglik' or 'crowdkit'; got {self.stopping!r}")
        if self.initial_error_strategy not in (None, "assign", "addition"):
            raise ValueError(
                f"initial_error_strategy must be None, 'assign' or 'addition'; got {self.initial_error_strategy!r}"
            )
        self._initial_error = initial_error
        try:
            return super().fit(answers, gold, true_labels=true_labels)
        finally:
            self._initial_error = None

    def fit_predict(self, answers: Any, gold: Any = None, initial_error: Any = None, *,
                    true_labels: Any = None) -> Any:
        return self.fit(answers, gold, initial_error, true_labels=true_labels).labels_

    def fit_predict_proba(self, answers: Any, gold: Any = None, initial_error: Any = None, *,
                          true_labels: Any = None) -> Any:
        return self.fit(answers, gold, initial_error, true_labels=true_labels).probas_

    def _m_step(self, counts: np.ndarray) -> np.ndarray:
        # Dirichlet pseudo-counts in proportion to each class's share of the answers' mass
        # (alpha per cell when classes are balanced): rows the data make proportional stay
        # equal, where a flat alpha would make thousands of uninformative annotators look
        # informative (crowd-kit's 30,000-answer overlap case)
        mass = counts.sum(axis=(0, 2))
        share = mass / mass.sum() if mass.sum() > 0 else np.full(len(mass), 1.0 / len(mass))
        pseudo = self.alpha * len(mass) * share
        cells = counts + pseudo[None, :, None]
        # as crowd-kit: the cells of labels the annotator has given are floored at 1e-10 before
        # the rows are normalised, and labels they never gave carry no mass (crowd-kit has no
        # such cells; the E-step never reads them). With alpha > 0 every cell already holds
        # more than the floor and this changes nothing; with alpha=0 the fit is crowd-kit's.
        used = counts.sum(axis=1, keepdims=True) > 0
        cells = np.where(used, np.maximum(cells, _FLOOR), cells)
        # a never-given label keeps a finite probability for a later answer (item_posterior)
        return np.where(cells > 0, normalize_rows(cells), _FLOOR)

    def _next_params(self, matrix: CountMatrix, data: Answers, posteriors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._m_step(matrix.confusion_counts(posteriors)), self._class_prior(data, posteriors)

    def _class_prior(self, data: Answers, posteriors: np.ndarray) -> np.ndarray:
        # floored as crowd-kit floors its prior: with alpha=0 a class no item leans to would
        # otherwise get log(0) and never come back
        return cast("np.ndarray", np.maximum(normalize_rows(posteriors.sum(axis=0) + self.alpha), _FLOOR))

    def _first_confusions(self, data: Answers, counts: np.ndarray) -> np.ndarray:
        self._given_errors: float | np.ndarray = 0.0
        if getattr(self, "_initial_error", None) is None or self.initial_error_strategy is None:
            return self._m_step(counts)
        known, given = _initial_error_array(data, self._initial_error)
        if self.initial_error_strategy == "addition":
            self._given_errors = given
            return self._m_step(counts + given)
        if not known.all():
            raise ValueError(
                "All the workers in data should be in initial_error: cannot find "
                f"{int((~known).sum())} annotators' error matrices in initial_error, e.g. "
                f"{data.annotator_ids[~known][0]!r}"
            )
        sums = given.sum(axis=-1)
        if (given <= 1.0).all() and not np.allclose(sums, 1.0):
            raise ValueError(
                "The sum of each worker's error matrix in initial_error should be 1.0 "
                "(for each annotator and true label, over the answered labels)"
            )
        return normalize_rows(np.maximum(given, _FLOOR))

    def _fit(self, data: Answers, gold_items: np.ndarray, gold_labels: np.ndarray, start: np.ndarray | None = None,
             matrix: CountMatrix | None = None) -> tuple[np.ndarray, np.ndarray]:
        # ``start``: posteriors to begin EM from (default: majority vote); ``matrix``: a
        # CountMatrix of ``data`` to reuse (ensembles fit several models on one matrix)
        matrix = CountMatrix(data) if matrix is None else matrix
        posteriors = majority_posteriors(data, gold_items, gold_labels) if start is None else start.copy()
        first_counts = matrix.confusion_counts(posteriors)
        if len(gold_items):
            # start skills from the gold answers (crowd vote only as a weak prior): from the
            # crowd alone, EM can settle where a colluding majority of bad annotators points
            on_gold = np.zeros_like(posteriors)
            on_gold[gold_items] = posteriors[gold_items]
            first_counts = matrix.confusion_counts(on_gold) + data.n_labels * normalize_rows(first_counts)
        previous = None
        self.n_iter_ = 0
        self.loss_history_ = []
        confusions = self._first_confusions(data, first_counts)
        prior = self._class_prior(data, posteriors)
        # n_iter=0 keeps the starting posteriors with the parameters they imply (crowd-kit)
        scores = matrix.item_scores(np.log(confusions)) + np.log(prior)
        loglik = softmax_rows(scores)[1]
        crowdkit_rule = self.stopping == "crowdkit"
        next_params: tuple[np.ndarray, np.ndarray] | None = None
        for iteration in range(self.n_iter):
            if iteration:
                if next_params is None:
                    next_params = self._next_params(matrix, data, posteriors)
                confusions, prior = next_params
                next_params = None
                # work in log space: products of many small probabilities underflow
                scores = matrix.item_scores(np.log(confusions)) + np.log(prior)
            posteriors, loglik = softmax_rows(scores)
            clamp_gold(posteriors, gold_items, gold_labels)
            self.n_iter_ += 1
            if crowdkit_rule:
                next_params = self._next_params(matrix, data, posteriors)
                loss = _crowdkit_objective(matrix, posteriors, *next_params) / data.n_answers
                self.loss_history_.append(loss)
                if previous is not None and loss - previous < self.tol:
                    break
                previous = loss
                continue
            self.loss_history_.append(loglik / data.n_answers)
            if previous is not None and abs(loglik - previous) < self.tol:
                break
            previous = loglik
        self.confusions_ = confusions
        self.prior_ = prior
        self.loglik_ = loglik
        self._scores = scores  # log prior + log likelihood per item (for tempering)
        # crowd-kit reports the maximum-likelihood parameters of the final posteriors (after
        # n_iter=0: of the start, initial errors included)
        if self.n_iter_:
            self._errors = normalize_rows(matrix.confusion_counts(posteriors))
        elif self.initial_error_strategy == "assign" and getattr(self, "_initial_error", None) is not None:
            self._errors = confusions
        else:
            self._errors = normalize_rows(first_counts + self._given_errors)
        self._priors = normalize_rows(posteriors.sum(axis=0))
        return posteriors, confusion_diagonal(confusions, prior)

    def _array_extras(self) -> None:
        self.errors_: Any
        self.errors_, self.priors_ = self._errors, self._priors

    def _frame_extras(self, pd: Any, items: Any, annotators: Any, labels: Any) -> None:
        n_annotators, n_labels = len(annotators), len(labels)
        rows = pd.MultiIndex.from_arrays(
            [np.repeat(annotators.to_numpy(), n_labels), np.tile(labels.to_numpy(), n_annotators)],
            names=[annotators.name, "label"],
        )
        # crowd-kit's layout: one row per (annotator, answered label), one column per true label
        errors = self._errors.transpose(0, 2, 1).reshape(n_annotators * n_labels, n_labels)
        self.errors_ = pd.DataFrame(errors, index=rows, columns=pd.Index(labels.to_numpy()))
        given = getattr(self, "_initial_error", None)
        if given is not None and len(given.index) == len(rows) and rows.isin(given.index).all():
            # rows in the order the caller gave them, as crowd-kit (which returns that frame)
            self.errors_ = self.errors_.reindex(given.index)
        self.priors_ = pd.Series(self._priors, index=labels, name="prior")

    def _set_empty_frames(self) -> None:
        import pandas as pd

        super()._set_empty_frames()
        self.errors_ = pd.DataFrame()
        self.priors_ = pd.Series(dtype=float, name="prior")
        self.loss_history_ = []


# crowd-kit's floor (its _EPS) on expected counts and on the class prior: log(0) would veto a
# class outright, and so does a floor far below crowd-kit's (a probability of 1e-300, log -691,
# outweighs about thirty unanimous answers); a cell the data leave empty holds 1e-10 expected
# answers, as in crowd-kit
_FLOOR = 1e-10


def _crowdkit_objective(matrix: CountMatrix, posteriors: np.ndarray, confusions: np.ndarray,
                        prior: np.ndarray) -> float:
    """crowd-kit 1.4's DawidSkene loss (``_evidence_lower_bound``, before its division by the
    number of answers): ``sum_answers sum_k P(y_i = k) (log pi_j[k, l] + log p_k)`` plus the
    posteriors' entropy; the prior term is summed per answer, as crowd-kit sums it."""
    counts = matrix.confusion_counts(posteriors)
    expected = float((counts * np.log(np.maximum(confusions, 1e-10))).sum())
    expected += float(counts.sum(axis=(0, 2)) @ np.log(np.maximum(prior, 1e-10)))
    entropy = -float((posteriors * np.log(np.maximum(posteriors, 1e-10))).sum())
    return expected + entropy


def _initial_error_array(data: Answers, initial_error: Any) -> tuple[np.ndarray, np.ndarray]:
    """crowd-kit's initial error frame (index annotator and answered label, columns true
    labels) as ``(known, counts)``: ``counts[j, k, l]`` aligned with ``data``; annotators
    absent from the frame get zeros and ``known[j] = False``; rows of unknown annotators are
    ignored."""
    index = getattr(initial_error, "index", None)
    if index is None or getattr(index, "nlevels", 1) != 2:
        raise ValueError(
            "initial_error must be a pandas DataFrame indexed by (worker, label), one column "
            f"per true label; got {type(initial_error).__name__}"
        )
    annotator_codes = _codes_or_missing(data.annotator_ids, index.get_level_values(0).to_numpy())
    observed = _codes_or_missing(data.label_ids, index.get_level_values(1).to_numpy())
    # columns that are no label of the data (e.g. added by a stray pandas assignment) are ignored
    true_all = _codes_or_missing(data.label_ids, np.asarray(initial_error.columns, dtype=object))
    columns = np.flatnonzero(true_all >= 0)
    true = true_all[columns]
    values = np.asarray(initial_error.iloc[:, columns].to_numpy(), dtype=np.float64)
    keep = (annotator_codes >= 0) & (observed >= 0)
    counts = np.zeros((data.n_annotators, data.n_labels, data.n_labels))
    rows = np.repeat(np.flatnonzero(keep), len(true))
    cols = np.tile(np.arange(len(true)), int(keep.sum()))
    np.add.at(counts, (annotator_codes[rows], true[cols], observed[rows]), values[rows, cols])
    known = np.zeros(data.n_annotators, dtype=bool)
    known[annotator_codes[keep]] = True
    return known, counts


def _codes_or_missing(vocab: np.ndarray, values: np.ndarray) -> np.ndarray:
    # one step per row of the (small) initial error frame, not per answer
    lookup = {v: i for i, v in enumerate(vocab.tolist())}

    def code(value: Any) -> int:
        try:
            return lookup.get(value, -1)
        except TypeError:  # unhashable
            return -1

    return np.fromiter((code(v) for v in values.tolist()), dtype=np.int64, count=len(values))


class OneCoinDawidSkene(DawidSkene):
    r"""One-coin Dawid-Skene: one accuracy :math:`s_j` per annotator, errors spread evenly,
    :math:`\pi_j[k, l] = s_j` if :math:`l = k` else :math:`(1 - s_j)/(K - 1)`.

    EM as in :class:`DawidSkene`; ``alpha`` pseudo-counts smooth :math:`s_j` toward 1/2.
    Fewer parameters than full confusion matrices, so it suits annotators with few answers.

    Zhang, Chen, Zhou & Jordan (2014), "Spectral methods meet EM: a provably optimal
    algorithm for crowdsourcing", NeurIPS.
    """

    def _m_step(self, counts: np.ndarray) -> np.ndarray:
        n_labels = counts.shape[-1]
        correct = np.trace(counts, axis1=1, axis2=2)
        total = counts.sum(axis=(1, 2))
        skill = (correct + self.alpha) / (total + 2 * self.alpha)
        skill = np.clip(skill, 1e-6, 1 - 1e-6)
        off = (1 - skill) / max(n_labels - 1, 1)
        eye = np.eye(n_labels)
        return cast("np.ndarray", off[:, None, None] * (1 - eye) + skill[:, None, None] * eye)


def item_posterior(
    annotators: np.ndarray,
    labels: np.ndarray,
    confusions: np.ndarray,
    prior: np.ndarray,
) -> np.ndarray:
    r"""Posterior over the true label of ONE item from its answers, in O(answers on the item):

    .. math:: P(y = k \mid L) \propto p_k \prod_a \pi_{j_a}[k, l_a]

    ``annotators`` / ``labels``: integer codes of the item's answers; ``confusions``:
    ``(n_annotators, n_labels, n_labels)`` rows true class, columns answered label (e.g. a
    fitted model's ``confusions_``, or :func:`goldlabel.quality.confusions_from_skills` for
    annotators known only by an accuracy); ``prior``: class prior ``(n_labels,)``.
    An item with no answers gets the prior.
    """
    annotators = np.asarray(annotators, dtype=np.int64).ravel()
    labels = np.asarray(labels, dtype=np.int64).ravel()
    prior = np.asarray(prior, dtype=np.float64)
    if len(annotators) != len(labels):
        raise ValueError(f"annotators and labels differ in length: {len(annotators)} vs {len(labels)}")
    # work in log space: products of many small probabilities underflow
    with np.errstate(divide="ignore"):
        scores = np.log(prior) + np.log(confusions[annotators, :, labels]).sum(axis=0)
    return posterior_from_scores(scores, prior)


def posterior_from_scores(scores: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """The end of :func:`item_posterior`, shared with the server's per-answer path (which
    builds ``scores`` = log prior + summed answer log-likelihoods from cached tables): the
    normalized ``exp(scores)``, or the normalized ``prior`` when no class has a finite score."""
    top = scores.max()
    # a finite maximum means some score is finite: the full check only when it is not
    if not math.isfinite(top) and not np.isfinite(scores).any():
        return normalize_rows(np.array(prior, dtype=np.float64))
    posterior = np.exp(scores - top)
    return cast("np.ndarray", posterior / posterior.sum())
