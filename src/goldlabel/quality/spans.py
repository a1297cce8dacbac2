"""Span (text region) aggregation: token-level Dawid-Skene over all items at once.

Spans are mapped onto tokens: every answer becomes one observed class per token of its
item (0 = outside any span, 1 + k = inside a span labelled k). All answers' tokens are
flattened into one array of (answer, token) entries, so the model is fitted with
bincounts and sparse products, not a loop per item. An annotator who answered an item
but marked nothing there votes "outside" on all its tokens; that is information that
span-level voting loses.

Two Python loops remain, both at the edge where Python objects come in: tokenizing each
text (:meth:`Tokens.from_texts`) and flattening each answer's list of spans
(:meth:`SpanAnswers.from_lists`); everything after that is vectorized.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from scipy import sparse

__all__ = [
    "MajorityTokenVote",
    "SpanAnswers",
    "SpanDawidSkene",
    "Tokens",
    "compute_token_classes",
    "compute_token_f1",
]

TOKEN_PATTERN = r"\w+|[^\w\s]"  # nosec B105  # a tokenizer regex, not a password


@dataclass(frozen=True, eq=False)
class Tokens:
    """All items' tokens flattened, sorted by (item, start): token t covers characters
    [start[t], end[t]) of the text of item ``item[t]``."""

    item: np.ndarray
    start: np.ndarray
    end: np.ndarray
    n_items: int

    @classmethod
    def from_texts(cls, texts: Sequence[str], pattern: str = TOKEN_PATTERN) -> Tokens:
        """Tokenize ``texts[i]`` (the text of item code i) with a regular expression."""
        regex = re.compile(pattern)
        spans = [[m.span() for m in regex.finditer(text or "")] for text in texts]
        counts = np.fromiter((len(s) for s in spans), dtype=np.int64, count=len(spans))
        flat = np.array([p for s in spans for p in s], dtype=np.int64).reshape(-1, 2)
        return cls(np.repeat(np.arange(len(texts)), counts), flat[:, 0], flat[:, 1], len(texts))

    def get_item_offsets(self) -> np.ndarray:
        """(n_items + 1,) first token of each item; item i owns tokens offsets[i]:offsets[i+1]."""
        return np.concatenate([[0], np.cumsum(np.bincount(self.item, minlength=self.n_items))])


@dataclass(frozen=True, eq=False)
class SpanAnswers:
    """Answers (one per item and annotator, possibly with no span) and their spans.

    Span s belongs to answer ``span_answer[s]`` and covers characters
    [span_start[s], span_end[s]) with label code ``span_label[s]`` (0 when unlabelled).
    """

    item: np.ndarray
    annotator: np.ndarray
    span_answer: np.ndarray
    span_start: np.ndarray
    span_end: np.ndarray
    span_label: np.ndarray

    @classmethod
    def from_lists(cls, item: Any, annotator: Any, spans: Sequence[Sequence[Sequence[int]]]) -> Self:
        """``spans[n]`` lists answer n's spans as ``[start, end]`` or ``[start, end, label]``
        (label an integer code)."""
        item = np.asarray(item, dtype=np.int64).ravel()
        annotator = np.asarray(annotator, dtype=np.int64).ravel()
        if not len(item) == len(annotator) == len(spans):
            raise ValueError(
                "item, annotator and spans need one entry per answer, got "
                f"{len(item)}, {len(annotator)}, {len(spans)}"
            )
        counts = np.fromiter((len(s) for s in spans), dtype=np.int64, count=len(spans))
        rows = [tuple(s) + (0,) * (3 - len(s)) for answer in spans for s in answer]
        flat = np.array(rows, dtype=np.int64).reshape(-1, 3)
        if len(flat) and np.any(flat[:, 1] < flat[:, 0]):
            bad = int(np.argmax(flat[:, 1] < flat[:, 0]))
            raise ValueError(f"span {flat[bad, :2].tolist()} ends before it starts")
        return cls(item, annotator, np.repeat(np.arange(len(spans)), counts),
                   flat[:, 0], flat[:, 1], flat[:, 2])


def compute_token_classes(tokens: Tokens, answers: SpanAnswers) -> tuple[np.ndarray, ...]:
    """Flatten answers onto tokens.

    Returns ``(entry_answer, entry_token, entry_class)``: one entry per (answer, token of
    its item); class 0 = outside, 1 + label inside a span (a token touched by a span
    counts as inside; where one answer's spans overlap, the later span wins).
    """
    offsets = tokens.get_item_offsets()
    n_tok = np.diff(offsets)[answers.item]
    entry_start = np.concatenate([[0], np.cumsum(n_tok)])
    total = int(entry_start[-1])
    entry_answer = np.repeat(np.arange(len(answers.item)), n_tok)
    entry_token = offsets[answers.item][entry_answer] + (
        np.arange(total) - entry_start[:-1][entry_answer]
    )
    entry_class = np.zeros(total, dtype=np.int64)
    if len(answers.span_answer):
        # global character keys make one searchsorted find every span's token range
        width = int(max(tokens.end.max(initial=0), answers.span_end.max())) + 1
        span_item = answers.item[answers.span_answer]
        first = np.searchsorted(tokens.item * width + tokens.end,
                                span_item * width + answers.span_start, side="right")
        last = np.searchsorted(tokens.item * width + tokens.start,
                               span_item * width + answers.span_end, side="left")
        length = np.maximum(last - first, 0)
        span_of = np.repeat(np.arange(len(length)), length)
        within = np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length)
        token = first[span_of] + within
        answer = answers.span_answer[span_of]
        position = entry_start[answer] + (token - offsets[answers.item[answer]])
        entry_class[position] = answers.span_label[span_of] + 1
    return entry_answer, entry_token, entry_class


def _decode_spans(tokens: Tokens, token_class: np.ndarray, confidence: np.ndarray,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Maximal runs of equal non-zero class within an item -> char spans."""
    inside = token_class > 0
    prev_same = np.zeros(len(token_class), dtype=bool)
    prev_same[1:] = (token_class[1:] == token_class[:-1]) & (tokens.item[1:] == tokens.item[:-1])
    starts = np.flatnonzero(inside & ~prev_same)
    run = np.cumsum(inside & ~prev_same) - 1
    ends = np.flatnonzero(inside & np.r_[~prev_same[1:], True])
    conf = np.bincount(run[inside], weights=confidence[inside], minlength=len(starts)) / (
        ends - starts + 1
    )
    return (tokens.item[starts], tokens.start[starts], tokens.end[ends],
            token_class[starts] - 1, conf)


class _SpanEstimator:
    def _set_spans(self, tokens: Tokens, token_class: np.ndarray, confidence: np.ndarray) -> None:
        self.token_classes_ = token_class
        (self.span_item_, self.span_start_, self.span_end_, self.span_label_,
         self.span_confidences_) = _decode_spans(tokens, token_class, confidence)


class MajorityTokenVote(_SpanEstimator):
    """Baseline: each token takes the class most answers on its item gave it
    (a strict majority is needed to be inside: ties go to outside)."""

    def __init__(self, n_labels: int = 1) -> None:
        self.n_labels = n_labels

    def fit(self, answers: SpanAnswers, tokens: Tokens) -> Self:
        _, token, cls = compute_token_classes(tokens, answers)
        n_classes = self.n_labels + 1
        votes = np.zeros((len(tokens.item), n_classes))
        np.add.at(votes, (token, cls), 1.0)
        total = votes.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.token_probas_ = np.nan_to_num(votes / total)
        best = 1 + np.argmax(votes[:, 1:], axis=1)
        is_majority = votes[np.arange(len(best)), best] * 2 > total[:, 0]
        token_class = np.where(is_majority, best, 0)
        self._set_spans(tokens, token_class, self.token_probas_[np.arange(len(best)), token_class])
        return self


class SpanDawidSkene(_SpanEstimator):
    """Token-level Dawid-Skene over span classes with per-annotator confusion matrices.

    Each token t has a true class z_t in {outside, label_1..label_K} with prior pi.
    Annotator j's answer puts the token in class o with probability
    P(o | z_t = c) = theta_j[c, o] (the annotator's token confusion matrix, which captures
    boundary habits: sloppy starts/ends show up as inside<->outside confusions). EM:

        log P(z_t = c | answers) = log pi_c + sum_{answers on t} log theta_j[c, o] + const
        theta_j[c, o] = (sum_t q_tc [j said o on t] + alpha [c = o] + beta)
                        / (sum_t q_tc + alpha + C beta)

    Decoded spans are maximal runs of tokens whose most probable class is the same label;
    ``span_confidences_`` is the mean posterior of that class over the run.
    Learned: ``token_probas_`` (n_tokens, C), ``token_classes_``, ``confusions_``
    (n_annotators, C, C), ``span_item_``, ``span_start_``, ``span_end_``, ``span_label_``,
    ``span_confidences_``; ``skills_`` = per-annotator token accuracy implied by theta.

    Dawid & Skene (1979), applied to sequence labels as the token-level baseline in
    Nguyen, A. T. et al. (2017). Aggregating and predicting sequence labels from crowd
    annotations. ACL, 299-309 (their HMM-Crowd adds label transitions on top).
    """

    def __init__(self, n_labels: int = 1, alpha: float = 2.0, beta: float = 0.5,
                 n_iter: int = 50, tol: float = 1e-5) -> None:
        self.n_labels = n_labels
        self.alpha = alpha
        self.beta = beta
        self.n_iter = n_iter
        self.tol = tol

    def fit(self, answers: SpanAnswers, tokens: Tokens, n_annotators: int | None = None) -> Self:
        entry_answer, token, cls = compute_token_classes(tokens, answers)
        if len(token) == 0:
            raise ValueError("no tokens under the answers: check item codes against the texts")
        C = self.n_labels + 1
        if cls.max() >= C:
            raise ValueError(f"span label {cls.max() - 1} >= n_labels={self.n_labels}")
        n_annotators = n_annotators or int(answers.annotator.max()) + 1
        annotator = answers.annotator[entry_answer]
        n_tokens = len(tokens.item)
        by_token = sparse.csr_matrix((np.ones(len(token)), (token, np.arange(len(token)))),
                                     shape=(n_tokens, len(token)))
        by_annotator = sparse.csr_matrix(
            (np.ones(len(token)), (annotator, np.arange(len(token)))),
            shape=(n_annotators, len(token)))
        onehot = np.eye(C)[cls]
        votes = by_token @ onehot
        has_votes = votes.sum(axis=1) > 0
        q = (votes + 1e-3) / (votes + 1e-3).sum(axis=1, keepdims=True)  # soft majority start
        self.n_iter_ = 0
        for it in range(self.n_iter):
            q_entry = q[token]
            # counts[j, c, o] = sum over j's entries of q_tc [o_entry = o]
            counts = np.stack([by_annotator @ (q_entry * onehot[:, [o]]) for o in range(C)],
                              axis=2)
            counts += self.beta + self.alpha * np.eye(C)
            theta = counts / counts.sum(axis=2, keepdims=True)
            prior = q[has_votes].mean(axis=0) + 1e-9
            log_theta = np.log(theta)
            # log-likelihood of each entry's observed class under each true class
            entry_ll = log_theta[annotator, :, cls]
            log_post = np.log(prior / prior.sum()) + by_token @ entry_ll
            log_post -= log_post.max(axis=1, keepdims=True)
            new_q = np.exp(log_post)
            new_q /= new_q.sum(axis=1, keepdims=True)
            change = float(np.abs(new_q - q).max())
            q = new_q
            self.n_iter_ = it + 1
            if change <= self.tol:
                break
        q[~has_votes] = np.eye(C)[0]
        self.token_probas_ = q
        self.confusions_ = theta
        self.prior_ = prior / prior.sum()
        self.skills_ = (theta * self.prior_[None, :, None]).trace(axis1=1, axis2=2)
        token_class = np.argmax(q, axis=1)
        self._set_spans(tokens, token_class, q[np.arange(n_tokens), token_class])
        return self


def compute_token_f1(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Token-level precision, recall and F1 of "inside a span" (labels must match too)."""
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    tp = float(np.sum((predicted > 0) & (predicted == truth)))
    n_pred, n_true = float(np.sum(predicted > 0)), float(np.sum(truth > 0))
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
