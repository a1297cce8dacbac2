"""Consensus (value + confidence) for the question kinds other than ``choice``:
``multi_choice``, ``rating``, ``text``, ``ranking``, ``spans`` and ``boxes``.

Two paths, as for choice questions (see :mod:`goldlabel.services.quality`):

* per answer, inside the submit transaction: :func:`item_rows` computes every non-choice
  question's consensus over ONE item's answers (O(answers on the item)) with the pure
  per-kind functions (:func:`consensus_for` dispatches). Annotator skills are the
  learned one-coin accuracies where the re-fit stored them (multi_choice, ranking, spans),
  else the server's ``default_annotator_accuracy``.
* in the full re-fit: :func:`refit_kinds` runs the library estimators
  (:mod:`goldlabel.quality`) once per question over all the project's answers, vectorized
  across items (no Python loop per item or per answer in the math; parsing the JSON answers
  and building the output rows is the edge).

Confidence per kind (the stopping rule is the choice rule: an item is final when the
smallest confidence over its questions reaches ``target_confidence`` and ``overlap_min`` is
met; needs_review at ``overlap_max``). ``logit(p_j)`` is an annotator's one-coin weight.

* multi_choice: per label, P(label applies) = sigmoid(sum_j ±logit(p_j)) (+ for a tick,
  - for no tick; prior 1/2). Value: labels with P >= 0.5, trimmed to ``max_selections`` /
  filled to ``min_selections`` by P. Confidence: min over labels of P (selected) or 1 - P.
* rating: x_j ~ N(mu, sigma^2 / w_j), flat prior on mu, sigma^2 ~ scaled-Inv-chi^2(2, tol^2).
  mu | answers ~ Student-t(1 + n, xbar_w, s^2 / sum w). Value: xbar_w snapped to the scale's
  grid. Confidence: P(|mu - value| <= tol), tol = ``rating_tolerance`` or half a step (a
  twentieth of the range for a continuous scale).
* text: the medoid answer (library ``TextMedoid``); an answer agrees with it when the cosine
  similarity of their n-gram bags is >= ``text_similarity`` (or the strings are equal).
  Confidence: sigmoid(sum_agree logit(p_j) - sum_disagree logit(p_j)).
* ranking: pair (a, b) gets L_ab = sum_j ±logit(p_j) (+ when j ranked a above b; tied: 0).
  Value: candidates by weighted Borda score sum_b L_ab. Confidence: min over all pairs of the
  consensus order of sigmoid(L_ab), the probability of its weakest ordered pair.
* spans: the text is cut into elementary segments at every span boundary any annotator drew;
  each segment gets a one-coin posterior over {outside, label_1..label_K}. Value: maximal
  runs of segments whose most probable class is a label. Confidence: mean of
  max_c P(class c) over the characters any annotator marked (length-weighted).
* boxes: boxes clustered by IoU >= 0.5 (library ``BoxDawidSkene`` clustering); a cluster
  exists with P = sigmoid(sum_drew logit(p_j) - sum_not logit(p_j)). Value: the mean box of
  every cluster with P >= 0.5, with its majority label. Confidence: min over clusters of
  max(P, 1 - P).

Empty answers are information: an item where nobody marked a span or drew a box gets the
posterior of "nothing here" from one vote per answer (for boxes, and multi_choice labels
nobody ticked, 0.70, 0.845, 0.927, 0.967 at the default accuracy, as for a choice question;
spans have K + 1 classes, so the same answers give more).

The re-fit uses the learned accuracies (or reliabilities, recalls and false-box rates) but a
prior of 1/2 where an estimator learns a prevalence by maximum likelihood (multi_choice,
boxes): on a small project that prevalence collapses to 0 or 1 and outvotes the answers.
User documentation: docs/concepts.md, "Other question kinds".

The code of each kind (its per-answer function and its re-fit) is in
:mod:`goldlabel.services.consensus`, one module per kind; this module dispatches
to them, re-fits a project, and re-exports the per-kind functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from goldlabel.domain.label_schema import LabelSchema, Question
from goldlabel.quality.keypoints import keypoints_consensus, refit_keypoints
from goldlabel.quality.polygons import polygons_consensus, refit_polygons
from goldlabel.services.consensus.boxes import _refit_boxes, boxes_consensus
from goldlabel.services.consensus.multi_choice import _refit_multi_choice, multi_choice_consensus
from goldlabel.services.consensus.ranking import _refit_ranking, ranking_consensus
from goldlabel.services.consensus.rating import _refit_rating, rating_consensus, rating_tolerance
from goldlabel.services.consensus.spans import _refit_spans, spans_consensus
from goldlabel.services.consensus.text import DEFAULT_TEXT_SIMILARITY, _refit_text, text_consensus

__all__ = [
    "KINDS", "RefitResult", "boxes_consensus", "consensus_for", "item_rows", "load_answers",
    "multi_choice_consensus", "ranking_consensus", "rating_consensus", "rating_tolerance",
    "refit_kinds", "refit_question", "spans_consensus", "text_consensus",
]

#: the kinds this module aggregates (choice stays in services.posterior)
KINDS = ("multi_choice", "rating", "text", "ranking", "spans", "boxes", "polygons", "keypoints")
#: kinds whose per-answer update reads learned one-coin accuracies stored by the re-fit
LEARNED_SKILL_KINDS = ("multi_choice", "ranking", "spans")


# ================================================================ dispatch (per answer)


def consensus_for(question: Question, values: Sequence[Any], accuracy: Any,
                  settings: Mapping[str, Any] | None = None) -> tuple[Any, float]:
    """(value, confidence) of one question over one item's answer values (non-null)."""
    settings = settings or {}
    kind = question.kind
    if kind == "multi_choice":
        return multi_choice_consensus(question, values, accuracy)
    if kind == "rating":
        return rating_consensus(question, values, settings)  # type: ignore[arg-type]
    if kind == "text":
        return text_consensus(values, accuracy, settings.get("text_similarity") or DEFAULT_TEXT_SIMILARITY)
    if kind == "ranking":
        return ranking_consensus(question, values, accuracy)
    if kind == "spans":
        return spans_consensus(question, values, accuracy)
    if kind == "boxes":
        return boxes_consensus(question, values, accuracy)
    if kind == "polygons":
        return polygons_consensus(question, values, accuracy)
    if kind == "keypoints":
        return keypoints_consensus(question, values, accuracy)
    raise ValueError(f"no consensus for question kind {kind!r}")


