"""Majority vote and its skill-weighted relatives: Wawa, GoldMajorityVote, ZeroBasedSkill."""

from __future__ import annotations

from typing import Any

import numpy as np

from .answers import Answers, subset
from .categorical import (
    CategoricalEstimator,
    _coerce_answers,
    _one_gold,
    clamp_gold,
    normalize_rows,
    vote_counts,
)

__all__ = ["GoldMajorityVote", "MajorityVote", "Wawa", "ZeroBasedSkill"]

_ON_MISSING = ("error", "ignore", "value")


def _agreement(data: Answers, labels: np.ndarray) -> np.ndarray:
    """Share of each annotator's answers that equal the item's label."""
    hits = np.bincount(data.annotator, weights=(data.label == labels[data.item]).astype(float),
                       minlength=data.n_annotators)
    totals = np.bincount(data.annotator, minlength=data.n_annotators)
    return np.divide(hits, totals, out=np.zeros(data.n_annotators), where=totals > 0)


def annotator_weights(data: Answers, skills: Any, on_missing_skill: str = "error",
                      default_skill: float | None = None) -> np.ndarray:
    """One weight per annotator code of ``data`` from ``skills``: a mapping or pandas Series
    annotator -> skill, or an array aligned with ``data.annotator_ids``.

    Annotators without a skill: ``on_missing_skill="error"`` raises ValueError,
    ``"value"`` gives them ``default_skill``, ``"ignore"`` gives them NaN (callers drop
    their answers)."""
    if on_missing_skill not in _ON_MISSING:
        raise ValueError(f"on_missing_skill must be one of {', '.join(map(repr, _ON_MISSING))}; "
                         f"got {on_missing_skill!r}")
    if hasattr(skills, "items"):
        lookup = dict(skills.items())
        # one step per annotator, not per answer
        weights = np.array([lookup.get(a, np.nan) for a in data.annotator_ids.tolist()], dtype=np.float64)
    else:
        weights = np.asarray(skills, dtype=np.float64).ravel()
        if len(weights) != data.n_annotators:
            raise ValueError(f"skills must have one value per annotator ({data.n_annotators}), got {len(weights)}")
        weights = weights.copy()
    missing = np.isnan(weights)
    if missing.any():
        if on_missing_skill == "error":
            raise ValueError(
                f"no skill for {int(missing.sum())} annotators, e.g. {data.annotator_ids[missing][0]!r}; "
                "pass on_missing_skill='ignore' or 'value' (with default_skill)"
            )
        if on_missing_skill == "value":
            if default_skill is None:
                raise ValueError("on_missing_skill='value' needs default_skill")
            weights[missing] = default_skill
    return weights


class _SortedSkills(CategoricalEstimator):
    def _frame_extras(self, pd: Any, items: Any, annotators: Any, labels: Any) -> None:
        # crowd-kit computes these skills with a sorted groupby: annotators in sorted order
        try:
            self.skills_ = self.skills_.sort_index()
        except TypeError:  # annotator ids that do not sort keep their order
            pass


