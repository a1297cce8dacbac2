"""``spans`` consensus: a one-coin vote per text segment between span boundaries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
from scipy import special

from goldlabel.quality import spans as span_lib
from goldlabel.quality.consensus.one_coin import broadcast_accuracy, skill_rows
from goldlabel.quality.consensus.question import Question

#: pseudo-answers at the default accuracy that a re-fit's learned span accuracy is shrunk by
#: (the server's ``skill_prior_answers`` default for choice questions)
SKILL_PRIOR_ANSWERS = 20.0

# ================================================================ per answer


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


def _span_answers(item: np.ndarray, annotator: np.ndarray, values: Sequence[Sequence[Mapping[str, Any]]],
                  labels: Sequence[str]) -> span_lib.SpanAnswers:
    index = {label: i for i, label in enumerate(labels)}
    spans = [[(int(s["start"]), int(s["end"]), index[s["label"]]) for s in v if s["label"] in index]
             for v in values]
    return span_lib.SpanAnswers.from_lists(item, annotator, spans)


def _one_coin_tokens(tokens: span_lib.Tokens, answers: span_lib.SpanAnswers,
                     answer_accuracy: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
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
    return cast("np.ndarray",
                special.expit(gain_sum - np.log(n_classes - 1)) if n_classes > 2 else special.expit(gain_sum))


def _span_rows(tokens: span_lib.Tokens, token_class: np.ndarray, labels: Sequence[str]) -> dict[int, list[Any]]:
    item, start, end, label, _conf = span_lib._decode_spans(tokens, token_class, np.ones(len(token_class)))
    out: dict[int, list[Any]] = {}
    for i, s, e, lab in zip(item.tolist(), start.tolist(), end.tolist(), label.tolist()):
        out.setdefault(i, []).append({"start": s, "end": e, "label": labels[lab]})
    return out


def _marked_confidence(
    tokens: span_lib.Tokens, probas: np.ndarray, marked: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    length = (tokens.end - tokens.start) * marked
    top = probas.max(axis=1)
    total = np.bincount(tokens.item, weights=length, minlength=tokens.n_items)
    agree = np.bincount(tokens.item, weights=length * top, minlength=tokens.n_items)
    with np.errstate(invalid="ignore", divide="ignore"):
        return agree / total, total > 0


def spans_consensus(question: Question, values: Sequence[Sequence[Mapping[str, Any]]],
                    accuracy: Any) -> tuple[list[dict[str, Any]], float]:
    """Token (segment) one-coin vote over one item's span answers."""
    n = len(values)
    labels = list(question.labels)
    n_classes = len(labels) + 1
    acc = broadcast_accuracy(accuracy, n)
    answers = _span_answers(np.zeros(n, np.int64), np.arange(n), values, labels)
    tokens = _segments(answers.item[answers.span_answer], answers.span_start, answers.span_end, 1)
    gain = np.log(np.clip(acc, .01, .99)) - np.log((1 - np.clip(acc, .01, .99)) / (n_classes - 1))
    if len(tokens.item) == 0:
        return [], float(_nothing_posterior(np.array([gain.sum()]), n_classes)[0])
    probas, marked = _one_coin_tokens(tokens, answers, acc, n_classes)
    conf, _ = _marked_confidence(tokens, probas, marked)
    spans = _span_rows(tokens, np.argmax(probas, axis=1), labels).get(0, [])
    return spans, float(conf[0])


# ================================================================ full re-fit (vectorized)


def refit_spans(q: Any, items: np.ndarray, item: np.ndarray, annotator: np.ndarray, annotator_ids: np.ndarray,
                values: list[Any], default: float, settings: Mapping[str, Any], now: int,
                ) -> tuple[str, list[Any], Any, list[dict[str, Any]] | None]:
    labels = list(q.labels)
    n_classes = len(labels) + 1
    n_items = len(items)
    answers = _span_answers(item, annotator, values, labels)
    tokens = _segments(answers.item[answers.span_answer], answers.span_start, answers.span_end, n_items)
    accuracy = np.full(len(annotator_ids), default)
    confidence = np.full(n_items, np.nan)
    spans: dict[int, list[Any]] = {}
    if len(tokens.item):
        est = span_lib.SpanDawidSkene(n_labels=len(labels)).fit(answers, tokens,
                                                                   n_annotators=len(annotator_ids))
        # Learned accuracies shrunk toward the default by SKILL_PRIOR_ANSWERS pseudo-answers,
        # and the confidence is the one-coin posterior of the chosen classes under them: the
        # EM's own token posteriors said 1.000 for two agreeing answers (two annotators who
        # always agree learn accuracy ~1), while on pico_participants such items are right
        # on 84% of the marked characters (benchmarks/confidence_kinds.py).
        n_answers = np.bincount(annotator, minlength=len(annotator_ids))
        accuracy = (n_answers * est.skills_ + SKILL_PRIOR_ANSWERS * default) / (n_answers + SKILL_PRIOR_ANSWERS)
        probas, marked = _one_coin_tokens(tokens, answers, accuracy[answers.annotator], n_classes)
        chosen = probas[np.arange(len(tokens.item)), est.token_classes_]
        confidence, _has = _marked_confidence(tokens, chosen[:, None], marked)
        spans = _span_rows(tokens, est.token_classes_, labels)
    p = np.clip(accuracy[annotator], 0.01, 0.99)
    gain = np.bincount(item, weights=np.log(p) - np.log((1 - p) / (n_classes - 1)), minlength=n_items)
    confidence = np.where(np.isnan(confidence), _nothing_posterior(gain, n_classes), confidence)
    skills = skill_rows(annotator_ids, accuracy, annotator, "span_ds", now)
    return "span_ds", [spans.get(i, []) for i in range(n_items)], confidence, skills