def item_rows(ctx: Any, conn: Any, project: dict, item_answers: list[dict],
              now: int, pooled: Any = None) -> tuple[list[dict], float]:
    """Consensus rows for one item's non-choice questions and their smallest confidence
    (NaN when none was answered). Same row shape as the choice rows. ``pooled``: the project's
    knowledge of unknown annotators (services/cold_start.py ``Pooled``), None for the defaults."""
    from goldlabel.storage import quality as quality_store

    schema: LabelSchema = ctx.get_schema(project)
    settings = project.get("settings") or {}
    rows: list[dict] = []
    smallest = np.nan
    for q in schema.questions:
        if q.kind not in KINDS:
            continue
        default = ctx.settings.default_annotator_accuracy
        q_settings = settings
        if pooled is not None:
            default = pooled.accuracy.get(q.name, default)
            if q.name in pooled.rating_sd:
                q_settings = {**settings, "rating_prior_sd": pooled.rating_sd[q.name]}
        pairs = [(a["annotator_id"], a["value"][q.name]) for a in item_answers
                 if (a.get("value") or {}).get(q.name) is not None]
        if not pairs:
            continue
        ids = [p[0] for p in pairs]
        accuracy = np.full(len(ids), default)
        if q.kind in LEARNED_SKILL_KINDS:
            skills = quality_store.fetch_skills(conn, project["id"], q.name, ids)
            accuracy = np.array([skills[a]["accuracy"] if a in skills and skills[a]["accuracy"] is not None
                                 else default for a in ids], dtype=np.float64)
        value, confidence = consensus_for(q, [p[1] for p in pairs], accuracy, q_settings)
        smallest = confidence if np.isnan(smallest) else min(smallest, confidence)
        rows.append({
            "question": q.name,
            "value": value,
            "confidence": confidence,
            "method": "posterior",
            "contributions": {str(a): v for a, v in pairs},
            "updated_at": now,
        })
    return rows, smallest


