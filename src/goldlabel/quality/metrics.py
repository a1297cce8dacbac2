"""crowd-kit's data and annotator metrics on answer frames: ``consistency``, ``uncertainty``,
``accuracy_on_aggregates`` (``crowdkit.metrics``), vectorized with numpy.

All take a pandas DataFrame with task/worker/label columns (pandas is only imported here, by
callers that have frames). Skills are a Series annotator -> probability of a right answer,
read under the one-coin model: an answer l gets probability ``s`` for label l and
``(1 - s) / (K - 1)`` for each other label.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .answers import MissingColumnError
from .utils import get_accuracy

__all__ = ["MissingSkillError", "accuracy_on_aggregates", "consistency", "entropy_threshold", "uncertainty"]


class MissingSkillError(ValueError, AssertionError):
    """Some annotators have no skill. A ValueError, and an AssertionError (what crowd-kit
    raises for it)."""


def _columns(answers: Any) -> None:
    if not hasattr(answers, "columns"):
        raise TypeError(f"expected a pandas DataFrame with task, worker, label; got {type(answers).__name__}")
    for name in ("task", "worker", "label"):
        if name not in answers.columns:
            raise MissingColumnError(f"missing column {name!r}; found columns: "
                                     f"{', '.join(map(repr, map(str, answers.columns)))}")


def _label_contributions(answers: Any, skills: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(contributions (n_answers, K), label codes, label values)`` under the one-coin model."""
    import pandas as pd

    codes, values = pd.factorize(answers["label"], sort=False)
    n_labels = len(values)
    if skills is None:
        skill = np.ones(len(answers))
    else:
        skill = answers["worker"].map(skills).to_numpy(dtype=np.float64)
        missing = np.isnan(skill)
        if missing.any():
            unknown = sorted(set(answers["worker"].to_numpy()[missing].tolist()), key=str)
            raise MissingSkillError(f"no skill for {len(unknown)} annotators: {unknown[:10]!r}")
    off = (1.0 - skill) / (n_labels - 1) if n_labels > 1 else np.zeros_like(skill)
    contributions = np.repeat(off[:, None], n_labels, axis=1)
    contributions[np.arange(len(answers)), codes] = skill
    return contributions, codes, np.asarray(values, dtype=object)


def _skills_of(aggregator: Any, answers: Any) -> Any:
    skills = getattr(aggregator, "skills_", None)
    if skills is None:
        raise ValueError(f"{type(aggregator).__name__} learns no skills_: pass workers_skills")
    return skills


def consistency(answers: Any, workers_skills: Any = None, aggregator: Any = None, by_task: bool = False) -> Any:
    """Mean (or, ``by_task``, per task) posterior probability of the aggregated label under
    the one-coin model with ``workers_skills`` (default: the aggregator's ``skills_``;
    aggregator default: majority vote)."""
    import pandas as pd

    from .majority_vote import MajorityVote

    _columns(answers)
    aggregator = MajorityVote() if aggregator is None else aggregator
    aggregated = aggregator.fit_predict(answers)
    skills = _skills_of(aggregator, answers) if workers_skills is None else workers_skills
    contributions, _, values = _label_contributions(answers, skills)
    task_codes, tasks = pd.factorize(answers["task"], sort=True)
    # product of each task's answers, in answer order: sort by task, multiply per run
    order = np.argsort(task_codes, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(task_codes[order]) != 0])
    products = np.multiply.reduceat(contributions[order], starts, axis=0)
    totals = products.sum(axis=1)
    label_index = {v: k for k, v in enumerate(values.tolist())}
    chosen = aggregated.reindex(tasks).to_numpy()
    columns = np.array([label_index.get(v, -1) for v in chosen.tolist()])  # one step per task
    picked = np.where(columns >= 0, products[np.arange(len(tasks)), np.maximum(columns, 0)], 0.0)
    result = np.divide(picked, totals, out=np.zeros(len(tasks)), where=totals != 0)
    series = pd.Series(result, index=pd.Index(tasks, name="task"))
    return series if by_task else float(series.mean())


def uncertainty(answers: Any, workers_skills: Any = None, aggregator: Any = None, compute_by: str = "task",
                aggregate: bool = True) -> Any:
    """Entropy of the skill-weighted label distribution per task (or per ``compute_by``
    column, e.g. ``"worker"``); the mean when ``aggregate``. Without skills every answer
    counts 1; with ``aggregator`` (and no skills), its ``skills_`` after fitting."""
    import pandas as pd

    _columns(answers)
    if workers_skills is None and aggregator is not None:
        aggregator.fit(answers)
        workers_skills = _skills_of(aggregator, answers)
    groups_column = answers[compute_by]  # a KeyError for an unknown column, as crowd-kit
    contributions, _, values = _label_contributions(answers, workers_skills)
    group_codes, groups = pd.factorize(groups_column, sort=True)
    n_groups, n_labels = len(groups), len(values)
    flat = np.bincount(np.repeat(group_codes * n_labels, n_labels) + np.tile(np.arange(n_labels), len(answers)),
                       weights=contributions.ravel(), minlength=n_groups * n_labels)
    sums = flat.reshape(n_groups, n_labels)
    totals = sums.sum(axis=1, keepdims=True)
    p = np.divide(sums, totals, out=np.full_like(sums, 1.0 / max(n_labels, 1)), where=totals > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    entropies = pd.Series(terms.sum(axis=1), index=pd.Index(groups, name=compute_by), name=compute_by)
    return float(entropies.mean()) if aggregate else entropies


def accuracy_on_aggregates(answers: Any, aggregator: Any = None, aggregates: Any = None, by: str | None = None) -> Any:
    """Share of answers equal to the aggregated label (``aggregates``, or the fitted
    ``aggregator``'s labels, default majority vote), overall or per ``by`` column."""
    from .majority_vote import MajorityVote

    if aggregates is None:
        aggregates = (MajorityVote() if aggregator is None else aggregator).fit_predict(answers)
    return get_accuracy(answers, aggregates, by=by)


def entropy_threshold(answers: Any, workers_skills: Any = None, percentile: float = 10,
                      min_answers: int = 2) -> Any:
    """The answers without those of annotators whose answer entropy (:func:`uncertainty` per
    annotator) is at or below the ``percentile``-th percentile, among annotators with at
    least ``min_answers`` answers: an annotator who always gives the same answer is likely
    clicking one button. Warns (UserWarning) when half the answers or more are removed.
    As crowd-kit's ``entropy_threshold``."""
    import warnings

    _columns(answers)
    counts = answers.groupby("worker")["label"].count()
    eligible = answers[answers["worker"].isin(counts.index[counts >= min_answers])]
    if len(eligible) == 0:
        return answers.copy(deep=False)
    entropies = uncertainty(eligible, workers_skills, compute_by="worker", aggregate=False)
    cutoff = np.percentile(entropies.to_numpy(), percentile)
    removed = entropies.index[entropies.to_numpy() <= cutoff]
    kept = answers[~answers["worker"].isin(removed)]
    if len(kept) <= len(answers) // 2:
        warnings.warn("Removed >= 1/2 of answers with entropy_threshold. This might lead to poor annotation "
                      "quality. Try decreasing percentile or min_answers.", UserWarning, stacklevel=2)
    return kept
