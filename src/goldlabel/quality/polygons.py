"""Polygon aggregation: IoU clustering across annotators, the existence posterior of each
cluster, and the cluster's medoid polygon as its value.

Polygon IoU is exact, computed by GEOS through shapely 2's vectorized functions
(``shapely.intersection`` / ``shapely.area`` over arrays of geometries): no rasterization
resolution to choose, the same number in relative and in pixel coordinates, and one C call per
batch of pairs. A cluster's value is its medoid -- the member with the largest summed IoU to the
other members -- rather than a vertex average: annotators trace the same outline with different
numbers of vertices, and a medoid is always one of the valid, simple polygons that were drawn.

Values are the label schema's normalized ``polygons`` answers,
``[{"points": [[x, y], ...], "label": ...}, ...]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import special

from goldlabel.quality.shapes import (
    ShapeAnswers,
    ShapeConsensus,
    fit_shapes,
    item_confidence,
    pairwise_f1,
)

if TYPE_CHECKING:
    from goldlabel.quality.gold import GoldScores

__all__ = [
    "POLYGON_IOU",
    "PolygonSet",
    "polygon_agreement",
    "polygon_iou",
    "polygons_consensus",
    "refit_polygons",
    "score_polygons",
    "simulate_polygon_answers",
]

#: IoU at which two polygons of different annotators are the same object
POLYGON_IOU = 0.5


class PolygonSet:
    """Polygons as shapely geometries with their label codes and the answer each belongs to."""

    def __init__(self, answer: np.ndarray, label: np.ndarray, geometries: np.ndarray) -> None:
        import shapely

        self.answer = np.asarray(answer, np.int64)
        self.label = np.asarray(label, np.int64)
        self.geometries = geometries
        shapely.prepare(self.geometries)
        self.area = shapely.area(self.geometries)
        self.bounds = shapely.bounds(self.geometries).reshape(-1, 4)

    @classmethod
    def from_values(cls, values: Sequence[Sequence[Mapping[str, Any]] | None], labels: Sequence[str]) -> PolygonSet:
        """From normalized answer values, one per answer (None or [] for none); polygons of a label
        not in ``labels`` get the code ``len(labels)`` (they match no known label)."""
        import shapely

        index = {label: k for k, label in enumerate(labels)}
        answer: list[int] = []
        label: list[int] = []
        coords: list[Any] = []
        ring: list[int] = []
        n = 0
        for a, value in enumerate(values):
            for polygon in value or ():
                points = polygon["points"]
                answer.append(a)
                label.append(index.get(polygon["label"], len(index)))
                coords.extend(points)
                coords.append(points[0])  # close the ring
                ring.extend([n] * (len(points) + 1))
                n += 1
        if n == 0:
            return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.empty(0, object))
        rings = shapely.linearrings(np.asarray(coords, np.float64), indices=np.asarray(ring, np.int64))
        return cls(np.asarray(answer), np.asarray(label), shapely.polygons(rings))

    def __len__(self) -> int:
        return len(self.answer)


def polygon_iou(first: PolygonSet, a: np.ndarray, second: PolygonSet, b: np.ndarray,
                floor: float = 0.0) -> np.ndarray:
    """Row-wise IoU of polygons ``first[a]`` and ``second[b]`` (index arrays of equal length).

    GEOS intersections are the cost, so pairs are screened first with numpy: a pair whose IoU
    cannot reach ``floor`` -- bounding boxes apart, or an upper bound (the smaller of the box
    intersection and the smaller area, over the union that leaves) below ``floor`` -- gets 0
    without an intersection; with ``floor=0`` every pair whose boxes overlap is exact. Each
    unordered pair is computed once.
    """
    import shapely

    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    out = np.zeros(len(a))
    if len(a) == 0:
        return out
    ba, bb = first.bounds[a], second.bounds[b]
    w = np.minimum(ba[:, 2], bb[:, 2]) - np.maximum(ba[:, 0], bb[:, 0])
    h = np.minimum(ba[:, 3], bb[:, 3]) - np.maximum(ba[:, 1], bb[:, 1])
    area_a, area_b = first.area[a], second.area[b]
    best = np.minimum(np.clip(w, 0, None) * np.clip(h, 0, None), np.minimum(area_a, area_b))
    bound = best / np.maximum(area_a + area_b - best, 1e-300)
    todo = np.flatnonzero((w > 0) & (h > 0) & (bound >= floor - 1e-12))
    if len(todo) == 0:
        return out
    if first is second:  # (i, j) and (j, i): one intersection
        lo, hi = np.minimum(a[todo], b[todo]), np.maximum(a[todo], b[todo])
        pairs, inverse = np.unique(np.stack([lo, hi], axis=1), axis=0, return_inverse=True)
        inter = shapely.area(shapely.intersection(first.geometries[pairs[:, 0]],
                                                  first.geometries[pairs[:, 1]]))[inverse.ravel()]
    else:
        inter = shapely.area(shapely.intersection(first.geometries[a[todo]], second.geometries[b[todo]]))
    union = area_a[todo] + area_b[todo] - inter
    out[todo] = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return out


def _fit(polygons: PolygonSet, item: Any, annotator: Any, accuracy: Any, *, learn: bool,
         n_annotators: int | None = None) -> tuple[ShapeAnswers, ShapeConsensus]:
    answers = ShapeAnswers.from_arrays(item, annotator, polygons.answer, polygons.label)

    def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return polygon_iou(polygons, a, polygons, b)

    def clustering_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return polygon_iou(polygons, a, polygons, b, floor=POLYGON_IOU)

    return answers, fit_shapes(answers, similarity, POLYGON_IOU, accuracy=accuracy, learn=learn,
                               n_annotators=n_annotators, cluster_similarity=clustering_similarity)


def _value(polygons: PolygonSet, values_flat: list[Any], shapes: np.ndarray, labels: Sequence[str],
           ) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for s in shapes.tolist():
        polygon = values_flat[s]
        out.append({"points": [list(p) for p in polygon["points"]], "label": polygon["label"]})
    return out


def _flat(values: Sequence[Sequence[Mapping[str, Any]] | None]) -> list[Any]:
    return [p for v in values for p in (v or ())]


def polygons_consensus(question: Any, values: Sequence[Sequence[Mapping[str, Any]]], accuracy: Any,
                       ) -> tuple[list[dict[str, Any]], float]:
    """One item's consensus: (kept polygons, confidence). ``question`` has ``labels``;
    ``values`` are the annotators' answers; ``accuracy`` one-coin accuracies (one or per answer).
    Confidence is the smallest ``max(p, 1 - p)`` over the clusters (or P(nothing) when no
    polygon was drawn)."""
    n = len(values)
    labels = list(question.labels)
    polygons = PolygonSet.from_values(values, labels)
    acc = np.broadcast_to(np.asarray(accuracy, np.float64), (n,))
    answers, fit = _fit(polygons, np.zeros(n, np.int64), np.arange(n), acc, learn=False, n_annotators=n)
    if len(polygons) == 0:
        a = np.clip(acc, 0.01, 0.99)
        return [], float(special.expit(np.sum(np.log(a) - np.log1p(-a))))
    keep = fit.probability >= 0.5
    confidence = item_confidence(fit, answers, 1)[0]
    return _value(polygons, _flat(values), fit.medoid[keep], labels), float(confidence)


def refit_polygons(question: Any, items: np.ndarray, item: np.ndarray, annotator: np.ndarray,
                   annotator_ids: np.ndarray, values: list[Any], default: float, settings: Mapping[str, Any],
                   now: int) -> tuple[str, list[Any], Any, list[dict[str, Any]] | None]:
    """Every item at once: recall and false-polygon rate per annotator learned by binary
    Dawid-Skene over the IoU clusters. Returns (method, values per item, confidence per item,
    None) like the other kinds' re-fits."""
    labels = list(question.labels)
    n_items = len(items)
    polygons = PolygonSet.from_values(values, labels)
    answers, fit = _fit(polygons, item, annotator, default, learn=True, n_annotators=len(annotator_ids))
    flat = _flat(values)
    out_values: list[Any] = [[] for _ in range(n_items)]
    keep = np.flatnonzero(fit.probability >= 0.5)
    for c in keep[np.argsort(fit.cluster_item[keep], kind="stable")].tolist():
        out_values[int(fit.cluster_item[c])].extend(_value(polygons, flat, fit.medoid[[c]], labels))
    return "polygon_ds", out_values, item_confidence(fit, answers, n_items), None