# ================================================================ full re-fit (vectorized)


@dataclass
class RefitResult:
    """One question's re-fit: per item id its value and confidence; optional skill rows."""

    question: str
    method: str
    item_ids: np.ndarray
    values: list
    confidences: np.ndarray
    skills: list[dict] | None = None
    n_answers: int = 0
    summary: dict = field(default_factory=dict)


def load_answers(conn: Any, project_id: int, schema: LabelSchema,
                 page: int = 5000) -> dict[str, tuple[np.ndarray, np.ndarray, list]]:
    """(item_ids, annotator_ids, values) per non-choice question, over all the project's answers."""
    from goldlabel.storage import items as item_store

    names = [q.name for q in schema.questions if q.kind in KINDS]
    out: dict[str, tuple[list, list, list]] = {n: ([], [], []) for n in names}
    if not names:
        return {}
    after = 0
    while True:
        batch = item_store.list_project_answers(conn, project_id, after, page)
        if not batch:
            break
        after = batch[-1]["id"]
        for a in batch:
            value = a["value"] or {}
            for n in names:
                v = value.get(n)
                if v is not None:
                    out[n][0].append(a["item_id"])
                    out[n][1].append(a["annotator_id"])
                    out[n][2].append(v)
    return {n: (np.asarray(i, np.int64), np.asarray(j, np.int64), v) for n, (i, j, v) in out.items() if v}


def _codes(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniq, inverse = np.unique(ids, return_inverse=True)
    return uniq, inverse.astype(np.int64)



_REFIT = {
    "multi_choice": _refit_multi_choice,
    "rating": _refit_rating,
    "text": _refit_text,
    "ranking": _refit_ranking,
    "spans": _refit_spans,
    "boxes": _refit_boxes,
    "polygons": refit_polygons,
    "keypoints": refit_keypoints,
}


def refit_question(question: Question, item_ids: np.ndarray, annotator_ids: np.ndarray,
                   values: list, *, default_accuracy: float = 0.7,
                   settings: Mapping[str, Any] | None = None, now: int = 0) -> RefitResult:
    """Re-fit one non-choice question over all its answers (long format, database ids)."""
    items, item = _codes(np.asarray(item_ids, np.int64))
    annotators, annotator = _codes(np.asarray(annotator_ids, np.int64))
    method, out_values, confidence, skills = _REFIT[question.kind](
        question, items, item, annotator, annotators, values, default_accuracy, settings or {}, now)
    return RefitResult(question.name, method, items, out_values, np.asarray(confidence, np.float64),
                       skills, len(values),
                       {"method": method, "answers": len(values), "items": len(items),
                        "annotators": len(annotators)})


def refit_kinds(schema: LabelSchema, loaded: Mapping[str, tuple[np.ndarray, np.ndarray, list]], *,
                default_accuracy: float, settings: Mapping[str, Any] | None, now: int,
                pooled: Any = None) -> list[RefitResult]:
    """Re-fit every non-choice question that has answers (``loaded`` from :func:`load_answers`);
    ``pooled``: the project's knowledge of unknown annotators, as the per-answer update uses it."""
    out = []
    for q in schema.questions:
        if q.kind in KINDS and q.name in loaded:
            item_ids, annotator_ids, values = loaded[q.name]
            accuracy, q_settings = default_accuracy, dict(settings or {})
            if pooled is not None:
                accuracy = pooled.accuracy.get(q.name, accuracy)
                if q.name in pooled.rating_sd:
                    q_settings["rating_prior_sd"] = pooled.rating_sd[q.name]
            out.append(refit_question(q, item_ids, annotator_ids, values,
                                      default_accuracy=accuracy, settings=q_settings, now=now))
    return out
