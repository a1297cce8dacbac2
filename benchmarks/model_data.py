"""Better data, better model; and the label-error audit against cleanlab (issue 14, benchmarks 2-3).

Both on a crowd dataset with texts and truth (the layout of ``../shared/datasets``: answers.csv,
truth.csv, texts.csv), item features from the same MiniLM embeddings the platform uses
(``benchmarks/human_effort.py``'s cache, content hash + model id).

1. **Better data, better model.** The same classifier (``goldlabel.models.ProjectModel``) is
   trained on the training items' labels from three sources: one randomly chosen annotator's
   answer per item, the majority vote of all answers, and goldlabel's default aggregation of all
   answers (its labels weighted by their confidence, as the platform trains). Reported: the
   accuracy of each model against truth on held-out test items (never trained on), and the
   accuracy of the training labels themselves.
2. **Label-error audit.** The labels are single-annotator answers (truth known, so which are
   wrong is known); out-of-fold probabilities from ``ProjectModel``'s cross-fitting; flagged by
   ``goldlabel.models.find_label_issues`` and, on the same probabilities, by cleanlab's
   ``find_label_issues`` (cleanlab is a benchmark-only extra). Precision = flagged that are
   wrong; recall = wrong that are flagged.

    .venv/bin/python benchmarks/model_data.py --dataset ../shared/datasets/zheng_product --seeds 3
    .venv/bin/python benchmarks/model_data.py --write-docs        # zheng_product and snow_rte

Splits and the single annotator are drawn per seed; the rules are fixed here, before scoring.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _datasets import datasets_dir, require_datasets
from human_effort import accuracy, embed_items, load_dataset

from goldlabel import quality
from goldlabel.models import ProjectModel, find_label_issues

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs" / "benchmarks.md"
SECTION = "## Better data, better model; label-error audit"
DEFAULT_SETS = ("zheng_product", "snow_rte")
TEST_FRACTION = 0.3


def single_answer_labels(data, rng: np.random.Generator) -> np.ndarray:
    """One uniformly chosen answer per item (vectorized: a random key per answer, the
    smallest key of each item wins)."""
    key = rng.random(len(data.item))
    order = np.lexsort((key, data.item))
    first = np.ones(len(order), dtype=bool)
    first[1:] = data.item[order][1:] != data.item[order][:-1]
    labels = np.full(data.n_items, -1, dtype=np.int64)
    labels[data.item[order][first]] = data.label[order][first]
    return labels


def aggregate(data, method: str) -> tuple[np.ndarray, np.ndarray]:
    answers = quality.from_codes(data.item, data.worker, data.label, n_items=data.n_items,
                                 n_annotators=data.n_workers, n_labels=data.n_classes)
    model = quality.MajorityVote() if method == "mv" else quality.METHODS[quality.DEFAULT_METHOD]()
    probas = np.asarray(model.fit(answers).probas_)
    return probas.argmax(axis=1), probas.max(axis=1)


def run_seed(data, features: np.ndarray, seed: int, mv: np.ndarray, gl: tuple[np.ndarray, np.ndarray],
             cleanlab_find) -> dict:
    rng = np.random.default_rng(seed)
    known = np.flatnonzero(data.truth >= 0)
    test = np.zeros(data.n_items, dtype=bool)
    test[rng.choice(known, int(len(known) * TEST_FRACTION), replace=False)] = True
    train = np.flatnonzero(~test & (np.bincount(data.item, minlength=data.n_items) > 0))
    single = single_answer_labels(data, rng)
    sources = {
        "single annotator": (single, None),
        "majority vote": (mv, None),
        "goldlabel (default aggregation)": gl,
    }
    row: dict = {"seed": seed, "train_items": len(train), "test_items": int(test.sum())}
    oof_single = None
    for name, (labels, confidence) in sources.items():
        model = ProjectModel(data.n_classes, seed=seed)
        weight = None if confidence is None else confidence[train]
        fit = model.fit(features[train], labels[train], weight)
        predicted = model.predict_proba(features[test]).argmax(axis=1)
        row[name] = {
            "label_accuracy": accuracy(labels[train], data.truth[train]),
            "model_accuracy": float((predicted == data.truth[test]).mean()),
        }
        if name == "single annotator":
            oof_single = fit.oof_probas
    # label-error audit on the single-annotator training labels with truth
    labels = single[train]
    has_truth = data.truth[train] >= 0
    wrong = labels != data.truth[train]
    audit = {}
    started = time.perf_counter()
    ours = find_label_issues(labels, oof_single).mask
    audit["goldlabel"] = (ours, time.perf_counter() - started)
    if cleanlab_find is not None:
        started = time.perf_counter()
        theirs = np.zeros(len(labels), dtype=bool)
        theirs[cleanlab_find(labels=labels, pred_probs=oof_single, filter_by="prune_by_noise_rate",
                             return_indices_ranked_by="self_confidence")] = True
        audit["cleanlab"] = (theirs, time.perf_counter() - started)
    row["audit"] = {}
    for name, (flagged, seconds) in audit.items():
        f = flagged & has_truth
        w = wrong & has_truth
        row["audit"][name] = {
            "flagged": int(f.sum()),
            "precision": float((f & w).sum() / max(f.sum(), 1)),
            "recall": float((f & w).sum() / max(w.sum(), 1)),
            "seconds": seconds,
        }
    row["audit_wrong_labels"] = int((wrong & has_truth).sum())
    return row


def run_dataset(folder: Path, seeds: int, cache_dir: Path, threads: int, cleanlab_find) -> list[dict]:
    data = load_dataset(folder)
    features = embed_items(data, cache_dir, threads)
    mv = aggregate(data, "mv")[0]
    gl = aggregate(data, "default")
    rows = []
    for seed in range(seeds):
        row = run_seed(data, features, seed, mv, gl, cleanlab_find)
        row["dataset"] = data.name
        rows.append(row)
        print(f"{data.name} seed {seed}: " + ", ".join(
            f"{k} model {row[k]['model_accuracy']:.4f}" for k in
            ("single annotator", "majority vote", "goldlabel (default aggregation)")), flush=True)
        for name, a in row["audit"].items():
            print(f"  audit {name}: flagged {a['flagged']} precision {a['precision']:.3f} "
                  f"recall {a['recall']:.3f} ({a['seconds'] * 1e3:.1f} ms)", flush=True)
    return rows


def tables(rows: list[dict]) -> str:
    out = ["| dataset | training labels | label accuracy (train) | model accuracy (test, mean of seeds) | min-max |",
           "|---|---|---:|---:|---|"]
    sets = list(dict.fromkeys(r["dataset"] for r in rows))
    for ds in sets:
        rs = [r for r in rows if r["dataset"] == ds]
        for src in ("single annotator", "majority vote", "goldlabel (default aggregation)"):
            la = statistics.mean(r[src]["label_accuracy"] for r in rs)
            ma = [r[src]["model_accuracy"] for r in rs]
            out.append(f"| {ds} | {src} | {la:.4f} | {statistics.mean(ma):.4f} | {min(ma):.4f}-{max(ma):.4f} |")
    out += ["", "| dataset | audit of single-annotator labels | wrong labels | flagged | precision | recall | time |",
            "|---|---|---:|---:|---:|---:|---:|"]
    for ds in sets:
        rs = [r for r in rows if r["dataset"] == ds]
        for name in rs[0]["audit"]:
            a = [r["audit"][name] for r in rs]
            out.append(
                f"| {ds} | {name} | {statistics.mean(r['audit_wrong_labels'] for r in rs):.0f} | "
                f"{statistics.mean(x['flagged'] for x in a):.0f} | {statistics.mean(x['precision'] for x in a):.3f} | "
                f"{statistics.mean(x['recall'] for x in a):.3f} | "
                f"{statistics.mean(x['seconds'] for x in a) * 1e3:.1f} ms |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", type=Path, action="append",
                    help="dataset folder (answers.csv, truth.csv, texts.csv); repeatable; default: "
                         + ", ".join(DEFAULT_SETS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache-dir", type=Path,
                    default=Path(os.environ.get("GOLDLABEL_CACHE", Path.home() / ".cache" / "goldlabel")))
    ap.add_argument("--write-docs", action="store_true", help=f"write the tables to {DOCS.relative_to(REPO)}")
    args = ap.parse_args(argv)
    if args.dataset:
        folders = args.dataset
    else:
        require_datasets()
        folders = [datasets_dir() / name for name in DEFAULT_SETS]
    try:
        from cleanlab.filter import find_label_issues as cleanlab_find
    except ImportError:
        print("cleanlab not installed (pip install -e '.[bench]'): the audit runs without the peer")
        cleanlab_find = None
    rows: list[dict] = []
    for folder in folders:
        rows += run_dataset(folder, args.seeds, args.cache_dir, args.threads, cleanlab_find)
    text = tables(rows)
    print()
    print(text)
    if args.write_docs:
        import cleanlab
        body = (f"{SECTION}\n\n`benchmarks/model_data.py` (issue 14, benchmarks 2 and 3): the same classifier "
                "(`ProjectModel`, logistic regression on MiniLM embeddings) trained on the training items' labels "
                "from one random annotator per item, from majority vote, and from goldlabel's default aggregation "
                f"(confidence-weighted); accuracy against truth on {TEST_FRACTION:.0%} held-out test items. Then "
                "the label-error audit of the single-annotator labels, goldlabel's `find_label_issues` and "
                f"cleanlab {cleanlab.__version__}'s on the same out-of-fold probabilities. {args.seeds} seeds "
                f"(splits and the single annotator drawn per seed); load average {os.getloadavg()[0]:.2f}.\n\n"
                f"{text}\n")
        doc = DOCS.read_text()
        start = doc.find(SECTION)
        if start == -1:
            doc = doc.rstrip("\n") + "\n\n" + body
        else:
            end = doc.find("\n## ", start + len(SECTION))
            doc = doc[:start] + body + (doc[end + 1:] if end != -1 else "")
        DOCS.write_text(doc)
        print(f"wrote {DOCS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
