"""``boxes`` consensus: IoU clusters of boxes and a one-coin existence posterior per cluster."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import special

from goldlabel.quality import boxes as box_lib
from goldlabel.quality.consensus.one_coin import broadcast_accuracy, logit_weight
from goldlabel.quality.consensus.question import Question

BOX_IOU = 0.5


# ================================================================ per answer


def _box_answers(item: np.ndarray, annotator: np.ndarray, values: Sequence[Sequence[Mapping[str, Any]]],
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


def _box_value(corners: np.ndarray, label_codes: np.ndarray, labels: Sequence[str]) -> list[dict[str, Any]]:
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


def boxes_consensus(question: Question, values: Sequence[Sequence[Mapping[str, Any]]],
                    accuracy: Any) -> tuple[list[dict[str, Any]], float]:
    """IoU clusters of one item's boxes, one-coin existence posterior per cluster."""
    n = len(values)
    labels = list(question.labels)
    weight = logit_weight(broadcast_accuracy(accuracy, n))
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


# ================================================================ full re-fit (vectorized)


def refit_boxes(q: Any, items: np.ndarray, item: np.ndarray, annotator: np.ndarray, annotator_ids: np.ndarray,
                values: list[Any], default: float, settings: Mapping[str, Any], now: int,
                ) -> tuple[str, list[Any], Any, list[dict[str, Any]] | None]:
    labels = list(q.labels)
    n_items = len(items)
    answers = _box_answers(item, annotator, values, labels)
    recall = np.clip(np.full(len(annotator_ids), default), 0.01, 0.99)
    false_rate = 1.0 - recall
    confidence = np.ones(n_items)
    has_cluster = np.zeros(n_items, bool)
    out_values: list[Any] = [[] for _ in range(n_items)]
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

