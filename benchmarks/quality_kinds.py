"""Benchmark the non-categorical aggregators of goldlabel.quality and their baselines.

Prints a table: dataset, method, metric, value, time (seconds of fit).
Datasets are read from $GOLDLABEL_DATASETS or ../shared/datasets; simulated sets are
generated with fixed seeds. Usage: python benchmarks/quality_kinds.py
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from goldlabel.quality.boxes import (
    BoxDawidSkene,
    MeanBoxConsensus,
    compute_detection_scores,
    simulate_box_answers,
)
from goldlabel.quality.multi_choice import MultiChoiceDawidSkene, MultiChoiceMajorityVote
from goldlabel.quality.ranking import BradleyTerry, CrowdBT
from goldlabel.quality.ratings import MeanRating, MedianRating, RobustRating
from goldlabel.quality.spans import (
    MajorityTokenVote,
    SpanAnswers,
    SpanDawidSkene,
    Tokens,
    compute_token_classes,
    compute_token_f1,
)
from goldlabel.quality.text import TextMedoid, compute_wer

DATASETS = Path(os.environ.get("GOLDLABEL_DATASETS",
                               Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"))
ROWS: list[tuple] = []


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def codes(values):
    index: dict = {}
    return np.array([index.setdefault(v, len(index)) for v in values]), index


def timed(fit, *args, **kwargs):
    """Call ``fit(*args, **kwargs)``; return its result and the seconds it took."""
    start = time.perf_counter()
    model = fit(*args, **kwargs)
    return model, time.perf_counter() - start


def report(dataset, method, metrics, seconds):
    for metric, value in metrics.items():
        ROWS.append((dataset, method, metric, value, seconds))


def bench_ratings():
    for name in ("zheng_emotion", "snow_affect", "snow_wordsim"):
        rows = read_rows(DATASETS / name / "answers.csv")
        item, items = codes(r["item"] for r in rows)
        annotator, _ = codes(r["worker"] for r in rows)
        value = np.array([float(r["label"]) for r in rows])
        truth = np.full(len(items), np.nan)
        for r in read_rows(DATASETS / name / "truth.csv"):
            truth[items[r["item"]]] = float(r["label"])
        for method, model in [("Mean", MeanRating()), ("Median", MedianRating()),
                              ("RobustRating", RobustRating()),
                              ("RobustRating(bias=False)", RobustRating(bias=False)),
                              ("RobustRating(nu=4)", RobustRating(nu=4.0))]:
            fitted, seconds = timed(model.fit, item, annotator, value)
            error = fitted.values_ - truth
            report(name, method, {"MAE": np.nanmean(np.abs(error)),
                                  "RMSE": np.sqrt(np.nanmean(error**2))}, seconds)


def bench_spans():
    folder = DATASETS / "pico_participants"
    texts = {r["item"]: r["text"] for r in read_rows(folder / "texts.csv")}
    ids = sorted(texts)
    code = {k: i for i, k in enumerate(ids)}
    tokens = Tokens.from_texts([texts[k] for k in ids])
    rows = read_rows(folder / "answers.csv")
    annotator, _ = codes(r["worker"] for r in rows)
    answers = SpanAnswers.from_lists([code[r["item"]] for r in rows], annotator,
                                     [json.loads(r["label"]) for r in rows])
    truth_rows = read_rows(folder / "truth.csv")
    truth = SpanAnswers.from_lists([code[r["item"]] for r in truth_rows], [0] * len(truth_rows),
                                   [json.loads(r["label"]) for r in truth_rows])
    _, token, cls = compute_token_classes(tokens, truth)
    true_classes = np.zeros(len(tokens.item), np.int64)
    true_classes[token] = cls
    for method, model in [("MajorityTokenVote", MajorityTokenVote()),
                          ("SpanDawidSkene", SpanDawidSkene())]:
        fitted, seconds = timed(model.fit, answers, tokens)
        scores = compute_token_f1(fitted.token_classes_, true_classes)
        report("pico_participants", method, {f"token {k}": v for k, v in scores.items()}, seconds)


def bench_text():
    for name in ("crowdwsa2019_j1", "crowdwsa2019_t1", "crowdwsa2019_t2"):
        rows = read_rows(DATASETS / name / "answers.csv")
        item, items = codes(r["item"] for r in rows)
        annotator, _ = codes(r["worker"] for r in rows)
        texts = [r["label"] for r in rows]
        truth = {r["item"]: r["label"] for r in read_rows(DATASETS / name / "truth.csv")}
        refs = [truth[k] for k in items]
        report(name, "random answer (expected)",
               {"WER": compute_wer(texts, [refs[i] for i in item])}, 0.0)
        for method, model in [("TextMedoid", TextMedoid()),
                              ("TextMedoid(weighted=True)", TextMedoid(weighted=True))]:
            fitted, seconds = timed(model.fit, item, annotator, texts)
            report(name, method, {"WER": compute_wer(fitted.texts_, refs)}, seconds)


def bench_boxes():
    answers, true_item, true_boxes = simulate_box_answers(1000, 30, 5, random_state=0)
    for method, model in [("MeanBoxConsensus", MeanBoxConsensus()),
                          ("BoxDawidSkene", BoxDawidSkene())]:
        fitted, seconds = timed(model.fit, answers)
        scores = compute_detection_scores(fitted.box_items_, fitted.boxes_, true_item, true_boxes)
        report("simulated boxes (1000 images)", method,
               {"precision@0.5": scores["precision"], "recall@0.5": scores["recall"],
                "mean IoU": scores["mean_iou"]}, seconds)


def bench_ranking():
    rng = np.random.default_rng(0)
    n, n_annotators, m = 1000, 100, 30000
    score = rng.normal(0, 1.5, n)
    eta = np.where(rng.random(n_annotators) < 0.3, 0.2, 0.95)
    annotator = rng.integers(0, n_annotators, m)
    i = rng.integers(0, n, m)
    j = (i + rng.integers(1, n, m)) % n
    i_wins = (rng.random(m) < 1 / (1 + np.exp(score[j] - score[i]))) ^ (rng.random(m) > eta[annotator])
    winner, loser = np.where(i_wins, i, j), np.where(i_wins, j, i)
    for method, model in [("BradleyTerry", BradleyTerry()), ("CrowdBT", CrowdBT())]:
        fitted, seconds = timed(model.fit, annotator, winner, loser, n_candidates=n)
        report("simulated pairs (30% adversarial)", method,
               {"Spearman": spearmanr(fitted.scores_, score)[0]}, seconds)


def bench_multi_choice():
    rng = np.random.default_rng(0)
    n_items, n_labels, n_annotators, per_item = 5000, 8, 100, 5
    truth = rng.random((n_items, n_labels)) < 0.3
    sens = rng.uniform(0.5, 0.95, (n_annotators, 1))
    spec = rng.uniform(0.7, 0.99, (n_annotators, 1))
    spammer = rng.random(n_annotators) < 0.2
    item = np.repeat(np.arange(n_items), per_item)
    annotator = np.argsort(rng.random((n_items, n_annotators)), axis=1)[:, :per_item].ravel()
    z, noise = truth[item], rng.random((len(item), n_labels))
    selected = np.where(z, noise < sens[annotator], noise > spec[annotator])
    selected[spammer[annotator]] = rng.random((spammer[annotator].sum(), n_labels)) < 0.5
    for method, model in [("MultiChoiceMajorityVote", MultiChoiceMajorityVote()),
                          ("MultiChoiceDawidSkene(coin='one')", MultiChoiceDawidSkene(coin="one")),
                          ("MultiChoiceDawidSkene", MultiChoiceDawidSkene())]:
        fitted, seconds = timed(model.fit, item, annotator, selected)
        report("simulated multi-choice (5000 x 8)", method,
               {"accuracy per (item, label)": (fitted.labels_ == truth).mean()}, seconds)


def main() -> None:
    if not DATASETS.exists():
        raise SystemExit(f"datasets not found at {DATASETS}; set GOLDLABEL_DATASETS")
    for bench in (bench_ratings, bench_spans, bench_text, bench_boxes, bench_ranking,
                  bench_multi_choice):
        bench()
    print("| dataset | method | metric | value | time (s) |")
    print("|---|---|---|---:|---:|")
    for dataset, method, metric, value, seconds in ROWS:
        print(f"| {dataset} | {method} | {metric} | {value:.4f} | {seconds:.3f} |")


if __name__ == "__main__":
    main()
