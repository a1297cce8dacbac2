"""Consensus (value + confidence) for the question kinds other than ``choice``:
``multi_choice``, ``rating``, ``text``, ``ranking``, ``spans`` and ``boxes``.

Two paths, as for choice questions (see :mod:`goldlabel.services.quality`):

* per answer, inside the submit transaction: :func:`item_rows` computes every non-choice
  question's consensus over ONE item's answers (O(answers on the item)) with the pure
  per-kind functions below (:func:`consensus_for` dispatches). Annotator skills are the
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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse, special

from goldlabel.domain.label_schema import LabelSchema, Question, RatingQuestion
from goldlabel.quality import boxes as box_lib
from goldlabel.quality import spans as span_lib
from goldlabel.quality import text as text_lib
from goldlabel.quality.multi_choice import MultiChoiceDawidSkene, encode_multi_choice
from goldlabel.quality.ranking import CrowdBT
from goldlabel.quality.ratings import RobustRating

__all__ = [
    "KINDS", "RefitResult", "boxes_consensus", "consensus_for", "item_rows", "load_answers",
    "multi_choice_consensus", "ranking_consensus", "rating_consensus", "rating_tolerance",
    "refit_kinds", "refit_question", "spans_consensus", "text_consensus",
]

#: the kinds this module aggregates (choice stays in services.posterior)
KINDS = ("multi_choice", "rating", "text", "ranking", "spans", "boxes")
#: kinds whose per-answer update reads learned one-coin accuracies stored by the re-fit
LEARNED_SKILL_KINDS = ("multi_choice", "ranking", "spans")
DEFAULT_TEXT_SIMILARITY = 0.8
BOX_IOU = 0.5
RATING_PRIOR_DOF = 2.0
_WEIGHT_CLIP = (0.25, 4.0)


def _logit(p: Any) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 0.01, 0.99)
    return np.log(p) - np.log1p(-p)


def _accuracy(accuracy: Any, n: int) -> np.ndarray:
    acc = np.asarray(accuracy, dtype=np.float64)
    return np.broadcast_to(acc, (n,)).copy() if acc.ndim == 0 else acc


# ================================================================ multi_choice


def _choose_labels(probas: np.ndarray, min_sel: int, max_sel: int | None) -> np.ndarray:
    """(n_items, L) -> selected: P >= 0.5, then trimmed / filled to the allowed count by P."""
    n, n_labels = probas.shape
    order = np.argsort(-probas, axis=1, kind="stable")
    rank = np.empty_like(order)
    rank[np.arange(n)[:, None], order] = np.arange(n_labels)
    k = np.clip((probas >= 0.5).sum(axis=1), min_sel, n_labels if max_sel is None else max_sel)
    return rank < k[:, None]


def _multi_choice_decide(question: Question, probas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    chosen = _choose_labels(probas, getattr(question, "min_selections", 0),
                            getattr(question, "max_selections", None))
    confidence = np.where(chosen, probas, 1.0 - probas).min(axis=1)
    return chosen, confidence


def multi_choice_consensus(question: Question, values: Sequence[Sequence[str]],
                           accuracy: Any) -> tuple[list[str], float]:
    """Per-label one-coin posterior over one item's answers (lists of labels)."""
    selected, _ = encode_multi_choice(values, labels=question.labels)
    weight = _logit(_accuracy(accuracy, len(values)))
    probas = special.expit((2.0 * selected - 1.0).T @ weight)
    chosen, confidence = _multi_choice_decide(question, probas[None, :])
    return [label for label, c in zip(question.labels, chosen[0]) if c], float(confidence[0])


# ================================================================ rating


def rating_tolerance(question: RatingQuestion, settings: Mapping[str, Any] | None = None) -> float:
    """Half a step, or a twentieth of the range on a continuous scale; ``rating_tolerance``
    in the project settings overrides both."""
    tol = (settings or {}).get("rating_tolerance")
    if tol:
        return float(tol)
    if question.step is None:
        return (question.max - question.min) / 20.0
    return question.step / 2.0


def _snap_ratings(question: RatingQuestion, x: np.ndarray) -> np.ndarray:
    x = np.clip(np.asarray(x, dtype=np.float64), question.min, question.max)
    if question.step is None:
        return x
    return np.clip(question.min + np.round((x - question.min) / question.step) * question.step,
                   question.min, question.max)