def polygon_agreement(item: Any, values: Sequence[Sequence[Mapping[str, Any]] | None], labels: Sequence[str],
                      min_iou: float = POLYGON_IOU) -> np.ndarray:
    """Per item code (0..max), the mean pairwise polygon F1 of its answers at ``min_iou``."""
    item = np.asarray(item, np.int64)
    polygons = PolygonSet.from_values(values, labels)
    return pairwise_f1(item, np.arange(len(item)), polygons.answer, polygons.label,
                       lambda a, b: polygon_iou(polygons, a, polygons, b), min_iou,
                       int(item.max(initial=-1)) + 1)


def score_polygons(answers: Sequence[Any], gold: Sequence[Any], labels: Sequence[str], *, min_iou: float,
                   min_f1: float) -> GoldScores:
    """Gold scoring: answer polygons matched one-to-one to gold polygons of the same label,
    greedily by IoU (a match needs IoU >= ``min_iou``); score the F1, pass at ``min_f1``."""
    from goldlabel.quality.gold import _score_regions

    pa, pg = PolygonSet.from_values(answers, labels), PolygonSet.from_values(gold, labels)
    return _score_regions(pa.answer, pa.label, pg.answer, pg.label, lambda a, g: polygon_iou(pa, a, pg, g),
                          len(answers), min_iou, min_f1)


