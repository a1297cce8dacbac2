"""Free-text aggregation: pick the best answer per item by reliability-weighted
similarity to the other answers (a medoid; ROVER-lite).

Answers are embedded as L2-normalized bags of word uni/bigrams and character trigrams
(a sparse matrix, one row per answer), so the similarity of every same-item pair is one
sparse row-wise product and every per-item sum a bincount. Building the n-gram bags is a
Python loop over answers: turning strings into features has no vectorized form in
numpy; it runs once per fit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import pairwise
from typing import Any, Self

import numpy as np
from scipy import sparse

__all__ = ["TextMedoid", "compute_wer", "compute_word_errors", "normalize_words"]

_WORD = re.compile(r"\w+|'\w+|[^\w\s]")


def normalize_words(text: str) -> list[str]:
    """Lower-cased words with punctuation and clitics split off ("Let's go." ->
    ["let", "'s", "go", "."]), the tokenization of the CrowdWSA references."""
    return _WORD.findall(str(text).lower())


def _features(texts: Sequence[str]) -> sparse.csr_matrix:
    vocabulary: dict[str, int] = {}
    indptr: list[int] = [0]
    indices: list[int] = []
    for text in texts:
        words = normalize_words(text)
        joined = " " + " ".join(words) + " "
        grams = ["w:" + w for w in words]
        grams += ["b:" + a + " " + b for a, b in pairwise(words)]
        grams += ["c:" + joined[k:k + 3] for k in range(len(joined) - 2)]
        indices.extend(vocabulary.setdefault(g, len(vocabulary)) for g in grams)
        indptr.append(len(indices))
    x = sparse.csr_matrix((np.ones(len(indices)), np.asarray(indices, dtype=np.int64),
                           np.asarray(indptr, dtype=np.int64)),
                          shape=(len(texts), max(len(vocabulary), 1)))
    x.sum_duplicates()
    norm = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    norm[norm == 0] = 1.0
    return sparse.diags(1.0 / norm) @ x


def _pairs_within(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All ordered pairs (i, j), i != j, of rows with the same group id."""
    order = np.argsort(group, kind="stable")
    g = group[order]
    size = np.bincount(g)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    per_row = size[g]
    left = np.repeat(np.arange(len(g)), per_row)
    right = start[g][left] + (np.arange(per_row.sum())
                              - np.repeat(np.cumsum(per_row) - per_row, per_row))
    keep = left != right
    return order[left[keep]], order[right[keep]]


def _argmax_per_group(group: np.ndarray, score: np.ndarray, n_groups: int) -> np.ndarray:
    order = np.lexsort((-score, group))
    first = np.r_[True, group[order][1:] != group[order][:-1]]
    best = np.full(n_groups, -1, dtype=np.int64)
    best[group[order][first]] = order[first]
    return best


