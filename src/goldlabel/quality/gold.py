"""Scoring answers against gold, for every question kind: a score in [0, 1] and pass / fail.

Each ``score_*`` function scores a batch of (answer, gold) pairs at once and returns
:class:`GoldScores`. The math is vectorized over the batch; turning JSON-shaped answers into
arrays (:func:`score_values`) is the edge, one pass over the values.

Per kind, with the pass rule's threshold named as in the project's quality settings:

* choice: score 1 when the label equals the gold label, else 0; passes on 1.
* rating: score ``1 - |a - g| / (max - min)``; passes when ``|a - g| <= tolerance``
  (``gold_rating_tolerance``; by default half a step, so exact on a stepped scale, and a
  twentieth of the range on a continuous scale).
* multi_choice: score the Jaccard overlap ``|A & G| / |A | G|`` of the label sets (1 when both
  are empty); passes at ``gold_multi_choice_min_jaccard``.
* spans and boxes: answer regions are matched one-to-one to gold regions of the same label,
  greedily by intersection over union (highest first), a match needing IoU >= ``min_iou``
  (``gold_spans_min_iou``, ``gold_boxes_min_iou``); score the F1 ``2 m / (n_answer + n_gold)``
  of the m matches (1 when both are empty); passes at ``gold_spans_min_f1`` /
  ``gold_boxes_min_f1``. Span IoU is over character offsets ``[start, end)``.
* polygons: as boxes, with exact polygon IoU (``gold_polygons_min_iou``, ``gold_polygons_min_f1``;
  :mod:`goldlabel.quality.polygons`).
* keypoints: as boxes, instances matched by COCO's object keypoint similarity against the gold
  instance (``gold_keypoints_min_oks``, ``gold_keypoints_min_f1``; :mod:`goldlabel.quality.keypoints`).
* ranking: Kendall's tau-b between the answer's and the gold's order (ties allowed on either
  side); score ``(tau + 1) / 2``; passes when ``tau >= gold_ranking_min_tau``.
* text: score ``1 - lev(a, g) / max(|a|, |g|)``, the normalized Levenshtein similarity of the
  two strings after case folding and collapsing white space (1 when both are empty); passes at
  ``gold_text_min_similarity``.

The greedy matching of regions runs in rounds over the whole batch: every region proposes its
best-IoU partner, and mutual proposals are matched; with ties broken by index this gives the
same matching as taking pairs one by one in order of IoU (the best remaining pair is always a
mutual proposal), in as many rounds as the largest answer has regions, not one per answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from goldlabel.quality.boxes import compute_iou

__all__ = [
    "DEFAULT_THRESHOLDS",
    "GoldScores",
    "GoldThresholds",
    "compute_levenshtein",
    "default_rating_tolerance",
    "score_boxes",
    "score_choice",
    "score_multi_choice",
    "score_rankings",
    "score_ratings",
    "score_spans",
    "score_texts",
    "score_values",
]


@dataclass(frozen=True)
class GoldThresholds:
    """Pass thresholds per kind; the defaults are the project settings' defaults."""

    rating_tolerance: float | None = None
    multi_choice_min_jaccard: float = 0.5
    spans_min_iou: float = 0.5
    spans_min_f1: float = 0.8
    boxes_min_iou: float = 0.5
    boxes_min_f1: float = 0.8
    polygons_min_iou: float = 0.5
    polygons_min_f1: float = 0.8
    keypoints_min_oks: float = 0.5
    keypoints_min_f1: float = 0.8
    ranking_min_tau: float = 0.5
    text_min_similarity: float = 0.8

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> GoldThresholds:
        """From a project's quality settings (keys ``gold_<field>``; absent keys: defaults)."""
        return cls(**{name: settings[f"gold_{name}"] for name in cls.__dataclass_fields__
                      if settings.get(f"gold_{name}") is not None})


DEFAULT_THRESHOLDS = GoldThresholds()


