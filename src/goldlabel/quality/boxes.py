"""Bounding-box aggregation: IoU clustering across annotators, reliability-weighted
fused coordinates, and a per-box probability that the object exists.

Input: :class:`BoxAnswers` -- one answer per (item, annotator), possibly with no box (an
annotator who saw the image and drew nothing says "no object here"), and the boxes
(x1, y1, x2, y2, label) of each answer. All items are processed at once: candidate pairs
are the boxes of the same item, clusters are connected components of a sparse graph,
and the existence model is a binary Dawid-Skene over (cluster, annotator) votes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self, cast

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from goldlabel.quality.multi_choice import compute_binary_dawid_skene

__all__ = [
    "BoxAnswers",
    "BoxDawidSkene",
    "MeanBoxConsensus",
    "compute_detection_scores",
    "compute_iou",
    "simulate_box_answers",
]


@dataclass(frozen=True, eq=False)
class BoxAnswers:
    """Answers and their boxes. Box b belongs to answer ``box_answer[b]`` and has corners
    ``boxes[b] = (x1, y1, x2, y2)`` (x2 > x1, y2 > y1) and label code ``box_label[b]``."""

    item: np.ndarray
    annotator: np.ndarray
    box_answer: np.ndarray
    boxes: np.ndarray
    box_label: np.ndarray

    def __post_init__(self) -> None:
        if self.boxes.shape != (len(self.box_answer), 4):
            raise ValueError(f"boxes must be (n_boxes, 4), got {self.boxes.shape}")
        if len(self.box_label) != len(self.box_answer):
            raise ValueError("one box_label per box")
        if np.any(self.boxes[:, 2] <= self.boxes[:, 0]) or np.any(self.boxes[:, 3] <= self.boxes[:, 1]):
            raise ValueError("every box needs x2 > x1 and y2 > y1")
        if len(self.box_answer) and (self.box_answer.min() < 0
                                     or self.box_answer.max() >= len(self.item)):
            raise ValueError("box_answer must index answers")

    @classmethod
    def from_arrays(cls, item: Any, annotator: Any, box_answer: Any, boxes: Any,
                    box_label: Any = None) -> BoxAnswers:
        box_answer = np.asarray(box_answer, dtype=np.int64).ravel()
        return cls(
            np.asarray(item, dtype=np.int64).ravel(),
            np.asarray(annotator, dtype=np.int64).ravel(),
            box_answer,
            np.asarray(boxes, dtype=float).reshape(-1, 4),
            np.zeros(len(box_answer), np.int64) if box_label is None
            else np.asarray(box_label, dtype=np.int64).ravel(),
        )


def compute_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise intersection over union of two (n, 4) arrays of boxes."""
    w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = w * h
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return cast("np.ndarray", inter / (area_a + area_b - inter))


