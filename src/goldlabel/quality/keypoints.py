"""Keypoint aggregation: OKS clustering of skeleton instances across annotators, the existence
posterior of each cluster, and per keypoint a mean position and a visibility vote.

Object keypoint similarity (COCO): for instances A and B of one label,

    OKS = sum_k [v_A,k > 0 and v_B,k > 0] exp(-d_k^2 / (2 s^2 (2 sigma_k)^2)) / n_k

with ``d_k`` the distance between the two positions of keypoint k, ``s^2`` the object's scale
(area) and ``sigma_k`` the keypoint's sigma (the skeleton's; COCO's by default). Against gold
(:func:`score_keypoints`) it is COCO's own form: ``s^2`` is the area of the gold instance's
bounding box (of its labeled points) and ``n_k`` counts the keypoints labeled in the gold. Between
two annotators (clustering, agreement) it is symmetric: ``s^2`` is the mean of the two boxes'
areas and ``n_k`` counts the keypoints labeled by either, so a point one annotator placed and the
other did not costs as much as a far-off point.

A cluster's value: each keypoint labeled by at least half the cluster's members (v > 0) at the
mean of their positions, with v = 2 (visible) when at least as many said visible as occluded.
Values are the label schema's normalized ``keypoints`` answers,
``[{"label": ..., "points": {name: {"x", "y", "v"}}}, ...]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

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
    "KEYPOINT_OKS",
    "KeypointSet",
    "SimpleSkeleton",
    "compute_oks",
    "keypoint_agreement",
    "keypoints_consensus",
    "refit_keypoints",
    "score_keypoints",
    "simulate_keypoint_answers",
]

class SimpleSkeleton(NamedTuple):
    """A skeleton as the functions here read it (the label schema's ``Skeleton`` has the same
    attributes): label, point names in order, edges as index pairs, one sigma per point."""

    label: str
    points: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...]


#: OKS at which two instances of different annotators are the same object
KEYPOINT_OKS = 0.5
_TINY_AREA = 1e-12


class KeypointSet:
    """Instances as arrays: ``xy`` (n, K, 2), visibility ``v`` (n, K) (0 where not labeled),
    ``sigma`` (n, K) from the label's skeleton, label codes, the answer of each instance, and the
    area of the bounding box of its labeled points. K is the largest skeleton's size."""

    def __init__(self, answer: Any, label: Any, xy: Any, v: Any, sigma: Any) -> None:
        self.answer = np.asarray(answer, np.int64)
        self.label = np.asarray(label, np.int64)
        self.xy = np.asarray(xy, np.float64)
        self.v = np.asarray(v, np.int64)
        self.sigma = np.asarray(sigma, np.float64)
        labeled = self.v > 0
        big = np.where(labeled[..., None], self.xy, np.inf).min(axis=1) if len(self.v) else np.zeros((0, 2))
        top = np.where(labeled[..., None], self.xy, -np.inf).max(axis=1) if len(self.v) else np.zeros((0, 2))
        extent = np.where(np.isfinite(top - big), top - big, 0.0)
        self.area = extent[:, 0] * extent[:, 1]

    @classmethod
    def from_values(cls, values: Sequence[Sequence[Mapping[str, Any]] | None], skeletons: Sequence[Any],
                    ) -> KeypointSet:
        """From normalized answers; ``skeletons`` in label order, each with ``label``, ``points``
        (names) and ``sigmas``. An instance of an unknown label gets the code ``len(skeletons)``."""
        index = {s.label: k for k, s in enumerate(skeletons)}
        slots = [{name: j for j, name in enumerate(s.points)} for s in skeletons]
        width = max((len(s.points) for s in skeletons), default=1)
        sigmas = np.full((len(skeletons) + 1, width), 0.072)
        for k, s in enumerate(skeletons):
            sigmas[k, :len(s.sigmas)] = s.sigmas
        answer: list[int] = []
        label: list[int] = []
        rows: list[tuple[int, Any]] = []
        for a, value in enumerate(values):
            for instance in value or ():
                code = index.get(instance["label"], len(skeletons))
                answer.append(a)
                label.append(code)
                rows.append((code, instance["points"]))
        xy = np.zeros((len(rows), width, 2))
        v = np.zeros((len(rows), width), np.int64)
        for r, (code, points) in enumerate(rows):
            if code < len(skeletons):
                slot = slots[code]
                for name, p in points.items():
                    j = slot.get(name)
                    if j is not None:
                        xy[r, j] = (p["x"], p["y"])
                        v[r, j] = p.get("v", 2)
        return cls(answer, label, xy, v, sigmas[np.asarray(label, np.int64)] if rows else np.zeros((0, width)))

    def __len__(self) -> int:
        return len(self.answer)