def _rating_value(question: RatingQuestion, x: float) -> int | float:
    if (isinstance(question.min, int) and isinstance(question.max, int)
            and isinstance(question.step, int)):
        return int(round(x))
    return float(f"{x:.12g}")


def _rating_confidence(count: np.ndarray, wsum: np.ndarray, mean: np.ndarray, ss: np.ndarray,
                       value: np.ndarray, tol: float) -> np.ndarray:
    """P(|mu - value| <= tol) under the Student-t posterior of the item's true rating."""
    dof = RATING_PRIOR_DOF + count - 1.0
    s2 = (RATING_PRIOR_DOF * tol * tol + ss) / dof
    scale = np.sqrt(s2 / wsum)
    return (special.stdtr(dof, (value + tol - mean) / scale)
            - special.stdtr(dof, (value - tol - mean) / scale))


def rating_consensus(question: RatingQuestion, values: Sequence[float],
                     settings: Mapping[str, Any] | None = None,
                     weights: Any = None) -> tuple[int | float, float]:
    """Precision-weighted mean snapped to the grid, and P(true rating within tolerance)."""
    x = np.asarray(values, dtype=np.float64)
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=np.float64)
    wsum = w.sum()
    mean = float(w @ x / wsum)
    ss = float(w @ (x - mean) ** 2)
    snapped = float(_snap_ratings(question, np.array([mean]))[0])
    conf = _rating_confidence(np.array([len(x)], float), np.array([wsum]), np.array([mean]),
                              np.array([ss]), np.array([snapped]), rating_tolerance(question, settings))
    return _rating_value(question, snapped), float(conf[0])


# ================================================================ text


def text_consensus(texts: Sequence[str], accuracy: Any,
                   threshold: float = DEFAULT_TEXT_SIMILARITY) -> tuple[str, float]:
    """The medoid answer and the one-coin posterior that it is right."""
    texts = [str(t) for t in texts]
    n = len(texts)
    best = int(text_lib.TextMedoid().fit(np.zeros(n, np.int64), np.arange(n), texts).answer_index_[0])
    x = text_lib._features(texts)
    sim = np.asarray((x @ x[best].T).todense()).ravel()
    agree = (sim >= threshold - 1e-12) | (np.asarray(texts, dtype=object) == texts[best])
    weight = _logit(_accuracy(accuracy, n))
    return texts[best], float(special.expit(np.where(agree, weight, -weight).sum()))


# ================================================================ ranking


def _positions(value: Sequence[Any], allow_ties: bool) -> list[tuple[str, int]]:
    if allow_ties:
        return [(str(c), g) for g, group in enumerate(value) for c in group]
    return [(str(c), i) for i, c in enumerate(value)]


def _ranking_value(order: Sequence[str], allow_ties: bool) -> list:
    return [[c] for c in order] if allow_ties else list(order)


def ranking_consensus(question: Question, values: Sequence[Sequence[Any]],
                      accuracy: Any) -> tuple[list, float]:
    """Weighted Borda order and the posterior of its weakest ordered pair."""
    allow_ties = bool(getattr(question, "allow_ties", False))
    parsed = [_positions(v, allow_ties) for v in values]
    candidates: dict[str, int] = {}
    for entries in parsed:
        for c, _ in entries:
            candidates.setdefault(c, len(candidates))
    k = len(candidates)
    pos = np.full((len(parsed), k), np.nan)
    for j, entries in enumerate(parsed):
        for c, p in entries:
            pos[j, candidates[c]] = p
    # votes[j, a, b] = +1 when answer j ranks a above b, -1 below, 0 tied or missing
    votes = np.nan_to_num(np.sign(pos[:, None, :] - pos[:, :, None]))
    pair = np.einsum("jab,j->ab", votes, _logit(_accuracy(accuracy, len(parsed))))
    mean_pos = np.nanmean(pos, axis=0)
    order = np.lexsort((np.arange(k), mean_pos, -pair.sum(axis=1)))
    hi, lo = np.triu_indices(k, 1)
    conf = float(special.expit(pair[order[hi], order[lo]]).min()) if k > 1 else 1.0
    names = list(candidates)
    return _ranking_value([names[i] for i in order], allow_ties), conf