@dataclass(frozen=True, eq=False)
class GoldScores:
    """One score in [0, 1] and one pass flag per (answer, gold) pair."""

    score: np.ndarray
    passed: np.ndarray


def _scores(score: np.ndarray, passed: np.ndarray) -> GoldScores:
    return GoldScores(np.clip(np.asarray(score, np.float64), 0.0, 1.0), np.asarray(passed, bool))


def default_rating_tolerance(low: float, high: float, step: float | None) -> float:
    """Half a step (exact agreement on a stepped scale), else a twentieth of the range."""
    return step / 2 if step else (high - low) / 20


# ---------------------------------------------------------------- choice, rating, multi_choice


def score_choice(answers: Any, gold: Any) -> GoldScores:
    """Equal labels (or label codes) score 1."""
    same = np.asarray(answers, dtype=object) == np.asarray(gold, dtype=object)
    return _scores(same.astype(np.float64), same)


def score_ratings(answers: Any, gold: Any, *, low: float, high: float, tolerance: float) -> GoldScores:
    """Distance on the scale [low, high]; passes within ``tolerance``. NaN answers fail."""
    a = np.asarray(answers, np.float64)
    g = np.asarray(gold, np.float64)
    distance = np.abs(a - g)
    span = high - low if high > low else 1.0
    # A hair of slack: 0.1 + 0.2 - 0.3 is not 0 in floating point.
    passed = distance <= tolerance + 1e-9 * max(1.0, abs(high), abs(low))
    return _scores(np.nan_to_num(1.0 - distance / span, nan=0.0), passed & ~np.isnan(distance))


def score_multi_choice(answers: Any, gold: Any, *, min_jaccard: float) -> GoldScores:
    """Jaccard overlap of boolean membership matrices (n_pairs, n_labels)."""
    a = np.asarray(answers, bool)
    g = np.asarray(gold, bool)
    inter = (a & g).sum(axis=1)
    union = (a | g).sum(axis=1)
    jaccard = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    return _scores(jaccard, jaccard >= min_jaccard - 1e-12)


# ---------------------------------------------------------------- regions: spans and boxes