def compute_oks(first: KeypointSet, a: np.ndarray, second: KeypointSet, b: np.ndarray, *,
                reference: str = "both") -> np.ndarray:
    """Row-wise OKS of instances ``first[a]`` and ``second[b]``. ``reference="second"``: COCO's
    form with ``second`` as the ground truth; ``"both"``: the symmetric form (module doc)."""
    if len(a) == 0:
        return np.zeros(0)
    la, lb = first.v[a] > 0, second.v[b] > 0
    d2 = ((first.xy[a] - second.xy[b]) ** 2).sum(axis=-1)
    if reference == "second":
        area, counted = second.area[b], lb
    else:
        area, counted = (first.area[a] + second.area[b]) / 2, la | lb
    k2 = (2 * second.sigma[b]) ** 2
    e = np.exp(-d2 / (2 * np.maximum(area, _TINY_AREA)[:, None] * k2))
    n = counted.sum(axis=1)
    return np.where(n > 0, (e * (la & lb)).sum(axis=1) / np.maximum(n, 1), 0.0)


def _fit(points: KeypointSet, item: Any, annotator: Any, accuracy: Any, *, learn: bool,
         n_annotators: int | None = None) -> tuple[ShapeAnswers, ShapeConsensus]:
    answers = ShapeAnswers.from_arrays(item, annotator, points.answer, points.label)

    def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return compute_oks(points, a, points, b)

    return answers, fit_shapes(answers, similarity, KEYPOINT_OKS, accuracy=accuracy, learn=learn,
                               n_annotators=n_annotators)