# ================================================================ spans


def _segments(span_item: np.ndarray, span_start: np.ndarray, span_end: np.ndarray,
              n_items: int) -> span_lib.Tokens:
    """Elementary segments between consecutive span boundaries of each item, as tokens."""
    if len(span_item) == 0:
        empty = np.zeros(0, np.int64)
        return span_lib.Tokens(empty, empty, empty, n_items)
    width = int(span_end.max()) + 1
    keys = np.unique(np.r_[span_item * width + span_start, span_item * width + span_end])
    item, pos = keys // width, keys % width
    same = item[1:] == item[:-1]
    return span_lib.Tokens(item[:-1][same], pos[:-1][same], pos[1:][same], n_items)


def _span_answers(item: np.ndarray, annotator: np.ndarray, values: Sequence[Sequence[Mapping]],
                  labels: Sequence[str]) -> span_lib.SpanAnswers:
    index = {label: i for i, label in enumerate(labels)}
    spans = [[(int(s["start"]), int(s["end"]), index[s["label"]]) for s in v if s["label"] in index]
             for v in values]
    return span_lib.SpanAnswers.from_lists(item, annotator, spans)


def _one_coin_tokens(tokens: span_lib.Tokens, answers: span_lib.SpanAnswers,
                     answer_accuracy: np.ndarray, n_classes: int):
    """One-coin posterior per token over {outside, labels} and which tokens anyone marked."""
    entry_answer, token, cls = span_lib.compute_token_classes(tokens, answers)
    p = np.clip(answer_accuracy, 0.01, 0.99)
    gain = np.log(p) - np.log((1.0 - p) / (n_classes - 1))  # right class vs each wrong one
    n_tokens = len(tokens.item)
    log_post = np.bincount(token * n_classes + cls, weights=gain[entry_answer],
                           minlength=n_tokens * n_classes).reshape(n_tokens, n_classes)
    probas = special.softmax(log_post, axis=1)
    marked = np.bincount(token, weights=cls > 0, minlength=n_tokens) > 0
    return probas, marked


def _nothing_posterior(gain_sum: np.ndarray, n_classes: int) -> np.ndarray:
    """P(outside / no object) when every answer said so; ``gain_sum`` = sum of log-odds gains."""
    return special.expit(gain_sum - np.log(n_classes - 1)) if n_classes > 2 else special.expit(gain_sum)


def _span_rows(tokens: span_lib.Tokens, token_class: np.ndarray, labels: Sequence[str]) -> dict[int, list]:
    item, start, end, label, _conf = span_lib._decode_spans(tokens, token_class, np.ones(len(token_class)))
    out: dict[int, list] = {}
    for i, s, e, lab in zip(item.tolist(), start.tolist(), end.tolist(), label.tolist()):
        out.setdefault(i, []).append({"start": s, "end": e, "label": labels[lab]})
    return out