class MajorityVote(_SortedSkills):
    """Majority vote: ``P(y_i = k) = n_ik / n_i``, the share of item i's answers saying k;
    with ``skills`` (in :meth:`fit`), the share of skill-weighted votes.

    Ties go to the lowest label. ``skills_`` is each annotator's agreement with the result.
    Annotators absent from ``skills`` are handled as ``on_missing_skill`` says: ``"error"``
    (ValueError), ``"ignore"`` (their answers are dropped) or ``"value"`` (weight
    ``default_skill``), as in crowd-kit.
    """

    def __init__(self, on_missing_skill: str = "error", default_skill: float | None = None):
        self.on_missing_skill = on_missing_skill
        self.default_skill = default_skill

    def fit(self, answers: Any, gold: Any = None, skills: Any = None, *, true_labels: Any = None) -> MajorityVote:
        self._skills = skills
        try:
            return super().fit(answers, gold, true_labels=true_labels)
        finally:
            self._skills = None

    def fit_predict(self, answers: Any, gold: Any = None, skills: Any = None, *, true_labels: Any = None) -> Any:
        return self.fit(answers, gold, skills, true_labels=true_labels).labels_

    def fit_predict_proba(self, answers: Any, gold: Any = None, skills: Any = None, *,
                          true_labels: Any = None) -> Any:
        return self.fit(answers, gold, skills, true_labels=true_labels).probas_

    def _select(self, data: Answers) -> Answers:
        self._weights = None
        if getattr(self, "_skills", None) is None:
            return data
        weights = annotator_weights(data, self._skills, self.on_missing_skill, self.default_skill)
        known = ~np.isnan(weights)
        if not known.all():
            if not known.any():
                raise ValueError("no annotator has a skill: every answer would be ignored")
            kept = known[data.annotator]
            data, weights = subset(data, kept), weights[np.unique(data.annotator[kept])]
        self._weights = weights
        return data

    def _fit(self, data: Answers, gold_items: np.ndarray, gold_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        weights = getattr(self, "_weights", None)  # set by fit; None when _fit is called directly
        probas = clamp_gold(normalize_rows(vote_counts(data, weights)), gold_items, gold_labels)
        return probas, _agreement(data, probas.argmax(axis=1))


class _SkillWeighted(_SortedSkills):
    """Estimators that learn annotator skills, then vote with them; ``predict`` /
    ``predict_proba`` apply the learned ``skills_`` to (new) answers of known annotators."""

    def predict(self, answers: Any) -> Any:
        return self._apply(answers).labels_

    def predict_proba(self, answers: Any) -> Any:
        return self._apply(answers).probas_

    def _apply(self, answers: Any) -> _SkillWeighted:
        if not hasattr(self, "skills_"):
            raise ValueError(f"{type(self).__name__} is not fitted: call fit first")
        skills: Any = self.skills_
        if not hasattr(skills, "items"):
            skills = dict(zip(self.annotator_ids_.tolist(), np.asarray(skills).tolist()))
        vote = MajorityVote().fit(answers, skills=skills)
        self.labels_, self.probas_ = vote.labels_, vote.probas_
        for name in ("item_ids_", "label_ids_", "label_codes_", "n_answers_"):
            if hasattr(vote, name):
                setattr(self, name, getattr(vote, name))
        return self


class Wawa(_SkillWeighted):
    """Worker agreement with aggregate (Wawa): weight each annotator by their agreement with
    majority vote, then vote again, ``P(y_i = k) ∝ sum_j w_j [l_ij = k]``.

    Appen (Figure Eight) "trust"-weighted vote; as in crowd-kit's ``Wawa``. ``predict`` /
    ``predict_proba`` vote on new answers with the learned weights.
    """

    def _fit(self, data: Answers, gold_items: np.ndarray, gold_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        first = clamp_gold(normalize_rows(vote_counts(data)), gold_items, gold_labels)
        weights = _agreement(data, first.argmax(axis=1))
        probas = clamp_gold(normalize_rows(vote_counts(data, weights)), gold_items, gold_labels)
        return probas, weights


class ZeroBasedSkill(_SkillWeighted):
    """Zero-based skill: start every annotator at skill ``1/K + eps``, then ``n_iter`` times
    vote with the skills and move each skill toward the annotator's agreement with the vote,
    ``s_j <- s_j + lr (a_j - s_j)``, the learning rate ``lr_init`` multiplied by
    ``lr_reduce_factor`` every ``lr_steps_to_reduce`` iterations. As crowd-kit's
    ``ZeroBasedSkill``; each iteration is one vectorized weighted vote."""

    def __init__(self, n_iter: int = 100, lr_init: float = 1.0, lr_steps_to_reduce: int = 20,
                 lr_reduce_factor: float = 0.5, eps: float = 1e-5):
        self.n_iter = n_iter
        self.lr_init = lr_init
        self.lr_steps_to_reduce = lr_steps_to_reduce
        self.lr_reduce_factor = lr_reduce_factor
        self.eps = eps

    def _fit(self, data: Answers, gold_items: np.ndarray, gold_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n_present = len(np.unique(data.label))
        skills = np.full(data.n_annotators, 1.0 / n_present + self.eps)
        rate = self.lr_init
        for iteration in range(1, self.n_iter + 1):
            if iteration % self.lr_steps_to_reduce == 0:
                rate *= self.lr_reduce_factor
            labels = clamp_gold(normalize_rows(vote_counts(data, skills)), gold_items, gold_labels).argmax(axis=1)
            skills = skills + rate * (_agreement(data, labels) - skills)
        probas = clamp_gold(normalize_rows(vote_counts(data, skills)), gold_items, gold_labels)
        return probas, skills


class GoldMajorityVote(_SkillWeighted):
    """Majority vote weighted by each annotator's accuracy on gold items.

    ``fit(answers, true_labels)`` learns ``skills_`` (annotators who answered no gold item
    get none); ``predict`` / ``predict_proba`` (and ``fit_predict``) vote with them. As
    crowd-kit's ``GoldMajorityVote``.
    """

    def fit(self, answers: Any, gold: Any = None, *, true_labels: Any = None) -> GoldMajorityVote:
        from .answers import encode_gold

        gold = _one_gold(gold, true_labels)
        if gold is None:
            raise ValueError("GoldMajorityVote needs gold labels (true_labels)")
        data, frame_columns = _coerce_answers(answers)
        if data.n_answers == 0:
            encode_gold(data, gold)  # still checks the gold's columns
            self._set_empty_frames()
            return self
        gold_items, gold_labels = encode_gold(data, gold)
        # an item may have several acceptable labels (gold given as a Series with repeated items)
        truth = np.zeros((data.n_items, data.n_labels), dtype=bool)
        truth[gold_items, gold_labels] = True
        on_gold = truth[data.item].any(axis=1)
        correct = truth[data.item, data.label]
        hits = np.bincount(data.annotator[on_gold], weights=correct[on_gold].astype(float),
                           minlength=data.n_annotators)
        totals = np.bincount(data.annotator[on_gold], minlength=data.n_annotators)
        seen = totals > 0
        skills = hits[seen] / totals[seen]
        self.annotator_ids_ = data.annotator_ids[seen]
        if frame_columns is None:
            self.skills_ = skills
        else:
            import pandas as pd

            index = pd.Index(self.annotator_ids_, name=frame_columns[1])
            self.skills_ = pd.Series(skills, index=index, name="skill").sort_index()
        return self

    def fit_predict(self, answers: Any, gold: Any = None, *, true_labels: Any = None) -> Any:
        return self.fit(answers, gold, true_labels=true_labels).predict(answers)

    def fit_predict_proba(self, answers: Any, gold: Any = None, *, true_labels: Any = None) -> Any:
        return self.fit(answers, gold, true_labels=true_labels).predict_proba(answers)

    def _apply(self, answers: Any) -> GoldMajorityVote:
        data, _ = _coerce_answers(answers)
        if data.n_answers == 0 and hasattr(self, "skills_") and len(self.skills_) == 0:
            self._set_empty_frames()
            return self
        return super()._apply(answers)  # type: ignore[return-value]