def _regular_polygon(center: Any, radius: Any, n: int, phase: Any) -> np.ndarray:
    angle = phase + np.arange(n) * 2 * np.pi / n
    return np.stack([center[0] + radius * np.cos(angle), center[1] + radius * np.sin(angle)], axis=1)


def simulate_polygon_answers(n_items: int = 200, n_annotators: int = 20, answers_per_item: int = 5,
                             random_state: Any = None,
                             ) -> tuple[np.ndarray, np.ndarray, list[Any], list[list[dict[str, Any]]]]:
    """Simulated crowd polygons with known truth, for tests and benchmarks.

    Each item has 1-3 true objects (convex polygons of 5-9 vertices, radius 40-120 px, in a
    1000 x 1000 image, apart from each other). Annotators are careful (vertex jitter 3% of the
    radius, 5% misses, 0.05 false polygons per item), sloppy (15%, 20%, 0.3) or spammers (45%,
    50%, 1.0); each traces with its own vertex count. Returns ``(item, annotator, values,
    true_values)``: values are normalized answers (label "object"), ``true_values`` per item.
    """
    rng = np.random.default_rng(random_state)
    kind = rng.choice(3, n_annotators, p=[0.5, 0.3, 0.2])
    jitter = np.array([0.03, 0.15, 0.45])[kind]
    miss = np.array([0.05, 0.20, 0.50])[kind]
    false_rate = np.array([0.05, 0.3, 1.0])[kind]
    truth: list[list[tuple[Any, Any]]] = []
    for _ in range(n_items):
        objects = []
        for k in range(int(rng.integers(1, 4))):
            center = (150 + 300 * k + rng.uniform(-20, 20), rng.uniform(150, 850))
            objects.append((center, rng.uniform(40, 120)))
        truth.append(objects)
    who = np.argsort(rng.random((n_items, n_annotators)), axis=1)[:, :answers_per_item]
    item = np.repeat(np.arange(n_items), answers_per_item)
    annotator = who.ravel()
    values = []
    for i, j in zip(item.tolist(), annotator.tolist()):
        drawn = []
        for center, radius in truth[i]:
            if rng.random() < miss[j]:
                continue
            n = int(rng.integers(5, 10))
            shift = rng.normal(size=2) * jitter[j] * radius
            r = radius * np.clip(1 + rng.normal(size=n) * jitter[j] / 2, 0.5, 1.5)
            pts = _regular_polygon((center[0] + shift[0], center[1] + shift[1]), r[:, None].T[0], n,
                                   rng.uniform(0, 2 * np.pi / n))
            drawn.append({"points": np.clip(pts, 0, 1000).round(2).tolist(), "label": "object"})
        for _ in range(int(rng.poisson(false_rate[j]))):
            pts = _regular_polygon(rng.uniform(100, 900, 2), rng.uniform(30, 90), 6, rng.uniform(0, 1))
            drawn.append({"points": pts.round(2).tolist(), "label": "object"})
        values.append(drawn)
    true_values = [[{"points": _regular_polygon(c, r, 8, 0.0).round(2).tolist(), "label": "object"}
                    for c, r in objects] for objects in truth]
    return item, annotator, values, true_values
