"""What the platform's confidence means for the non-choice kinds, measured against truth.

For every kind with a visible set with truth, the confidence the platform stores (the full
re-fit, ``goldlabel.quality.consensus.refit_question``, and the per-answer update,
``consensus_for`` at the default accuracy 0.7) is compared with how often the consensus is
right, in the sense the confidence claims:

* spans (pico_participants): share of the characters any annotator marked whose class
  (inside a span or not) the consensus gets right;
* text (the CrowdWSA sets): the consensus agrees with the reference, i.e. n-gram cosine
  similarity >= ``text_similarity`` (0.8), the agreement the confidence is computed from;
* rating (snow_affect, zheng_emotion): the reference rating is within the tolerance of the
  consensus (half a step on the integer scale, and 5 points as a looser reading);
* polygons and keypoints (no public crowd set with truth: the simulations
  ``quality.polygons.simulate_polygon_answers`` / ``quality.keypoints.simulate_keypoint_answers``,
  1000 images, 20 annotators, 5 per image): the consensus matches the truth exactly, i.e. gold
  F1 = 1 (every true object found at IoU / OKS >= 0.5, nothing else kept) -- the item's
  confidence is the smallest certainty over its objects, so it claims the whole item;

Reported per (set, path): items, mean confidence, observed rate, ECE (15 equal-width bins; a
fractional correctness is allowed). Usage: ``python benchmarks/confidence_kinds.py``
(``--shapes``: the simulated polygons and keypoints only, no data sets needed).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _datasets import datasets_dir, require_datasets

from goldlabel.domain.label_schema import LabelSchema
from goldlabel.quality import consensus as ck
from goldlabel.quality import text as text_lib

BINS = 15
ROWS: list[tuple] = []


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def ece(confidence, correct) -> float:
    confidence = np.clip(np.asarray(confidence, dtype=np.float64), 0, 1)
    correct = np.asarray(correct, dtype=np.float64)
    which = np.minimum((confidence * BINS).astype(np.int64), BINS - 1)
    gap = np.abs(np.bincount(which, correct, BINS) - np.bincount(which, confidence, BINS))
    return float(gap.sum() / len(confidence))


def report(dataset: str, path: str, confidence, correct) -> None:
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, float)
    ROWS.append((dataset, path, len(confidence), confidence.mean(), correct.mean(), ece(confidence, correct)))


def long_form(rows: list[dict]):
    items = sorted({r["item"] for r in rows})
    code = {k: i for i, k in enumerate(items)}
    workers = {w: i + 1 for i, w in enumerate(sorted({r["worker"] for r in rows}))}
    item = np.array([code[r["item"]] for r in rows], np.int64)
    annotator = np.array([workers[r["worker"]] for r in rows], np.int64)
    return items, item, annotator


def both_paths(question, items, item, annotator, values, settings=None):
    """(refit confidences, refit values, per-answer confidences, per-answer values) per item."""
    fit = ck.refit_question(question, item + 1, annotator, values, settings=settings)
    assert np.array_equal(fit.item_ids, np.arange(1, len(items) + 1))
    per_item: list[list] = [[] for _ in items]
    for i, v in zip(item.tolist(), values):
        per_item[i].append(v)
    one = [ck.consensus_for(question, vs, 0.7, settings) for vs in per_item]
    return fit.confidences, fit.values, np.array([c for _, c in one]), [v for v, _ in one]


def bench_spans() -> None:
    folder = datasets_dir() / "pico_participants"
    texts = {r["item"]: r["text"] for r in read_rows(folder / "texts.csv")}
    question = LabelSchema.parse({"questions": [{"name": "p", "kind": "spans", "labels": ["P"]}]}).questions[0]
    rows = read_rows(folder / "answers.csv")
    items, item, annotator = long_form(rows)
    values = [[{"start": s, "end": e, "label": "P"} for s, e in json.loads(r["label"])] for r in rows]
    truth = {r["item"]: json.loads(r["label"]) for r in read_rows(folder / "truth.csv")}

    def mask(spans, n):
        m = np.zeros(n, bool)
        for s in spans:
            m[s["start"] if isinstance(s, dict) else s[0]:s["end"] if isinstance(s, dict) else s[1]] = True
        return m

    marked = [np.zeros(len(texts[k]) + 1, bool) for k in items]
    for i, v in zip(item.tolist(), values):
        marked[i] |= mask(v, len(marked[i]))
    refit_conf, refit_values, one_conf, one_values = both_paths(question, items, item, annotator, values)
    for path, conf, consensus in (("re-fit", refit_conf, refit_values), ("per answer", one_conf, one_values)):
        right = []
        for k, key in enumerate(items):
            n = len(marked[k])
            if not marked[k].any():
                right.append(float(not mask(truth[key], n).any()))
                continue
            agree = mask(consensus[k], n) == mask(truth[key], n)
            right.append(float(agree[marked[k]].mean()))
        report("pico_participants", path, conf, right)


def bench_text() -> None:
    question = LabelSchema.parse({"questions": [{"name": "t", "kind": "text"}]}).questions[0]
    for name in ("crowdwsa2019_j1", "crowdwsa2019_t1", "crowdwsa2019_t2"):
        folder = datasets_dir() / name
        rows = read_rows(folder / "answers.csv")
        items, item, annotator = long_form(rows)
        values = [r["label"] for r in rows]
        truth = {r["item"]: r["label"] for r in read_rows(folder / "truth.csv")}
        refit_conf, refit_values, one_conf, one_values = both_paths(question, items, item, annotator, values)
        for path, conf, consensus in (("re-fit", refit_conf, refit_values), ("per answer", one_conf, one_values)):
            x = text_lib._features([*consensus, *(truth[k] for k in items)])
            n = len(items)
            sim = np.asarray(x[:n].multiply(x[n:]).sum(axis=1)).ravel()
            right = (sim >= 0.8 - 1e-12) | (np.asarray(consensus, dtype=object) == np.asarray([truth[k] for k in items],
                                                                                               dtype=object))
            report(name, path, conf, right)


def bench_ratings() -> None:
    for name in ("snow_affect", "zheng_emotion"):
        folder = datasets_dir() / name
        rows = read_rows(folder / "answers.csv")
        items, item, annotator = long_form(rows)
        values = [float(r["label"]) for r in rows]
        lo, hi = min(values), max(values)
        truth = {r["item"]: float(r["label"]) for r in read_rows(folder / "truth.csv")}
        ref = np.array([truth[k] for k in items])
        for tolerance in (None, 5.0):
            settings = {} if tolerance is None else {"rating_tolerance": tolerance}
            question = LabelSchema.parse({"questions": [{"name": "r", "kind": "rating", "min": lo,
                                                         "max": hi}]}).questions[0]
            tol = ck.rating_tolerance(question, settings)
            refit_conf, refit_values, one_conf, one_values = both_paths(question, items, item, annotator, values,
                                                                        settings)
            for path, conf, consensus in (("re-fit", refit_conf, refit_values), ("per answer", one_conf, one_values)):
                right = np.abs(np.asarray(consensus, float) - ref) <= tol + 1e-9
                report(f"{name} (tolerance {tol:g})", path, conf, right)


def bench_shapes() -> None:
    from goldlabel.quality import keypoints as kp_lib
    from goldlabel.quality import polygons as poly_lib
    from goldlabel.quality.gold import score_values

    for kind in ("polygons", "keypoints"):
        if kind == "polygons":
            item, annotator, values, truth = poly_lib.simulate_polygon_answers(1000, 20, 5, random_state=7)
            spec = {"name": "q", "kind": "polygons", "labels": ["object"]}
        else:
            item, annotator, values, truth, skeletons = kp_lib.simulate_keypoint_answers(1000, 20, 5, random_state=7)
            s = skeletons[0]
            spec = {"name": "q", "kind": "keypoints", "labels": ["person"], "skeletons": {"person": {
                "points": list(s.points), "sigmas": dict(zip(s.points, s.sigmas))}}}
        question = LabelSchema.parse({"questions": [spec]}).questions[0]
        options = {"labels": question.labels} if kind == "polygons" else {"skeletons": question.skeletons}
        items = np.arange(1000)
        refit_conf, refit_values, one_conf, one_values = both_paths(question, items, item, annotator + 1, values)
        for path, conf, consensus in (("re-fit", refit_conf, refit_values), ("per answer", one_conf, one_values)):
            right = score_values(kind, consensus, truth, **options).score >= 1 - 1e-9
            report(f"{kind} (simulated)", path, conf, right)


def main() -> int:
    if "--shapes" in sys.argv:
        bench_shapes()
    else:
        require_datasets()
        for bench in (bench_spans, bench_text, bench_ratings, bench_shapes):
            bench()
    print("| set | path | items | mean confidence | observed | ECE |")
    print("|---|---|---:|---:|---:|---:|")
    for dataset, path, n, conf, right, error in ROWS:
        print(f"| {dataset} | {path} | {n} | {conf:.3f} | {right:.3f} | {error:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