class TextMedoid:
    """Reliability-weighted medoid of the free-text answers of each item.

    s(a, b) is the cosine similarity of the n-gram bags of answers a and b. With
    annotator weights w_j the score of answer a on item i is
        score_a = sum_{b on i, b != a} w_{j(b)} s(a, b) / sum_{b on i, b != a} w_{j(b)},
    the chosen answer is argmax_a score_a, and the weights are re-estimated as the
    annotator's mean similarity to the chosen answers, shrunk to the overall mean with
    ``prior`` pseudo-answers: w_j = (sum_{a by j} s(a, chosen) + prior m) / (n_j + prior).
    Iterate ``n_iter`` times when ``weighted=True``; the default keeps w = 1 (plain
    medoid), which was as good or better on CrowdWSA2019 (see docs/quality-kinds.md).
    ``confidences_`` is the chosen answer's score (its weighted mean similarity).

    Li, J., Fukumoto, F. (2019). A dataset of crowdsourced word sequences: collections and
    answer aggregation for ground truth creation. AnnoNLP; Li, J. (2020). Crowdsourced
    text sequence aggregation based on hybrid reliability and representation. SIGIR
    (HRRASA: similarity-to-others with annotator reliability, of which this is a lite
    form). Fiscus, J. G. (1997). A post-processing system to yield reduced word error
    rates: ROVER. IEEE ASRU.
    """

    def __init__(self, weighted: bool = False, prior: float = 2.0, n_iter: int = 10) -> None:
        self.weighted = weighted
        self.prior = prior
        self.n_iter = n_iter

    def fit(self, item: Any, annotator: Any, texts: Sequence[str],
            n_items: int | None = None, n_annotators: int | None = None) -> Self:
        item = np.asarray(item).ravel()
        annotator = np.asarray(annotator).ravel()
        if not len(item) == len(annotator) == len(texts):
            raise ValueError(
                "item, annotator and texts must have the same length, got "
                f"{len(item)}, {len(annotator)}, {len(texts)}"
            )
        if len(item) == 0:
            raise ValueError("no answers to aggregate")
        for name, codes in (("item", item), ("annotator", annotator)):
            if codes.dtype.kind not in "iu" or codes.min() < 0:
                raise ValueError(f"{name} must be integer codes 0..n-1")
        item, annotator = item.astype(np.int64), annotator.astype(np.int64)
        n_items = n_items or int(item.max()) + 1
        n_annotators = n_annotators or int(annotator.max()) + 1
        x = _features(texts)
        a, b = _pairs_within(item)
        sim = np.asarray(x[a].multiply(x[b]).sum(axis=1)).ravel()
        n_j = np.bincount(annotator, minlength=n_annotators)
        w = np.ones(n_annotators)
        for _ in range(self.n_iter if self.weighted else 1):
            wb = w[annotator[b]]
            # float64 even when no item has two answers (bincount of nothing is int64)
            num = np.bincount(a, weights=wb * sim, minlength=len(item)).astype(np.float64)
            den = np.bincount(a, weights=wb, minlength=len(item)).astype(np.float64)
            # an item with a single answer: that answer wins with score 0
            score = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
            best = _argmax_per_group(item, score, n_items)
            if not self.weighted:
                break
            to_best = np.asarray(x.multiply(x[best[item]]).sum(axis=1)).ravel()
            # the chosen answer itself would score 1: use its score instead
            is_best = best[item] == np.arange(len(item))
            to_best[is_best] = score[is_best]
            m = to_best.mean()
            w = (np.bincount(annotator, weights=to_best, minlength=n_annotators)
                 + self.prior * m) / (n_j + self.prior)
        self.answer_index_ = best
        self.texts_ = [texts[k] if k >= 0 else None for k in best.tolist()]
        self.confidences_ = np.where(best >= 0, score[np.maximum(best, 0)], np.nan)
        self.scores_ = score
        self.skills_ = w
        return self


def compute_word_errors(hypothesis: Sequence[str], reference: Sequence[str]) -> int:
    """Levenshtein distance between two word lists (substitutions, insertions,
    deletions). One numpy row per hypothesis word; the in-row insertion chain
    new[j] = min_k (cand[k] + j - k) is a running minimum."""
    ref = np.asarray(reference, dtype=object)
    row = np.arange(len(ref) + 1, dtype=np.int64)
    steps = np.arange(len(ref) + 1)
    for i, word in enumerate(hypothesis, start=1):
        cand = np.empty_like(row)
        cand[0] = i
        cand[1:] = np.minimum(row[1:] + 1, row[:-1] + (ref != word))
        row = np.minimum.accumulate(cand - steps) + steps
    return int(row[-1])


def compute_wer(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus word error rate: total word edits / total reference words, after
    :func:`normalize_words` on both sides."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    edits = sum(compute_word_errors(normalize_words(h), normalize_words(r))
                for h, r in zip(hypotheses, references))
    words = sum(len(normalize_words(r)) for r in references)
    return edits / words if words else 0.0