def _pairs_within(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All ordered pairs (i, j), i != j, of rows sharing a group id (sum of n_g^2 pairs)."""
    order = np.argsort(group, kind="stable")
    g = group[order]
    n_groups = int(g.max()) + 1 if len(g) else 0
    size = np.bincount(g, minlength=n_groups)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    per_row = size[g]
    left = np.repeat(np.arange(len(g)), per_row)
    right = start[g][left] + (np.arange(per_row.sum()) - np.repeat(np.cumsum(per_row) - per_row, per_row))
    keep = left != right
    return order[left[keep]], order[right[keep]]


def _cluster(answers: BoxAnswers, iou_threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cluster boxes: link each box to its best-IoU box of every other annotator on the
    same item (IoU >= threshold, same label), then take connected components. Linking
    only the best partner per annotator keeps neighbouring objects from chaining."""
    n = len(answers.box_answer)
    box_item = answers.item[answers.box_answer]
    box_annotator = answers.annotator[answers.box_answer]
    a, b = _pairs_within(box_item)
    iou = compute_iou(answers.boxes[a], answers.boxes[b])
    ok = ((iou >= iou_threshold) & (box_annotator[a] != box_annotator[b])
          & (answers.box_label[a] == answers.box_label[b]))
    a, b, iou = a[ok], b[ok], iou[ok]
    # best partner per (box, other annotator): sort by key then -iou, keep the first
    order = np.lexsort((-iou, box_annotator[b], a))
    a, b = a[order], b[order]
    key = a * (int(answers.annotator.max()) + 1) + box_annotator[b]
    # (np.r_[True, ...] would claim one partner even when no pair matched)
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    graph = sparse.coo_matrix((np.ones(first.sum()), (a[first], b[first])), shape=(n, n))
    _, cluster = connected_components(graph, directed=True, connection="weak")
    return cluster, box_item, box_annotator


def _fuse(boxes: np.ndarray, cluster: np.ndarray, n_clusters: int, weight: np.ndarray) -> np.ndarray:
    total = np.bincount(cluster, weights=weight, minlength=n_clusters)
    return np.stack([np.bincount(cluster, weights=weight * boxes[:, k], minlength=n_clusters)
                     for k in range(4)], axis=1) / total[:, None]


def _majority_label(cluster: np.ndarray, label: np.ndarray, weight: np.ndarray, n_clusters: int) -> np.ndarray:
    n_labels = int(label.max()) + 1 if len(label) else 1
    votes = np.bincount(cluster * n_labels + label, weights=weight,
                        minlength=n_clusters * n_labels).reshape(n_clusters, n_labels)
    winners: np.ndarray = np.argmax(votes, axis=1)
    return winners


def _cluster_votes(answers: BoxAnswers, cluster_item: np.ndarray, cluster: np.ndarray, box_annotator: np.ndarray,
                   n_clusters: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One observation per (cluster, annotator who answered the cluster's item):
    y = 1 when the annotator drew a box in the cluster."""
    item_rows, answer_rows = _expand(cluster_item, answers.item)
    annotator = answers.annotator[answer_rows]
    width = int(answers.annotator.max()) + 1
    drew = np.zeros(n_clusters * width, dtype=bool)
    drew[cluster * width + box_annotator] = True
    y = drew[item_rows * width + annotator].astype(float)
    return item_rows, annotator, y


def _expand(cluster_item: np.ndarray, answer_item: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Join clusters to the answers on their item: rows (cluster index, answer index)."""
    order = np.argsort(answer_item, kind="stable")
    n_items = int(max(answer_item.max(), cluster_item.max(initial=0))) + 1
    count = np.bincount(answer_item, minlength=n_items)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    per = count[cluster_item]
    rows = np.repeat(np.arange(len(cluster_item)), per)
    within = np.arange(per.sum()) - np.repeat(np.cumsum(per) - per, per)
    return rows, order[start[cluster_item][rows] + within]


class _BoxEstimator:
    def _set_result(self, fused: np.ndarray, cluster_item: np.ndarray, labels: np.ndarray, confidence: np.ndarray,
                    keep: np.ndarray) -> None:
        self.cluster_boxes_ = fused
        self.cluster_items_ = cluster_item
        self.cluster_confidences_ = confidence
        self.boxes_ = fused[keep]
        self.box_items_ = cluster_item[keep]
        self.box_labels_ = labels[keep]
        self.confidences_ = confidence[keep]


class MeanBoxConsensus(_BoxEstimator):
    """Baseline in the style of SageMaker Ground Truth / CVAT consensus: match boxes
    across annotators by IoU, average the coordinates of each match group, keep a group
    when at least ``min_share`` of the item's annotators drew it; ``confidences_`` is
    that share."""

    def __init__(self, iou_threshold: float = 0.5, min_share: float = 0.5) -> None:
        self.iou_threshold = iou_threshold
        self.min_share = min_share

    def fit(self, answers: BoxAnswers) -> Self:
        cluster, box_item, box_annotator = _cluster(answers, self.iou_threshold)
        n_clusters = int(cluster.max()) + 1 if len(cluster) else 0
        ones = np.ones(len(cluster))
        fused = _fuse(answers.boxes, cluster, n_clusters, ones)
        cluster_item = np.zeros(n_clusters, np.int64)
        cluster_item[cluster] = box_item
        rows, _, y = _cluster_votes(answers, cluster_item, cluster, box_annotator, n_clusters)
        share = np.bincount(rows, weights=y, minlength=n_clusters) / np.bincount(
            rows, minlength=n_clusters)
        labels = _majority_label(cluster, answers.box_label, ones, n_clusters)
        self._set_result(fused, cluster_item, labels, share, share >= self.min_share)
        return self


class BoxDawidSkene(_BoxEstimator):
    """Boxes with annotator reliability: existence by binary Dawid-Skene over clusters,
    coordinates by precision-weighted mean.

    1. Clusters: link each box to its best-IoU box (>= ``iou_threshold``) of every other
       annotator on the item; clusters are the connected components.
    2. Existence: cluster c is a real object (z_c = 1) with prior pi. Annotator j, having
       answered the item, draws a box in c with probability alpha_j (recall) if z_c = 1
       and phi_j = 1 - beta_j (false-box rate) if z_c = 0; EM as in Dawid & Skene (1979)
       gives ``confidences_`` = P(z_c = 1 | who drew it), ``recalls_`` = alpha,
       ``false_rates_`` = 1 - beta.
    3. Coordinates: box b of annotator j has corners x_b = x_c + size_c * e_b with
       e_b ~ N(0, sigma_j^2 I); fused corners are the mean weighted by 1 / sigma_j^2,
       alternated with sigma_j^2 = (sum of squared scaled residuals + prior * s0^2)
       / (4 n_j + prior) for ``n_fuse`` rounds (``noise_`` = sigma_j).
    A cluster is kept when its confidence >= ``threshold``.

    Dawid, A. P., Skene, A. M. (1979). JRSS C 28(1). Box matching as in the consensus of
    Amazon SageMaker Ground Truth (bounding-box consolidation) and CVAT; reliability
    weighting in the spirit of Branson, S., Van Horn, G., Perona, P. (2017). Lean
    crowdsourcing: combining humans and machines in an online system. CVPR.
    """

    def __init__(self, iou_threshold: float = 0.5, threshold: float = 0.5,
                 prior: tuple[float, float] = (2.0, 1.0), noise_prior: float = 4.0,
                 n_fuse: int = 5, n_iter: int = 100, tol: float = 1e-6) -> None:
        self.iou_threshold = iou_threshold
        self.threshold = threshold
        self.prior = prior
        self.noise_prior = noise_prior
        self.n_fuse = n_fuse
        self.n_iter = n_iter
        self.tol = tol

    def fit(self, answers: BoxAnswers, n_annotators: int | None = None) -> Self:
        n_annotators = n_annotators or int(answers.annotator.max()) + 1
        cluster, box_item, box_annotator = _cluster(answers, self.iou_threshold)
        n_clusters = int(cluster.max()) + 1 if len(cluster) else 0
        cluster_item = np.zeros(n_clusters, np.int64)
        cluster_item[cluster] = box_item
        rows, annotator, y = _cluster_votes(answers, cluster_item, cluster, box_annotator,
                                            n_clusters)
        em = compute_binary_dawid_skene(rows, annotator, y[:, None], n_clusters, n_annotators,
                                        "two", self.prior, self.n_iter, self.tol)
        confidence = em["probas"][:, 0]
        boxes = answers.boxes
        weight = np.ones(len(cluster))
        n_j = np.bincount(box_annotator, minlength=n_annotators)
        for _ in range(self.n_fuse):
            fused = _fuse(boxes, cluster, n_clusters, weight)
            size = np.stack([fused[:, 2] - fused[:, 0], fused[:, 3] - fused[:, 1]] * 2, axis=1)
            scaled = ((boxes - fused[cluster]) / size[cluster]) ** 2
            sq = np.bincount(box_annotator, weights=scaled.sum(axis=1), minlength=n_annotators)
            s0 = sq.sum() / max(4 * n_j.sum(), 1)
            noise_var = (sq + self.noise_prior * s0) / (4 * n_j + self.noise_prior) + 1e-12
            weight = 1.0 / noise_var[box_annotator]
        fused = _fuse(boxes, cluster, n_clusters, weight)
        labels = _majority_label(cluster, answers.box_label, weight, n_clusters)
        self.recalls_ = em["sensitivity"][:, 0]
        self.false_rates_ = 1.0 - em["specificity"][:, 0]
        self.noise_ = np.sqrt(noise_var)
        self.n_iter_ = em["n_iter"]
        self._set_result(fused, cluster_item, labels, confidence, confidence >= self.threshold)
        return self


def compute_detection_scores(pred_item: Any, pred_boxes: Any, true_item: Any, true_boxes: Any,
                             iou_threshold: float = 0.5) -> dict[str, float]:
    """Match predicted to true boxes per item (mutual best IoU, so one-to-one) and report
    precision and recall at ``iou_threshold`` and the mean IoU of true boxes to their
    best prediction (0 where none)."""
    pred_item, true_item = np.asarray(pred_item), np.asarray(true_item)
    pred_boxes = np.asarray(pred_boxes, float).reshape(-1, 4)
    true_boxes = np.asarray(true_boxes, float).reshape(-1, 4)
    group = np.r_[pred_item, true_item]
    is_pred = np.r_[np.ones(len(pred_item), bool), np.zeros(len(true_item), bool)]
    a, b = _pairs_within(group) if len(group) else (np.zeros(0, int), np.zeros(0, int))
    keep = is_pred[a] & ~is_pred[b]
    p, t = a[keep], b[keep] - len(pred_item)
    iou = compute_iou(pred_boxes[p], true_boxes[t]) if len(p) else np.zeros(0)
    best_for_pred = np.zeros(len(pred_item))
    np.maximum.at(best_for_pred, p, iou)
    best_for_true = np.zeros(len(true_item))
    np.maximum.at(best_for_true, t, iou)
    mutual = (iou == best_for_pred[p]) & (iou == best_for_true[t]) & (iou >= iou_threshold)
    tp = len(np.unique(t[mutual]))
    return {
        "precision": tp / len(pred_item) if len(pred_item) else 0.0,
        "recall": tp / len(true_item) if len(true_item) else 0.0,
        "mean_iou": float(best_for_true.mean()) if len(true_item) else 0.0,
    }


def simulate_box_answers(n_items: int = 200, n_annotators: int = 20,
                         answers_per_item: int = 5, random_state: Any = None,
                         ) -> tuple[BoxAnswers, np.ndarray, np.ndarray]:
    """Simulated crowd boxes with known truth, for tests and benchmarks.

    Each item has 1-4 true boxes in a 1000 x 1000 image. Annotators come in three kinds:
    careful (jitter 3% of box size, 5% misses, 0.05 false boxes per item), sloppy (15%,
    20%, 0.3) and spammers (40%, 50%, 1.0). Returns ``(answers, true_item, true_boxes)``.
    """
    rng = np.random.default_rng(random_state)
    n_true = rng.integers(1, 5, n_items)
    true_item = np.repeat(np.arange(n_items), n_true)
    wh = rng.uniform(60, 250, (len(true_item), 2))
    xy = rng.uniform(0, 1000 - wh)
    true_boxes = np.hstack([xy, xy + wh])
    kind = rng.choice(3, n_annotators, p=[0.5, 0.3, 0.2])
    jitter = np.array([0.03, 0.15, 0.40])[kind]
    miss = np.array([0.05, 0.20, 0.50])[kind]
    false_rate = np.array([0.05, 0.3, 1.0])[kind]
    # answers: each item gets answers_per_item distinct annotators
    who = np.argsort(rng.random((n_items, n_annotators)), axis=1)[:, :answers_per_item]
    item = np.repeat(np.arange(n_items), answers_per_item)
    annotator = who.ravel()
    # true boxes drawn by each answer (unless missed), jittered
    rows, answer_rows = _expand(true_item, item)
    seen = rng.random(len(rows)) >= miss[annotator[answer_rows]]
    rows, answer_rows = rows[seen], answer_rows[seen]
    size = np.tile(true_boxes[rows, 2:] - true_boxes[rows, :2], 2)
    noise = rng.normal(size=(len(rows), 4)) * jitter[annotator[answer_rows], None] * size
    drawn = true_boxes[rows] + noise
    # false boxes
    n_false = rng.poisson(false_rate[annotator])
    false_answer = np.repeat(np.arange(len(item)), n_false)
    fwh = rng.uniform(60, 250, (len(false_answer), 2))
    fxy = rng.uniform(0, 1000 - fwh)
    boxes = np.vstack([drawn, np.hstack([fxy, fxy + fwh])])
    box_answer = np.r_[answer_rows, false_answer]
    # keep corners ordered after jitter
    boxes = np.hstack([np.minimum(boxes[:, :2], boxes[:, 2:]),
                       np.maximum(boxes[:, :2], boxes[:, 2:]) + 1e-6])
    answers = BoxAnswers.from_arrays(item, annotator, box_answer, boxes)
    return answers, true_item, true_boxes