def _marked_confidence(tokens: span_lib.Tokens, probas: np.ndarray, marked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    length = (tokens.end - tokens.start) * marked
    top = probas.max(axis=1)
    total = np.bincount(tokens.item, weights=length, minlength=tokens.n_items)
    agree = np.bincount(tokens.item, weights=length * top, minlength=tokens.n_items)
    with np.errstate(invalid="ignore", divide="ignore"):
        return agree / total, total > 0


def spans_consensus(question: Question, values: Sequence[Sequence[Mapping]],
                    accuracy: Any) -> tuple[list[dict], float]:
    """Token (segment) one-coin vote over one item's span answers."""
    n = len(values)
    labels = list(question.labels)
    n_classes = len(labels) + 1
    acc = _accuracy(accuracy, n)
    answers = _span_answers(np.zeros(n, np.int64), np.arange(n), values, labels)
    tokens = _segments(answers.item[answers.span_answer], answers.span_start, answers.span_end, 1)
    gain = np.log(np.clip(acc, .01, .99)) - np.log((1 - np.clip(acc, .01, .99)) / (n_classes - 1))
    if len(tokens.item) == 0:
        return [], float(_nothing_posterior(np.array([gain.sum()]), n_classes)[0])
    probas, marked = _one_coin_tokens(tokens, answers, acc, n_classes)
    conf, _ = _marked_confidence(tokens, probas, marked)
    spans = _span_rows(tokens, np.argmax(probas, axis=1), labels).get(0, [])
    return spans, float(conf[0])


# ================================================================ boxes


def _box_answers(item: np.ndarray, annotator: np.ndarray, values: Sequence[Sequence[Mapping]],
                 labels: Sequence[str]) -> box_lib.BoxAnswers:
    index = {label: i for i, label in enumerate(labels)}
    rows = [(n, b["x"], b["y"], b["x"] + b["w"], b["y"] + b["h"], index[b["label"]])
            for n, v in enumerate(values) for b in v if b["label"] in index]
    flat = np.array(rows, dtype=np.float64).reshape(-1, 6)
    return box_lib.BoxAnswers.from_arrays(item, annotator, flat[:, 0].astype(np.int64), flat[:, 1:5],
                                          flat[:, 5].astype(np.int64))


def _round(v: float) -> float:
    return float(f"{v:.12g}")


def _cluster_boxes(answers: box_lib.BoxAnswers) -> np.ndarray:
    """The library's IoU clustering (same label, IoU >= BOX_IOU, best partner per annotator)."""
    return box_lib._cluster(answers, BOX_IOU)[0]


def _box_value(corners: np.ndarray, label_codes: np.ndarray, labels: Sequence[str]) -> list[dict]:
    out, seen = [], set()
    for (x1, y1, x2, y2), lab in zip(corners.tolist(), label_codes.tolist()):
        # 12 significant digits: 0.4 - 0.1 is 0.30000000000000004 in floating point
        box = {"x": _round(x1), "y": _round(y1), "w": _round(x2 - x1), "h": _round(y2 - y1),
               "label": labels[lab]}
        key = tuple(box.values())
        if key not in seen:
            seen.add(key)
            out.append(box)
    return out


def boxes_consensus(question: Question, values: Sequence[Sequence[Mapping]],
                    accuracy: Any) -> tuple[list[dict], float]:
    """IoU clusters of one item's boxes, one-coin existence posterior per cluster."""
    n = len(values)
    labels = list(question.labels)
    weight = _logit(_accuracy(accuracy, n))
    answers = _box_answers(np.zeros(n, np.int64), np.arange(n), values, labels)
    if len(answers.box_answer) == 0:
        return [], float(special.expit(weight.sum()))
    cluster = _cluster_boxes(answers)
    box_annotator = answers.annotator[answers.box_answer]
    n_clusters = int(cluster.max()) + 1
    cluster_item = np.zeros(n_clusters, np.int64)
    rows, annotator, drew = box_lib._cluster_votes(answers, cluster_item, cluster, box_annotator, n_clusters)
    probas = special.expit(np.bincount(rows, weights=(2.0 * drew - 1.0) * weight[annotator],
                                       minlength=n_clusters))
    ones = np.ones(len(cluster))
    fused = box_lib._fuse(answers.boxes, cluster, n_clusters, ones)
    label_codes = box_lib._majority_label(cluster, answers.box_label, ones, n_clusters)
    keep = probas >= 0.5
    return (_box_value(fused[keep], label_codes[keep], labels),
            float(np.maximum(probas, 1.0 - probas).min()))


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
    raise ValueError(f"no consensus for question kind {kind!r}")


def item_rows(ctx: Any, conn: Any, project: dict, item_answers: list[dict],
              now: int) -> tuple[list[dict], float]:
    """Consensus rows for one item's non-choice questions and their smallest confidence
    (NaN when none was answered). Same row shape as the choice rows."""
    from goldlabel.storage import quality as quality_store

    schema: LabelSchema = ctx.get_schema(project)
    settings = project.get("settings") or {}
    default = ctx.settings.default_annotator_accuracy
    rows: list[dict] = []
    smallest = np.nan
    for q in schema.questions:
        if q.kind not in KINDS:
            continue
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
        value, confidence = consensus_for(q, [p[1] for p in pairs], accuracy, settings)
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


def _skill_rows(annotator_ids: np.ndarray, accuracy: np.ndarray, annotator: np.ndarray,
                method: str, now: int) -> list[dict]:
    counts = np.bincount(annotator, minlength=len(annotator_ids))
    return [{"annotator_id": int(a), "accuracy": float(s), "accuracy_low": None, "accuracy_high": None,
             "confusion": None, "n_answers": int(c), "method": method, "updated_at": now}
            for a, s, c in zip(annotator_ids.tolist(), np.asarray(accuracy).tolist(), counts.tolist())]


def _refit_multi_choice(q, items, item, annotator, annotator_ids, values, default, settings, now):
    selected, _ = encode_multi_choice(values, labels=q.labels)
    est = MultiChoiceDawidSkene(coin="one").fit(item, annotator, selected, n_items=len(items),
                                                n_annotators=len(annotator_ids))
    # Posterior with the learned per-label accuracies and a prior of 1/2 per label: the
    # estimator's prevalence is a maximum-likelihood mean that collapses to 0 or 1 on small
    # projects and then outvotes the answers.
    # One accuracy per annotator (coin="one": sensitivity = specificity), averaged over the
    # labels: per-label skills are too noisy to learn from few answers. It is also the skill
    # the per-answer update reads, so both paths score an item the same way.
    accuracy = est.sensitivities_.mean(axis=1)
    weight = _logit(accuracy)[annotator][:, None]
    by_item = sparse.csr_matrix((np.ones(len(item)), (item, np.arange(len(item)))),
                                shape=(len(items), len(item)))
    probas = special.expit(by_item @ ((2.0 * selected - 1.0) * weight))
    chosen, confidence = _multi_choice_decide(q, probas)
    labels = np.asarray(q.labels, dtype=object)
    out_values = [labels[row].tolist() for row in chosen]
    skills = _skill_rows(annotator_ids, accuracy, annotator, "onecoin_multi", now)
    return "onecoin_multi", out_values, confidence, skills


def _refit_rating(q, items, item, annotator, annotator_ids, values, default, settings, now):
    x = np.asarray(values, dtype=np.float64)
    est = RobustRating().fit(item, annotator, x, n_items=len(items), n_annotators=len(annotator_ids))
    tau = est.precisions_[annotator]
    w = np.clip(tau / np.median(tau), *_WEIGHT_CLIP)
    corrected = x - est.biases_[annotator]
    n_items = len(items)
    count = np.bincount(item, minlength=n_items).astype(float)
    # relative precisions, scaled to mean 1 on each item: learned skills move the value and
    # discount an imprecise annotator's disagreement, but never count as extra answers
    w = w * (count / np.bincount(item, weights=w, minlength=n_items))[item]
    wsum = count
    mean = np.bincount(item, weights=w * corrected, minlength=n_items) / wsum
    ss = np.bincount(item, weights=w * (corrected - mean[item]) ** 2, minlength=n_items)
    snapped = _snap_ratings(q, mean)
    confidence = _rating_confidence(count, wsum, mean, ss, snapped, rating_tolerance(q, settings))
    return "robust_rating", [_rating_value(q, v) for v in snapped.tolist()], confidence, None


def _refit_text(q, items, item, annotator, annotator_ids, values, default, settings, now):
    texts = [str(v) for v in values]
    if np.bincount(item).max() > 1:
        best = text_lib.TextMedoid().fit(item, annotator, texts, n_items=len(items),
                                         n_annotators=len(annotator_ids)).answer_index_
    else:  # one answer per item everywhere: it is the medoid (the library needs a pair)
        best = np.empty(len(items), np.int64)
        best[item] = np.arange(len(item))
    x = text_lib._features(texts)
    sim = np.asarray(x.multiply(x[best[item]]).sum(axis=1)).ravel()
    text_arr = np.asarray(texts, dtype=object)
    threshold = settings.get("text_similarity") or DEFAULT_TEXT_SIMILARITY
    agree = (sim >= threshold - 1e-12) | (text_arr == text_arr[best[item]])
    weight = _logit(np.full(len(texts), default))
    confidence = special.expit(np.bincount(item, weights=np.where(agree, weight, -weight),
                                           minlength=len(items)))
    return "text_medoid", [texts[k] for k in best.tolist()], confidence, None


def _refit_ranking(q, items, item, annotator, annotator_ids, values, default, settings, now):
    allow_ties = bool(getattr(q, "allow_ties", False))
    # edge: parse answers into (answer, (item, candidate) code, position) entries
    code_of: dict[tuple[int, str], int] = {}
    entry_answer, entry_code, entry_pos = [], [], []
    for n, (i, v) in enumerate(zip(item.tolist(), values)):
        for c, p in _positions(v, allow_ties):
            entry_answer.append(n)
            entry_code.append(code_of.setdefault((i, c), len(code_of)))
            entry_pos.append(p)
    n_codes = len(code_of)
    code_item = np.fromiter((k[0] for k in code_of), np.int64, count=n_codes)
    names = [k[1] for k in code_of]
    e_answer = np.asarray(entry_answer, np.int64)
    e_code = np.asarray(entry_code, np.int64)
    e_pos = np.asarray(entry_pos, np.int64)
    a, b = text_lib._pairs_within(e_answer) if len(e_answer) else (np.zeros(0, np.int64),) * 2
    above = e_pos[a] < e_pos[b]
    winner, loser, who = e_code[a][above], e_code[b][above], annotator[e_answer[a][above]]
    if len(winner):
        est = CrowdBT().fit(who, winner, loser, n_candidates=n_codes, n_annotators=len(annotator_ids))
        scores, reliability = est.scores_, est.reliabilities_
    else:
        scores, reliability = np.zeros(n_codes), np.full(len(annotator_ids), default)
    first_seen = np.arange(n_codes)
    order = np.lexsort((first_seen, -scores, code_item))  # per item, best first
    rank = np.empty(n_codes, np.int64)
    starts = np.r_[0, np.flatnonzero(code_item[order][1:] != code_item[order][:-1]) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, n_codes]))
    rank[order] = np.arange(n_codes) - group_start
    # pair log-odds in the consensus orientation (earlier candidate first)
    first = np.where(rank[winner] < rank[loser], winner, loser)
    second = np.where(rank[winner] < rank[loser], loser, winner)
    sign = np.where(first == winner, 1.0, -1.0)
    key, inverse = np.unique(first * n_codes + second, return_inverse=True)
    pair = np.bincount(inverse, weights=sign * _logit(reliability)[who], minlength=len(key))
    n_items = len(items)
    confidence = np.ones(n_items)
    np.minimum.at(confidence, code_item[key // n_codes], special.expit(pair))
    k = np.bincount(code_item, minlength=n_items)
    voted_pairs = np.bincount(code_item[key // n_codes], minlength=n_items)
    confidence = np.where(voted_pairs < k * (k - 1) // 2, np.minimum(confidence, 0.5), confidence)
    ordered = [names[c] for c in order.tolist()]
    bounds = np.r_[starts, n_codes].tolist()
    by_item = {int(code_item[order[s]]): _ranking_value(ordered[s:e], allow_ties)
               for s, e in zip(bounds[:-1], bounds[1:])}
    out_values = [by_item.get(i, []) for i in range(n_items)]
    skills = _skill_rows(annotator_ids, reliability, annotator, "crowd_bt", now)
    return "crowd_bt", out_values, confidence, skills


def _refit_spans(q, items, item, annotator, annotator_ids, values, default, settings, now):
    labels = list(q.labels)
    n_classes = len(labels) + 1
    n_items = len(items)
    answers = _span_answers(item, annotator, values, labels)
    tokens = _segments(answers.item[answers.span_answer], answers.span_start, answers.span_end, n_items)
    accuracy = np.full(len(annotator_ids), default)
    confidence = np.full(n_items, np.nan)
    spans: dict[int, list] = {}
    if len(tokens.item):
        est = span_lib.SpanDawidSkene(n_labels=len(labels)).fit(answers, tokens,
                                                                   n_annotators=len(annotator_ids))
        accuracy = est.skills_
        _, token, cls = span_lib.compute_token_classes(tokens, answers)
        marked = np.bincount(token, weights=cls > 0, minlength=len(tokens.item)) > 0
        confidence, _has = _marked_confidence(tokens, est.token_probas_, marked)
        spans = _span_rows(tokens, est.token_classes_, labels)
    p = np.clip(accuracy[annotator], 0.01, 0.99)
    gain = np.bincount(item, weights=np.log(p) - np.log((1 - p) / (n_classes - 1)), minlength=n_items)
    confidence = np.where(np.isnan(confidence), _nothing_posterior(gain, n_classes), confidence)
    skills = _skill_rows(annotator_ids, accuracy, annotator, "span_ds", now)
    return "span_ds", [spans.get(i, []) for i in range(n_items)], confidence, skills


def _refit_boxes(q, items, item, annotator, annotator_ids, values, default, settings, now):
    labels = list(q.labels)
    n_items = len(items)
    answers = _box_answers(item, annotator, values, labels)
    recall = np.clip(np.full(len(annotator_ids), default), 0.01, 0.99)
    false_rate = 1.0 - recall
    confidence = np.ones(n_items)
    has_cluster = np.zeros(n_items, bool)
    out_values: list = [[] for _ in range(n_items)]
    if len(answers.box_answer):
        cluster = _cluster_boxes(answers)
        n_clusters = int(cluster.max()) + 1
        box_item = answers.item[answers.box_answer]
        if n_clusters < len(cluster):
            est = box_lib.BoxDawidSkene(iou_threshold=BOX_IOU).fit(answers, n_annotators=len(annotator_ids))
            recall = np.clip(est.recalls_, 0.01, 0.99)
            false_rate = np.clip(est.false_rates_, 0.01, 0.99)
            fused, cluster_items = est.cluster_boxes_, est.cluster_items_
        else:  # no two boxes match anywhere: every box is its own cluster, default skills
            fused, cluster_items = answers.boxes, box_item
        # Existence with the learned recall / false-box rates but a prior of 1/2: the
        # estimator's prevalence is the mean over drawn clusters, which tends to 1 on small
        # projects and would let one stray box count as certain.
        box_annotator = answers.annotator[answers.box_answer]
        rows, who, drew = box_lib._cluster_votes(answers, cluster_items, cluster, box_annotator, n_clusters)
        evidence = np.where(drew > 0, np.log(recall[who]) - np.log(false_rate[who]),
                            np.log1p(-recall[who]) - np.log1p(-false_rate[who]))
        p = special.expit(np.bincount(rows, weights=evidence, minlength=n_clusters))
        np.minimum.at(confidence, cluster_items, np.maximum(p, 1.0 - p))
        has_cluster[cluster_items] = True
        label_codes = box_lib._majority_label(cluster, answers.box_label, np.ones(len(cluster)), n_clusters)
        keep = np.flatnonzero(p >= 0.5)
        keep = keep[np.argsort(cluster_items[keep], kind="stable")]
        kept_items = cluster_items[keep]
        bounds = np.r_[0, np.flatnonzero(kept_items[1:] != kept_items[:-1]) + 1, len(keep)]
        for s, e in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            if e > s:
                rows_k = keep[s:e]
                out_values[int(kept_items[s])] = _box_value(fused[rows_k], label_codes[rows_k], labels)
    r = np.clip(recall, 0.01, 0.99)[annotator]
    f = np.clip(false_rate, 0.01, 0.99)[annotator]
    nothing = special.expit(np.bincount(item, weights=np.log1p(-f) - np.log1p(-r), minlength=n_items))
    confidence = np.where(has_cluster, confidence, nothing)
    return "box_ds", out_values, confidence, None


_REFIT = {
    "multi_choice": _refit_multi_choice,
    "rating": _refit_rating,
    "text": _refit_text,
    "ranking": _refit_ranking,
    "spans": _refit_spans,
    "boxes": _refit_boxes,
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
                default_accuracy: float, settings: Mapping[str, Any] | None, now: int) -> list[RefitResult]:
    """Re-fit every non-choice question that has answers (``loaded`` from :func:`load_answers`)."""
    out = []
    for q in schema.questions:
        if q.kind in KINDS and q.name in loaded:
            item_ids, annotator_ids, values = loaded[q.name]
            out.append(refit_question(q, item_ids, annotator_ids, values,
                                      default_accuracy=default_accuracy, settings=settings, now=now))
    return out