def _fused(points: KeypointSet, cluster: np.ndarray, n_clusters: int,
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cluster and keypoint: mean position over members that labeled it, labeled share,
    and whether visible (v = 2) votes outnumber occluded (v = 1)."""
    labeled = (points.v > 0).astype(np.float64)
    members = np.bincount(cluster, minlength=n_clusters).astype(np.float64)
    K = points.v.shape[1]
    count = np.zeros((n_clusters, K))
    np.add.at(count, cluster, labeled)
    total = np.zeros((n_clusters, K, 2))
    np.add.at(total, cluster, points.xy * labeled[..., None])
    visible = np.zeros((n_clusters, K))
    np.add.at(visible, cluster, (points.v == 2) - (points.v == 1).astype(np.float64))
    mean = total / np.maximum(count, 1)[..., None]
    return mean, count / members[:, None], visible >= 0


def _round(v: float) -> float:
    return float(f"{v:.12g}")


def _values(skeletons: Sequence[Any], label_code: np.ndarray, mean: np.ndarray, share: np.ndarray,
            visible: np.ndarray, clusters: Sequence[int]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for c in clusters:
        code = int(label_code[c])
        s = skeletons[code]
        pts = {name: {"x": _round(mean[c, j, 0]), "y": _round(mean[c, j, 1]), "v": 2 if visible[c, j] else 1}
               for j, name in enumerate(s.points) if share[c, j] >= 0.5}
        if pts:
            out.append({"label": s.label, "points": pts})
    return out


def keypoints_consensus(question: Any, values: Sequence[Sequence[Mapping[str, Any]]], accuracy: Any,
                        ) -> tuple[list[dict[str, Any]], float]:
    """One item's consensus: (kept instances, confidence); ``question`` has ``skeletons``."""
    n = len(values)
    skeletons = list(question.skeletons)
    points = KeypointSet.from_values(values, skeletons)
    acc = np.broadcast_to(np.asarray(accuracy, np.float64), (n,))
    if len(points) == 0 or not (points.label < len(skeletons)).any():
        a = np.clip(acc, 0.01, 0.99)
        return [], float(special.expit(np.sum(np.log(a) - np.log1p(-a))))
    answers, fit = _fit(points, np.zeros(n, np.int64), np.arange(n), acc, learn=False, n_annotators=n)
    n_clusters = len(fit.probability)
    mean, share, visible = _fused(points, fit.cluster, n_clusters)
    keep = np.flatnonzero((fit.probability >= 0.5) & (fit.cluster_label < len(skeletons)))
    return (_values(skeletons, fit.cluster_label, mean, share, visible, keep.tolist()),
            float(item_confidence(fit, answers, 1)[0]))


def refit_keypoints(question: Any, items: np.ndarray, item: np.ndarray, annotator: np.ndarray,
                    annotator_ids: np.ndarray, values: list[Any], default: float, settings: Mapping[str, Any],
                    now: int) -> tuple[str, list[Any], Any, list[dict[str, Any]] | None]:
    """Every item at once (recall and false-instance rates by binary Dawid-Skene), returning
    (method, values per item, confidence per item, None) like the other kinds' re-fits."""
    skeletons = list(question.skeletons)
    n_items = len(items)
    points = KeypointSet.from_values(values, skeletons)
    answers, fit = _fit(points, item, annotator, default, learn=True, n_annotators=len(annotator_ids))
    out_values: list[Any] = [[] for _ in range(n_items)]
    n_clusters = len(fit.probability)
    if n_clusters:
        mean, share, visible = _fused(points, fit.cluster, n_clusters)
        keep = np.flatnonzero((fit.probability >= 0.5) & (fit.cluster_label < len(skeletons)))
        for c in keep[np.argsort(fit.cluster_item[keep], kind="stable")].tolist():
            out_values[int(fit.cluster_item[c])].extend(
                _values(skeletons, fit.cluster_label, mean, share, visible, [c]))
    return "keypoint_ds", out_values, item_confidence(fit, answers, n_items), None


def keypoint_agreement(item: Any, values: Sequence[Sequence[Mapping[str, Any]] | None], skeletons: Sequence[Any],
                       min_oks: float = KEYPOINT_OKS) -> np.ndarray:
    """Per item code, the mean pairwise instance F1 of its answers (instances matched at OKS
    >= ``min_oks``)."""
    item = np.asarray(item, np.int64)
    points = KeypointSet.from_values(values, skeletons)
    return pairwise_f1(item, np.arange(len(item)), points.answer, points.label,
                       lambda a, b: compute_oks(points, a, points, b), min_oks, int(item.max(initial=-1)) + 1)


def score_keypoints(answers: Sequence[Any], gold: Sequence[Any], skeletons: Sequence[Any], *, min_oks: float,
                    min_f1: float) -> GoldScores:
    """Gold scoring: answer instances matched one-to-one to gold instances of the same label,
    greedily by OKS (COCO's form, the gold as reference; a match needs OKS >= ``min_oks``);
    score the F1, pass at ``min_f1``."""
    from goldlabel.quality.gold import _score_regions

    pa, pg = KeypointSet.from_values(answers, skeletons), KeypointSet.from_values(gold, skeletons)
    return _score_regions(pa.answer, pa.label, pg.answer, pg.label,
                          lambda a, g: compute_oks(pa, a, pg, g, reference="second"), len(answers), min_oks, min_f1)


def simulate_keypoint_answers(n_items: int = 200, n_annotators: int = 20, answers_per_item: int = 5,
                              random_state: Any = None, skeleton: Any = None,
                              ) -> tuple[np.ndarray, np.ndarray, list[Any], list[list[dict[str, Any]]], list[Any]]:
    """Simulated crowd keypoints with known truth, for tests and benchmarks.

    Each item has 1-3 people (a 5-point skeleton: head, two hands, two feet, about 200 px tall in
    a 1000 x 1000 image, apart from each other). Annotators are careful (jitter 2% of the height
    per point, 5% missed people, 0.05 false people per item, 3% unlabeled points), sloppy (4%,
    20%, 0.3, 10%) or spammers (20%, 50%, 1.0, 30%). Returns ``(item, annotator, values,
    true_values, skeletons)``.
    """
    names = ("head", "left_hand", "right_hand", "left_foot", "right_foot")
    skeleton = skeleton or SimpleSkeleton("person", names, ((0, 1), (0, 2), (0, 3), (0, 4)), (0.05,) * 5)
    shape = np.array([[0, -100], [-60, 0], [60, 0], [-40, 100], [40, 100]], np.float64)
    rng = np.random.default_rng(random_state)
    kind = rng.choice(3, n_annotators, p=[0.5, 0.3, 0.2])
    jitter = np.array([0.02, 0.04, 0.20])[kind] * 200
    miss = np.array([0.05, 0.20, 0.50])[kind]
    false_rate = np.array([0.05, 0.3, 1.0])[kind]
    drop = np.array([0.03, 0.10, 0.30])[kind]
    truth = []
    for _ in range(n_items):
        truth.append([np.array([150 + 300 * k + rng.uniform(-20, 20), rng.uniform(150, 850)]) + shape
                      * rng.uniform(0.8, 1.2) for k in range(int(rng.integers(1, 4)))])

    def instance(pts: Any, v: Any = None) -> dict[str, Any]:
        v = np.full(len(pts), 2) if v is None else v
        return {"label": "person", "points": {n: {"x": float(round(p[0], 2)), "y": float(round(p[1], 2)),
                                                  "v": int(vi)} for n, p, vi in zip(names, pts, v) if vi > 0}}

    who = np.argsort(rng.random((n_items, n_annotators)), axis=1)[:, :answers_per_item]
    item = np.repeat(np.arange(n_items), answers_per_item)
    annotator = who.ravel()
    values = []
    for i, j in zip(item.tolist(), annotator.tolist()):
        drawn = []
        for pts in truth[i]:
            if rng.random() < miss[j]:
                continue
            v = np.where(rng.random(len(names)) < drop[j], 0, rng.choice([1, 2], len(names), p=[0.2, 0.8]))
            if not v.any():
                v[0] = 2
            drawn.append(instance(np.clip(pts + rng.normal(size=pts.shape) * jitter[j], 0, 1000), v))
        for _ in range(int(rng.poisson(false_rate[j]))):
            drawn.append(instance(np.clip(rng.uniform(150, 850, 2) + shape, 0, 1000)))
        values.append(drawn)
    true_values = [[instance(pts) for pts in people] for people in truth]
    return item, annotator, values, true_values, [skeleton]