def _cross_within(key_a: np.ndarray, key_g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (a, g) index pair with ``key_a[a] == key_g[g]`` (sum over keys of n_a * n_g)."""
    order = np.argsort(key_g, kind="stable")
    sorted_g = key_g[order]
    lo = np.searchsorted(sorted_g, key_a, side="left")
    hi = np.searchsorted(sorted_g, key_a, side="right")
    count = hi - lo
    a = np.repeat(np.arange(len(key_a)), count)
    offset = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    return a, order[lo[a] + offset]


def _first_per_group(group: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Index of the smallest ``rank`` in each group, for the groups that occur (by position)."""
    order = np.lexsort((rank, group))
    first = np.ones(len(order), bool)
    first[1:] = group[order][1:] != group[order][:-1]
    return order[first]


def _greedy_match_count(pair: np.ndarray, a: np.ndarray, g: np.ndarray, iou: np.ndarray,
                        n_pairs: int) -> np.ndarray:
    """Matches per pair of a one-to-one greedy matching by IoU over candidate edges (a, g)."""
    matched = np.zeros(n_pairs, np.int64)
    # Edge order: IoU descending, then indexes: a strict order, so proposals are unambiguous.
    rank = np.empty(len(iou), np.int64)
    rank[np.lexsort((g, a, -iou))] = np.arange(len(iou))
    alive = np.ones(len(iou), bool)
    used_a = np.zeros(int(a.max(initial=-1)) + 1, bool)
    used_g = np.zeros(int(g.max(initial=-1)) + 1, bool)
    while alive.any():
        edges = np.flatnonzero(alive)
        proposed = np.zeros((2, len(iou)), bool)
        proposed[0, edges[_first_per_group(a[edges], rank[edges])]] = True
        proposed[1, edges[_first_per_group(g[edges], rank[edges])]] = True
        mutual = np.flatnonzero(proposed[0] & proposed[1])
        np.add.at(matched, pair[mutual], 1)
        used_a[a[mutual]] = True
        used_g[g[mutual]] = True
        alive &= ~(used_a[a] | used_g[g])
    return matched


def _score_regions(pair_a: np.ndarray, label_a: np.ndarray, pair_g: np.ndarray, label_g: np.ndarray,
                   iou_of: Callable[..., Any], n_pairs: int, min_iou: float, min_f1: float) -> GoldScores:
    n_labels = int(max(label_a.max(initial=-1), label_g.max(initial=-1))) + 1
    a, g = _cross_within(pair_a * n_labels + label_a, pair_g * n_labels + label_g)
    iou = iou_of(a, g)
    keep = iou >= min_iou - 1e-12
    a, g, iou = a[keep], g[keep], iou[keep]
    matched = _greedy_match_count(pair_a[a], a, g, iou, n_pairs)
    total = np.bincount(pair_a, minlength=n_pairs) + np.bincount(pair_g, minlength=n_pairs)
    f1 = np.where(total > 0, 2 * matched / np.maximum(total, 1), 1.0)
    return _scores(f1, f1 >= min_f1 - 1e-12)


def score_spans(answer_pair: Any, answer_spans: Any, answer_label: Any, gold_pair: Any, gold_spans: Any,
                gold_label: Any, *, n_pairs: int, min_iou: float, min_f1: float) -> GoldScores:
    """Span F1 per pair. Spans are rows ``(start, end)`` (``[start, end)``, end > start) with an
    integer label code; ``*_pair`` says which (answer, gold) pair each span belongs to."""
    pa, pg = np.asarray(answer_pair, np.int64), np.asarray(gold_pair, np.int64)
    sa = np.asarray(answer_spans, np.float64).reshape(-1, 2)
    sg = np.asarray(gold_spans, np.float64).reshape(-1, 2)

    def iou_of(a: np.ndarray, g: np.ndarray) -> np.ndarray:
        inter = np.clip(np.minimum(sa[a, 1], sg[g, 1]) - np.maximum(sa[a, 0], sg[g, 0]), 0, None)
        union = (sa[a, 1] - sa[a, 0]) + (sg[g, 1] - sg[g, 0]) - inter
        return cast("np.ndarray", inter / union)

    return _score_regions(pa, np.asarray(answer_label, np.int64), pg, np.asarray(gold_label, np.int64),
                          iou_of, n_pairs, min_iou, min_f1)


def score_boxes(answer_pair: Any, answer_boxes: Any, answer_label: Any, gold_pair: Any, gold_boxes: Any,
                gold_label: Any, *, n_pairs: int, min_iou: float, min_f1: float) -> GoldScores:
    """Box F1 per pair. Boxes are rows ``(x1, y1, x2, y2)`` with an integer label code."""
    ba = np.asarray(answer_boxes, np.float64).reshape(-1, 4)
    bg = np.asarray(gold_boxes, np.float64).reshape(-1, 4)
    return _score_regions(np.asarray(answer_pair, np.int64), np.asarray(answer_label, np.int64),
                          np.asarray(gold_pair, np.int64), np.asarray(gold_label, np.int64),
                          lambda a, g: compute_iou(ba[a], bg[g]), n_pairs, min_iou, min_f1)


# ---------------------------------------------------------------- ranking


def _ordered_pairs_within(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    i, j = _cross_within(group, group)
    keep = i != j
    return i[keep], j[keep]


def score_rankings(pair: Any, answer_rank: Any, gold_rank: Any, *, n_pairs: int, min_tau: float) -> GoldScores:
    """Kendall's tau-b per pair from long arrays: one row per (pair, candidate) with the
    candidate's position in the answer and in the gold (lower is better; ties share one).

    tau_b = (C - D) / sqrt((n0 - n1) (n0 - n2)) over the candidate pairs, n1 and n2 the pairs
    tied in the answer and in the gold. Where every candidate is tied on one side, tau is 1 if
    both sides tie everything and 0 otherwise.
    """
    p = np.asarray(pair, np.int64)
    ra, rg = np.asarray(answer_rank, np.float64), np.asarray(gold_rank, np.float64)
    i, j = _ordered_pairs_within(p)  # every unordered pair twice: the ratio is unchanged
    sa, sg = np.sign(ra[i] - ra[j]), np.sign(rg[i] - rg[j])
    owner = p[i]
    s = np.bincount(owner, weights=sa * sg, minlength=n_pairs)
    n0 = np.bincount(owner, minlength=n_pairs).astype(np.float64)
    n1 = np.bincount(owner, weights=sa == 0, minlength=n_pairs)
    n2 = np.bincount(owner, weights=sg == 0, minlength=n_pairs)
    denominator = np.sqrt((n0 - n1) * (n0 - n2))
    both_tied = (n0 - n1 == 0) & (n0 - n2 == 0)
    tau = np.where(denominator > 0, s / np.where(denominator > 0, denominator, 1.0),
                   np.where(both_tied, 1.0, 0.0))
    return _scores((tau + 1) / 2, tau >= min_tau - 1e-12)


# ---------------------------------------------------------------- text


def _normalize_text(text: str) -> str:
    return " ".join(str(text).casefold().split())


def _code_points(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Texts as a zero-padded (n, longest) array of code points, and their lengths."""
    lengths = np.fromiter((len(t) for t in texts), np.int64, count=len(texts))
    width = int(lengths.max(initial=0))
    flat = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int32)
    out = np.zeros((len(texts), width), np.int32)
    rows = np.repeat(np.arange(len(texts)), lengths)
    cols = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out[rows, cols] = flat
    return out, lengths


def _levenshtein_bits(a: str, b: str) -> int:
    """One pair by Myers' bit-vector algorithm (Myers 1999, in Hyyro's formulation): a column
    of the dynamic program is two bit vectors (+1 / -1 steps), here Python integers of
    len(b) bits, so each character of ``a`` costs a few word operations per 64 characters."""
    if len(a) < len(b):
        a, b = b, a
    m = len(b)
    if m == 0:
        return len(a)
    peq: dict[str, int] = {}
    for k, c in enumerate(b):
        peq[c] = peq.get(c, 0) | (1 << k)
    full, high = (1 << m) - 1, 1 << (m - 1)
    vp, vn, distance = full, 0, m
    for c in a:
        eq = peq.get(c, 0)
        xv = eq | vn
        xh = (((eq & vp) + vp) ^ vp) | eq
        hp = vn | (~(xh | vp) & full)
        hn = vp & xh
        if hp & high:
            distance += 1
        elif hn & high:
            distance -= 1
        hp = ((hp << 1) | 1) & full
        hn = (hn << 1) & full
        vp = hn | (~(xv | hp) & full)
        vn = hp & xv
    return distance


# Up to this many pairs, one bit-vector pass each beats the batched dynamic program: the
# server scores one gold answer at a time (a 200-character text: 0.5 ms against 3.8 ms).
_BITS_UP_TO = 8


def compute_levenshtein(first: Sequence[str], second: Sequence[str]) -> np.ndarray:
    """Levenshtein distance (insertions, deletions, substitutions of code points) of each pair.

    A batch is one dynamic-programming row per pair, all pairs at once: the loop runs over the
    characters of the longest first string, each step a numpy operation over the batch (the
    in-row insertion chain new[j] = min_k (cand[k] + j - k) is a running minimum). A handful of
    pairs (the server scores one answer at a time) go through :func:`_levenshtein_bits` instead.
    """
    if len(first) != len(second):
        raise ValueError(f"{len(first)} strings against {len(second)}")
    if len(first) <= _BITS_UP_TO:
        return np.fromiter((_levenshtein_bits(a, b) for a, b in zip(first, second)), np.int64, len(first))
    a, la = _code_points(first)
    b, lb = _code_points(second)
    n, width = b.shape
    steps = np.arange(width + 1, dtype=np.int32)
    row = np.tile(steps, (n, 1))
    cand = np.empty_like(row)
    through = np.empty((n, width), np.int32)
    differs = np.empty((n, width), bool)
    ragged = bool((la != la.max(initial=0)).any())
    # In place, int32: the steps are memory-bound (10,000 pairs of 40 characters: 1.4 s -> 0.6 s).
    for i in range(a.shape[1]):
        cand[:, 0] = i + 1
        np.not_equal(b, a[:, i:i + 1], out=differs)
        np.add(row[:, :-1], differs, out=through)
        np.add(row[:, 1:], 1, out=cand[:, 1:])
        np.minimum(cand[:, 1:], through, out=cand[:, 1:])
        np.subtract(cand, steps, out=cand)
        np.minimum.accumulate(cand, axis=1, out=cand)
        np.add(cand, steps, out=cand)
        if ragged:  # a pair whose first string has ended keeps its last row
            live = i < la
            row[live] = cand[live]
        else:
            row, cand = cand, row
    # Columns past a pair's own second string are padding: read each pair at its length.
    return cast("np.ndarray", row[np.arange(n), lb].astype(np.int64))


def score_texts(answers: Sequence[str], gold: Sequence[str], *, min_similarity: float) -> GoldScores:
    """Normalized Levenshtein similarity after case folding and white-space collapsing."""
    a = [_normalize_text(t) for t in answers]
    g = [_normalize_text(t) for t in gold]
    longest = np.maximum(np.fromiter(map(len, a), np.int64, len(a)), np.fromiter(map(len, g), np.int64, len(g)))
    distance = compute_levenshtein(a, g) if len(a) else np.zeros(0, np.int64)
    similarity = np.where(longest > 0, 1.0 - distance / np.maximum(longest, 1), 1.0)
    return _scores(similarity, similarity >= min_similarity - 1e-12)


# ---------------------------------------------------------------- JSON-shaped values


def _region_arrays(values: Sequence[Any], labels: Sequence[str], keys: tuple[str, ...],
                   corners: Callable[..., tuple[Any, ...]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    index = {label: k for k, label in enumerate(labels)}
    pair, coords, code = [], [], []
    for p, regions in enumerate(values):
        for r in regions or ():
            pair.append(p)
            coords.append(corners(*(r[k] for k in keys)))
            code.append(index.get(r["label"], len(index)))  # an unknown label matches nothing
    width = 4 if len(keys) == 4 else 2
    return (np.asarray(pair, np.int64), np.asarray(coords, np.float64).reshape(-1, width),
            np.asarray(code, np.int64))


def _ranks(ranking: Sequence[Any], ties: bool) -> dict[str, int]:
    if ties:
        return {str(c): k for k, group in enumerate(ranking) for c in group}
    return {str(c): k for k, c in enumerate(ranking)}


def score_values(kind: str, answers: Sequence[Any], gold: Sequence[Any], *,
                 thresholds: GoldThresholds = DEFAULT_THRESHOLDS, labels: Sequence[str] = (),
                 scale: tuple[float, float, float | None] | None = None,
                 allow_ties: bool = False, skeletons: Sequence[Any] = ()) -> GoldScores:
    """Score answers against gold given as the label schema's normalized JSON values.

    ``labels``: the question's labels (multi_choice, spans, boxes); ``scale``: (min, max, step)
    of a rating question; ``allow_ties``: a ranking given as groups of tied candidates;
    ``skeletons``: a keypoints question's skeletons (label, points, sigmas) in label order. An
    absent answer (None) counts as empty for multi_choice, spans and boxes, as "" for text,
    and fails for choice, rating and ranking.
    """
    if len(answers) != len(gold):
        raise ValueError(f"{len(answers)} answers against {len(gold)} gold values")
    n = len(answers)
    if kind == "choice":
        return score_choice(answers, gold)
    if kind == "rating":
        if scale is None:
            raise ValueError("a rating needs its scale (min, max, step)")
        low, high, step = scale
        tolerance = thresholds.rating_tolerance
        if tolerance is None:
            tolerance = default_rating_tolerance(low, high, step)
        a = np.array([np.nan if v is None else v for v in answers], np.float64)
        return score_ratings(a, np.asarray(gold, np.float64), low=low, high=high, tolerance=tolerance)
    if kind == "multi_choice":
        index = {label: k for k, label in enumerate(labels)}
        width = len(index) + 1  # the last column: labels the schema does not know (never gold)
        rows = [(p, index.get(label, len(index))) for p, chosen in enumerate(answers) for label in chosen or ()]
        gold_rows = [(p, index.get(label, len(index))) for p, chosen in enumerate(gold) for label in chosen or ()]
        a = np.zeros((n, width), bool)
        g = np.zeros((n, width), bool)
        if rows:
            a[tuple(np.asarray(rows).T)] = True
        if gold_rows:
            g[tuple(np.asarray(gold_rows).T)] = True
        return score_multi_choice(a, g, min_jaccard=thresholds.multi_choice_min_jaccard)
    keys: tuple[str, ...]
    corners: Callable[..., tuple[Any, ...]]
    if kind == "spans":
        keys, corners = ("start", "end"), lambda s, e: (s, e)
        pa, sa, la = _region_arrays(answers, labels, keys, corners)
        pg, sg, lg = _region_arrays(gold, labels, keys, corners)
        return score_spans(pa, sa, la, pg, sg, lg, n_pairs=n, min_iou=thresholds.spans_min_iou,
                           min_f1=thresholds.spans_min_f1)
    if kind == "boxes":
        keys, corners = ("x", "y", "w", "h"), lambda x, y, w, h: (x, y, x + w, y + h)
        pa, ba, la = _region_arrays(answers, labels, keys, corners)
        pg, bg, lg = _region_arrays(gold, labels, keys, corners)
        return score_boxes(pa, ba, la, pg, bg, lg, n_pairs=n, min_iou=thresholds.boxes_min_iou,
                           min_f1=thresholds.boxes_min_f1)
    if kind == "polygons":
        from goldlabel.quality.polygons import score_polygons

        return score_polygons(answers, gold, labels, min_iou=thresholds.polygons_min_iou,
                              min_f1=thresholds.polygons_min_f1)
    if kind == "keypoints":
        from goldlabel.quality.keypoints import score_keypoints

        return score_keypoints(answers, gold, skeletons, min_oks=thresholds.keypoints_min_oks,
                               min_f1=thresholds.keypoints_min_f1)
    if kind == "ranking":
        pair, ra, rg = [], [], []
        for p, (answer, truth) in enumerate(zip(answers, gold)):
            gold_rank = _ranks(truth, allow_ties)
            answer_rank = _ranks(answer or (), allow_ties)
            last = len(gold_rank)  # a candidate the answer left out ranks below every other
            for candidate, k in gold_rank.items():
                pair.append(p)
                rg.append(k)
                ra.append(answer_rank.get(candidate, last))
        scores = score_rankings(np.asarray(pair, np.int64), np.asarray(ra, np.float64),
                                np.asarray(rg, np.float64), n_pairs=n, min_tau=thresholds.ranking_min_tau)
        missing = np.array([a is None for a in answers], bool)
        return _scores(np.where(missing, 0.0, scores.score), scores.passed & ~missing)
    if kind == "text":
        return score_texts(["" if a is None else a for a in answers], list(gold),
                           min_similarity=thresholds.text_min_similarity)
    raise ValueError(f"no gold scoring for question kind {kind!r}")
