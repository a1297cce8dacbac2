"""What polygon and keypoint consensus share: clustering labeled shapes across annotators by a
pairwise similarity, the existence posterior of each cluster, and a medoid per cluster.

The shape kinds differ only in their similarity (polygon IoU in :mod:`.polygons`, keypoint OKS in
:mod:`.keypoints`) and in how a cluster becomes one value. Clustering is the boxes' rule
(:mod:`.boxes`): link each shape to its most similar shape of every other annotator on the same
item (same label, similarity >= threshold), clusters are the connected components. Existence is
the boxes' model too: one vote per (cluster, annotator who answered the item), "drew a shape in
the cluster" or not, weighted by one-coin log-odds (per answer) or by recall / false-shape rates
learned with a binary Dawid-Skene (re-fit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from scipy import sparse, special
from scipy.sparse.csgraph import connected_components

from goldlabel.quality.boxes import _cluster_votes, _majority_label, _pairs_within
from goldlabel.quality.multi_choice import compute_binary_dawid_skene

Similarity = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True, eq=False)
class ShapeAnswers:
    """Answers (one per item and annotator, possibly with no shape) and their labeled shapes:
    shape s belongs to answer ``shape_answer[s]`` and has label code ``shape_label[s]``."""

    item: np.ndarray
    annotator: np.ndarray
    shape_answer: np.ndarray
    shape_label: np.ndarray

    @classmethod
    def from_arrays(cls, item: Any, annotator: Any, shape_answer: Any, shape_label: Any) -> ShapeAnswers:
        return cls(np.asarray(item, np.int64).ravel(), np.asarray(annotator, np.int64).ravel(),
                   np.asarray(shape_answer, np.int64).ravel(), np.asarray(shape_label, np.int64).ravel())


def cluster_shapes(answers: ShapeAnswers, similarity: Similarity, threshold: float) -> np.ndarray:
    """Cluster index per shape (see the module doc). ``similarity(a, b)`` scores index pairs."""
    n = len(answers.shape_answer)
    if n == 0:
        return np.zeros(0, np.int64)
    shape_item = answers.item[answers.shape_answer]
    shape_annotator = answers.annotator[answers.shape_answer]
    a, b = _pairs_within(shape_item)
    ok = (shape_annotator[a] != shape_annotator[b]) & (answers.shape_label[a] == answers.shape_label[b])
    a, b = a[ok], b[ok]
    sim = similarity(a, b) if len(a) else np.zeros(0)
    ok = sim >= threshold
    a, b, sim = a[ok], b[ok], sim[ok]
    order = np.lexsort((-sim, shape_annotator[b], a))
    a, b = a[order], b[order]
    key = a * (int(answers.annotator.max()) + 1) + shape_annotator[b]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    graph = sparse.coo_matrix((np.ones(int(first.sum())), (a[first], b[first])), shape=(n, n))
    components: np.ndarray = connected_components(graph, directed=True, connection="weak")[1]
    return components.astype(np.int64)


def medoids(cluster: np.ndarray, n_clusters: int, weight: np.ndarray, similarity: Similarity) -> np.ndarray:
    """Per cluster, the member with the largest weighted similarity to the other members (its
    own weight breaks ties: a one-member cluster is its member)."""
    a, b = _pairs_within(cluster) if len(cluster) else (np.zeros(0, np.int64), np.zeros(0, np.int64))
    score = weight * 1e-9
    if len(a):
        score = score + np.bincount(a, weights=similarity(a, b) * weight[b], minlength=len(cluster))
    order = np.lexsort((-score, cluster))
    first = np.ones(len(order), bool)
    first[1:] = cluster[order][1:] != cluster[order][:-1]
    out = np.zeros(n_clusters, np.int64)
    out[cluster[order][first]] = order[first]
    return out


@dataclass(frozen=True, eq=False)
class ShapeConsensus:
    """Clusters of one shape kind: per cluster its item, label code, medoid shape index and the
    probability that the object exists; per annotator recall and false-shape rate (re-fit)."""

    cluster: np.ndarray
    cluster_item: np.ndarray
    cluster_label: np.ndarray
    medoid: np.ndarray
    probability: np.ndarray
    recall: np.ndarray
    false_rate: np.ndarray


def _evidence(answers: ShapeAnswers, cluster: np.ndarray, n_clusters: int,
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    shape_item = answers.item[answers.shape_answer]
    cluster_item = np.zeros(n_clusters, np.int64)
    cluster_item[cluster] = shape_item
    shape_annotator = answers.annotator[answers.shape_answer]
    # _cluster_votes reads only ``item`` and ``annotator``, which ShapeAnswers has as BoxAnswers does
    rows, who, drew = _cluster_votes(cast(Any, answers), cluster_item, cluster, shape_annotator, n_clusters)
    return cluster_item, rows, who, drew


def fit_shapes(answers: ShapeAnswers, similarity: Similarity, threshold: float, *,
               accuracy: Any = 0.7, learn: bool = False, n_annotators: int | None = None,
               prior: tuple[float, float] = (2.0, 1.0),
               cluster_similarity: Similarity | None = None) -> ShapeConsensus:
    """Cluster, then the existence posterior of every cluster.

    ``learn=False``: one-coin, annotator j's vote weighs ``logit(accuracy[j])`` either way.
    ``learn=True``: recall and false-shape rate per annotator by binary Dawid-Skene over the
    clusters, then existence with those rates and a prior of 1/2 (the learned prevalence of
    drawn clusters tends to 1 on small projects and would let one stray shape count as certain).
    ``cluster_similarity``: a cheaper similarity for clustering, exact at or above ``threshold``
    (anything below may be reported as any value below it); ``similarity`` picks the medoids.
    """
    n_annotators = n_annotators or (int(answers.annotator.max()) + 1 if len(answers.annotator) else 0)
    acc = np.clip(np.broadcast_to(np.asarray(accuracy, np.float64), (n_annotators,)), 0.01, 0.99)
    recall, false_rate = acc.copy(), 1.0 - acc
    cluster = cluster_shapes(answers, cluster_similarity or similarity, threshold)
    n_clusters = int(cluster.max()) + 1 if len(cluster) else 0
    if n_clusters == 0:
        empty = np.zeros(0, np.int64)
        return ShapeConsensus(cluster, empty, empty, empty, np.zeros(0), recall, false_rate)
    cluster_item, rows, who, drew = _evidence(answers, cluster, n_clusters)
    if learn and n_clusters < len(cluster):
        em = compute_binary_dawid_skene(rows, who, drew[:, None], n_clusters, n_annotators, "two",
                                        prior, 100, 1e-6)
        recall = np.clip(em["sensitivity"][:, 0], 0.01, 0.99)
        false_rate = np.clip(1.0 - em["specificity"][:, 0], 0.01, 0.99)
    evidence = np.where(drew > 0, np.log(recall[who]) - np.log(false_rate[who]),
                        np.log1p(-recall[who]) - np.log1p(-false_rate[who]))
    probability = special.expit(np.bincount(rows, weights=evidence, minlength=n_clusters))
    weight = np.ones(len(cluster))
    label = _majority_label(cluster, answers.shape_label, weight, n_clusters)
    return ShapeConsensus(cluster, cluster_item, label, medoids(cluster, n_clusters, weight, similarity),
                          probability, recall, false_rate)


def item_confidence(consensus: ShapeConsensus, answers: ShapeAnswers, n_items: int) -> np.ndarray:
    """Per item: the smallest certainty ``max(p, 1 - p)`` over its clusters; an item with no
    shape at all: the probability that there is nothing (every annotator drew nothing)."""
    confidence = np.ones(n_items)
    has = np.zeros(n_items, bool)
    if len(consensus.probability):
        p = consensus.probability
        np.minimum.at(confidence, consensus.cluster_item, np.maximum(p, 1.0 - p))
        has[consensus.cluster_item] = True
    r, f = consensus.recall[answers.annotator], consensus.false_rate[answers.annotator]
    nothing = special.expit(np.bincount(answers.item, weights=np.log1p(-f) - np.log1p(-r), minlength=n_items))
    return np.where(has, confidence, nothing)


def pairwise_f1(item: np.ndarray, annotator: np.ndarray, shape_answer: np.ndarray, shape_label: np.ndarray,
                similarity: Similarity, threshold: float, n_items: int) -> np.ndarray:
    """Agreement per item: the mean over pairs of answers on it of the F1 of their shapes,
    matched one-to-one (greedy by similarity, same label, similarity >= threshold); NaN for an
    item with fewer than two answers. Two answers with no shape agree fully."""
    from goldlabel.quality.gold import _cross_within, _greedy_match_count

    item = np.asarray(item, np.int64)
    first, second = _pairs_within(item)
    keep = first < second
    first, second = first[keep], second[keep]
    n_pairs = len(first)
    out = np.full(n_items, np.nan)
    if n_pairs == 0:
        return out
    # every shape of answer `first[p]` on side a, of `second[p]` on side g, for each pair p
    pair_of_answer_a = _cross_within(shape_answer, first)
    pair_of_answer_g = _cross_within(shape_answer, second)
    sa, pa = pair_of_answer_a  # shape index, pair index
    sg, pg = pair_of_answer_g
    n_labels = int(shape_label.max(initial=0)) + 1
    a, g = _cross_within(pa * n_labels + shape_label[sa], pg * n_labels + shape_label[sg])
    sim = similarity(sa[a], sg[g]) if len(a) else np.zeros(0)
    ok = sim >= threshold - 1e-12
    a, g, sim = a[ok], g[ok], sim[ok]
    matched = _greedy_match_count(pa[a], a, g, sim, n_pairs)
    total = np.bincount(pa, minlength=n_pairs) + np.bincount(pg, minlength=n_pairs)
    f1 = np.where(total > 0, 2 * matched / np.maximum(total, 1), 1.0)
    pair_item = item[first]
    sums = np.bincount(pair_item, weights=f1, minlength=n_items)
    counts = np.bincount(pair_item, minlength=n_items)
    out[counts > 0] = sums[counts > 0] / counts[counts > 0]
    return out
