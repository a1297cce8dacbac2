"""Polygon (IoU) and keypoint (OKS) consensus, agreement and gold scoring: exact values on small
cases, and on simulated crowds with known truth, that the confidence means what it says."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from goldlabel.quality import keypoints as K
from goldlabel.quality import polygons as P
from goldlabel.quality.gold import GoldThresholds, score_values

SQUARE = [[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]]
SHIFTED = [[1.0, 0.0], [3.0, 0.0], [3.0, 2.0], [1.0, 2.0]]  # half of SQUARE: IoU 2 / 6
FAR = [[5.0, 5.0], [6.0, 5.0], [6.0, 6.0]]
POLY_Q = SimpleNamespace(labels=["a", "b"])
SKELETON = K.SimpleSkeleton("person", ("head", "hand", "foot"), ((0, 1), (0, 2)), (0.1, 0.1, 0.1))
POSE_Q = SimpleNamespace(labels=["person"], skeletons=[SKELETON])


def person(head, hand, foot, v=(2, 2, 2)):
    pts = {}
    for name, p, vis in zip(("head", "hand", "foot"), (head, hand, foot), v):
        if vis:
            pts[name] = {"x": p[0], "y": p[1], "v": vis}
    return {"label": "person", "points": pts}


def test_polygon_iou_is_exact_and_screening_keeps_it():
    polys = P.PolygonSet.from_values([[{"points": SQUARE, "label": "a"}, {"points": SHIFTED, "label": "a"},
                                       {"points": FAR, "label": "a"}]], ["a"])
    a, b = np.array([0, 0, 1, 0]), np.array([1, 2, 0, 0])
    assert P.polygon_iou(polys, a, polys, b) == pytest.approx([1 / 3, 0.0, 1 / 3, 1.0])
    # below the floor a pair may be screened out (0); at or above it, it is exact
    assert P.polygon_iou(polys, a, polys, b, floor=0.5) == pytest.approx([0.0, 0.0, 0.0, 1.0])
    # a concave L against its bounding square: IoU = area(L) / area(square) = 3 / 4
    ell = [[0, 0], [2, 0], [2, 1], [1, 1], [1, 2], [0, 2]]
    other = P.PolygonSet.from_values([[{"points": ell, "label": "a"}]], ["a"])
    assert P.polygon_iou(polys, np.array([0]), other, np.array([0])) == pytest.approx([0.75])


def test_oks_matches_the_coco_formula():
    truth = person((10, 10), (30, 10), (10, 50))  # box 20 x 40: s^2 = 800
    moved = person((13, 14), (30, 10), (10, 50))  # head 5 px off
    half = person((10, 10), (30, 10), (0, 0), v=(2, 1, 0))
    sets = K.KeypointSet.from_values([[truth], [moved], [half]], [SKELETON])
    e = np.exp(-25 / (2 * 800 * (2 * 0.1) ** 2))
    got = K.compute_oks(sets, np.array([1, 2, 0]), sets, np.array([0, 0, 0]), reference="second")
    assert got == pytest.approx([(e + 2) / 3, 2 / 3, 1.0])
    # symmetric form: the box areas are averaged; a point only one side labeled counts against
    sym = K.compute_oks(sets, np.array([2]), sets, np.array([0]))
    assert sym == pytest.approx([2 / 3], abs=1e-9)


def test_polygon_consensus_per_answer():
    agree = [[{"points": SQUARE, "label": "a"}]] * 3
    value, confidence = P.polygons_consensus(POLY_Q, agree, 0.7)
    assert value == [{"points": SQUARE, "label": "a"}]
    assert confidence == pytest.approx(1 / (1 + np.exp(-3 * np.log(0.7 / 0.3))))
    # the medoid: the polygon closest to the others
    nudged = [[0.0, 0.0], [2.2, 0.0], [2.2, 2.0], [0.0, 2.0]]
    grown = [[0.0, 0.0], [2.5, 0.0], [2.5, 2.5], [0.0, 2.5]]
    value, _ = P.polygons_consensus(POLY_Q, [[{"points": p, "label": "a"}] for p in (nudged, SQUARE, grown)], 0.7)
    assert value == [{"points": nudged, "label": "a"}]
    # one stray polygon among three answers is dropped and makes the item uncertain: P(no object
    # there) from one vote for and two against, 1 - expit(logit(0.7) - 2 logit(0.7)) = 0.7
    value, confidence = P.polygons_consensus(POLY_Q, [[{"points": SQUARE, "label": "a"}],
                                                      [{"points": SQUARE, "label": "a"}, {"points": FAR, "label": "b"}],
                                                      [{"points": SQUARE, "label": "a"}]], 0.7)
    assert value == [{"points": SQUARE, "label": "a"}] and confidence == pytest.approx(0.7)
    # nobody drew anything: "nothing here", as confident as the votes
    value, confidence = P.polygons_consensus(POLY_Q, [[], [], []], 0.7)
    assert value == [] and confidence == pytest.approx(1 / (1 + (0.3 / 0.7) ** 3))


def test_keypoint_consensus_means_positions_and_votes_visibility():
    answers = [[person((10, 10), (30, 10), (10, 50))],
               [person((12, 10), (30, 12), (10, 50), v=(2, 1, 2))],
               [person((11, 10), (30, 11), (10, 50), v=(2, 1, 0))]]
    value, confidence = K.keypoints_consensus(POSE_Q, answers, 0.7)
    assert value == [{"label": "person", "points": {"head": {"x": 11.0, "y": 10.0, "v": 2},
                                                    "hand": {"x": 30.0, "y": 11.0, "v": 1},
                                                    "foot": {"x": 10.0, "y": 50.0, "v": 2}}}]
    assert confidence > 0.9
    value, confidence = K.keypoints_consensus(POSE_Q, [[], [], []], 0.7)
    assert value == [] and confidence > 0.9


def test_agreement_is_mean_pairwise_f1():
    item = np.array([0, 0, 0, 1, 1, 2])
    sq = [{"points": SQUARE, "label": "a"}]
    values = [sq, sq, [], sq, sq, sq]
    got = P.polygon_agreement(item, values, ["a"])
    # item 0: pairs (sq, sq) = 1, (sq, []) = 0 twice -> 1/3; item 1: 1; item 2: one answer
    assert got[:2] == pytest.approx([1 / 3, 1.0]) and np.isnan(got[2])
    p = [person((10, 10), (30, 10), (10, 50))]
    kp = K.keypoint_agreement(np.array([0, 0]), [p, p], [SKELETON])
    assert kp == pytest.approx([1.0])


def test_gold_scoring_with_thresholds():
    gold = [[{"points": SQUARE, "label": "a"}]] * 3
    answers = [[{"points": SQUARE, "label": "a"}], [{"points": SHIFTED, "label": "a"}], None]
    s = score_values("polygons", answers, gold, labels=["a"])
    assert list(s.score) == [1.0, 0.0, 0.0] and list(s.passed) == [True, False, False]
    loose = GoldThresholds.from_settings({"gold_polygons_min_iou": 0.3})
    assert list(score_values("polygons", answers, gold, labels=["a"], thresholds=loose).passed) == [True, True, False]
    truth = [[person((10, 10), (30, 10), (10, 50))]] * 2
    near = person((11, 10), (30, 10), (10, 50))
    off = person((25, 40), (5, 45), (30, 0))
    s = score_values("keypoints", [[near], [near, off]], truth, skeletons=[SKELETON])
    assert list(s.score) == pytest.approx([1.0, 2 / 3]) and list(s.passed) == [True, False]


@pytest.mark.parametrize("kind", ["polygons", "keypoints"])
def test_confidence_means_something_on_simulated_truth(kind):
    """Re-fit over 300 simulated items (careful, sloppy and spamming annotators): the consensus
    matches the truth on most items, and the items it is confident about match far more often
    than the others (measured: polygons 99% exact at confidence >= 0.95 vs 66% below; keypoints
    99.6% vs 80%)."""
    if kind == "polygons":
        item, annotator, values, truth = P.simulate_polygon_answers(300, 20, 5, random_state=1)
        question, refit, options = SimpleNamespace(labels=["object"]), P.refit_polygons, {"labels": ["object"]}
    else:
        item, annotator, values, truth, skeletons = K.simulate_keypoint_answers(300, 20, 5, random_state=1)
        question = SimpleNamespace(labels=["person"], skeletons=skeletons)
        refit, options = K.refit_keypoints, {"skeletons": skeletons}
    items, item_code = np.unique(item, return_inverse=True)
    annotators, annotator_code = np.unique(annotator, return_inverse=True)
    method, out, confidence, _ = refit(question, items, item_code, annotator_code, annotators, values, 0.7, {}, 0)
    assert method == ("polygon_ds" if kind == "polygons" else "keypoint_ds")
    exact = score_values(kind, out, truth, **options).score >= 1.0 - 1e-9
    confident = confidence >= 0.95
    assert exact.mean() >= 0.9
    assert confident.mean() >= 0.6
    assert exact[confident].mean() >= 0.97
    assert exact[~confident].mean() <= exact[confident].mean() - 0.1
    # the same on the one-item-at-a-time update the server runs per answer
    per = [P.polygons_consensus(question, [values[k] for k in np.flatnonzero(item == i)], 0.7) if kind == "polygons"
           else K.keypoints_consensus(question, [values[k] for k in np.flatnonzero(item == i)], 0.7)
           for i in range(len(items))]
    per_exact = score_values(kind, [p[0] for p in per], truth, **options).score >= 1.0 - 1e-9
    per_conf = np.array([p[1] for p in per])
    assert per_exact[per_conf >= 0.95].mean() >= 0.97
