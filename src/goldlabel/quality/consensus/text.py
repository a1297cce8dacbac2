"""``text`` consensus: the medoid answer and the one-coin posterior that it is right."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import special

from goldlabel.quality import text as text_lib
from goldlabel.quality.consensus.one_coin import broadcast_accuracy, logit_weight

DEFAULT_TEXT_SIMILARITY = 0.8


# ================================================================ per answer


def text_consensus(texts: Sequence[str], accuracy: Any,
                   threshold: float = DEFAULT_TEXT_SIMILARITY) -> tuple[str, float]:
    """The medoid answer and the one-coin posterior that it is right."""
    texts = [str(t) for t in texts]
    n = len(texts)
    best = int(text_lib.TextMedoid().fit(np.zeros(n, np.int64), np.arange(n), texts).answer_index_[0])
    x = text_lib._features(texts)
    sim = np.asarray((x @ x[best].T).todense()).ravel()
    agree = (sim >= threshold - 1e-12) | (np.asarray(texts, dtype=object) == texts[best])
    weight = logit_weight(broadcast_accuracy(accuracy, n))
    return texts[best], float(special.expit(np.where(agree, weight, -weight).sum()))


# ================================================================ full re-fit (vectorized)


def refit_text(q: Any, items: np.ndarray, item: np.ndarray, annotator: np.ndarray, annotator_ids: np.ndarray,
               values: list[Any], default: float, settings: Mapping[str, Any], now: int,
               ) -> tuple[str, list[Any], Any, list[dict[str, Any]] | None]:
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
    weight = logit_weight(np.full(len(texts), default))
    confidence = special.expit(np.bincount(item, weights=np.where(agree, weight, -weight),
                                           minlength=len(items)))
    return "text_medoid", [texts[k] for k in best.tolist()], confidence, None

