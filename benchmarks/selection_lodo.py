"""Which default-selection rule generalizes? Leave-one-dataset-out over declared rule variants.

For every categorical dataset in ``../shared/datasets`` this fits each candidate of
``goldlabel.quality.selection.CANDIDATES`` (a) on all answers, keeping its item posteriors, and
(b) on each of 3 annotator-stratified folds' complements (``annotator_folds``, seed 0), keeping
the held-out predictive probability of every held-out answer (``held_out_predictive``). No
truth is used for either. Every rule variant in ``VARIANTS`` (written down, with the meta-rule
below, before any of them was scored; docs/quality.md "Round 3") is then a function of those
cached numbers:

* ``select:<pool>``: the candidate of the pool with the highest summed held-out log-probability,
  a later (more complex) one replacing the best so far only when higher by more than 0.002 nats
  per answer; its full-data posteriors.
* ``stack:<pool>``: stacking weights on the pool's held-out predictive distributions
  (``stacking_weights``), the posterior the same mixture of the full-data posteriors.

Meta-rule (also fixed before scoring): for each held-out dataset, the variant with the best mean
accuracy over the *other* datasets (ties: first listed) is scored on it; its mean over the sets
is the leave-one-dataset-out estimate; the variant shipped as ``auto`` is the one with the best
mean over all sets.

Usage::

    python benchmarks/selection_lodo.py                      # fit (cached in --cache) and report
    python benchmarks/selection_lodo.py --datasets dog,face --cache /tmp/sel
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _datasets import list_datasets, load_categorical, require_datasets

POOL4 = ("mv", "onecoin", "ds", "ebcc")
POOL6 = ("mv", "onecoin", "mace", "ds_early", "ds", "ebcc")
#: the declared variants, in the order the meta-rule breaks ties
VARIANTS = [("select", POOL4), ("select", POOL6), ("stack", POOL4), ("stack", POOL6)]
N_FOLDS = 3
TIE = 0.002


def variant_name(kind: str, pool: tuple[str, ...]) -> str:
    return f"{kind}:{'+'.join(pool)}"


def fit_cache(name: str, cache: Path) -> dict:
    """Full-data posteriors and held-out answer probabilities of every candidate (cached)."""
    from goldlabel.quality import from_codes
    from goldlabel.quality.selection import (
        CANDIDATES,
        _subset,
        annotator_folds,
        held_out_predictive,
    )

    path = cache / f"{name}.npz"
    if path.exists():
        return dict(np.load(path))
    data = load_categorical(name)
    answers = from_codes(data.item, data.worker, data.label, n_items=data.n_items,
                         n_annotators=data.n_workers, n_labels=data.n_classes)
    none = np.zeros(0, dtype=np.int64)
    folds = annotator_folds(answers, N_FOLDS, 0)
    out: dict = {"truth": data.truth}
    for candidate, factory in CANDIDATES.items():
        started = time.perf_counter()
        predictive = np.empty(answers.n_answers)
        for fold in range(N_FOLDS):
            train, held = _subset(answers, folds != fold), _subset(answers, folds == fold)
            posteriors, _ = factory()._fit(train, none, none)
            predictive[folds == fold] = held_out_predictive(train, posteriors, held)
        probas, _ = factory()._fit(answers, none, none)
        out[f"pred_{candidate}"] = predictive
        out[f"post_{candidate}"] = probas
        print(f"  {name} {candidate}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    np.savez(path, **out)
    return out


def apply_variant(kind: str, pool: tuple[str, ...], cached: dict) -> tuple[np.ndarray, str]:
    from goldlabel.quality.selection import stacking_weights

    predictive = np.column_stack([cached[f"pred_{c}"] for c in pool])
    if kind == "select":
        scores = np.log(predictive).sum(axis=0)
        margin = TIE * len(predictive)
        best = 0
        for m in range(1, len(pool)):
            if scores[m] > scores[best] + margin:
                best = m
        return cached[f"post_{pool[best]}"], pool[best]
    weights = stacking_weights(predictive)
    probas = sum(w * cached[f"post_{c}"] for w, c in zip(weights, pool, strict=True))
    return probas, " ".join(f"{c}:{w:.2f}" for c, w in zip(pool, weights, strict=True) if w >= 0.005)


def accuracy(probas: np.ndarray, truth: np.ndarray) -> float:
    known = truth >= 0
    return float((probas.argmax(axis=1)[known] == truth[known]).mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", help="comma-separated names (default: every categorical set)")
    parser.add_argument("--cache", default="/tmp/goldlabel-selection-cache")
    parser.add_argument("--crowdkit-records", nargs="*", default=[],
                        help="crowd-kit records (JSON lines) of benchmarks/aggregation.py workers of this run")
    parser.add_argument("--auto-records",
                        help="write the shipped variant's results here as benchmarks/aggregation.py records "
                             "(method 'auto'), so its tables can be rendered with --from-records")
    args = parser.parse_args(argv)
    require_datasets()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    names = args.datasets.split(",") if args.datasets else list_datasets()
    from goldlabel.quality.selection import CANDIDATES

    table, picks, results = {}, {}, {}
    for name in names:
        cached = fit_cache(name, cache)
        for candidate in CANDIDATES:
            table[(name, candidate)] = accuracy(cached[f"post_{candidate}"], cached["truth"])
            results[(name, candidate)] = (cached[f"post_{candidate}"], cached["truth"])
        for kind, pool in VARIANTS:
            probas, pick = apply_variant(kind, pool, cached)
            table[(name, variant_name(kind, pool))] = accuracy(probas, cached["truth"])
            picks[(name, variant_name(kind, pool))] = pick
            results[(name, variant_name(kind, pool))] = (probas, cached["truth"])
    variants = [variant_name(k, p) for k, p in VARIANTS]
    lodo, chosen = {}, {}
    for name in names:
        others = [n for n in names if n != name]
        best = max(variants, key=lambda v: (np.mean([table[(n, v)] for n in others]), -variants.index(v)))
        chosen[name], lodo[name] = best, table[(name, best)]
    shipped = max(variants, key=lambda v: (np.mean([table[(n, v)] for n in names]), -variants.index(v)))
    columns = list(CANDIDATES) + variants
    print("| dataset | LODO (variant chosen on the others) | " + " | ".join(columns) + " |")
    print("|---|---|" + "---:|" * len(columns))
    for name in names:
        cells = [f"{100 * table[(name, c)]:.2f}" for c in columns]
        print(f"| {name} | {100 * lodo[name]:.2f} ({chosen[name]}) | " + " | ".join(cells) + " |")
    means = [f"{100 * np.mean([table[(n, c)] for n in names]):.2f}" for c in columns]
    print(f"| **mean** | **{100 * np.mean(list(lodo.values())):.2f}** | " + " | ".join(means) + " |")
    print()
    print(f"Shipped (best mean on all sets): {shipped}")
    print()
    print("| dataset | " + " | ".join(variants) + " |")
    print("|---|" + "---|" * len(variants))
    for name in names:
        print(f"| {name} | " + " | ".join(picks[(name, v)] for v in variants) + " |")
    print()
    agreement = {}
    for name in names:
        data = load_categorical(name)
        per_item = np.bincount(data.item, minlength=data.n_items).clip(min=1)

        def share(labels: np.ndarray, data=data, per_item=per_item) -> np.ndarray:
            return np.bincount(data.item, labels[data.item] == data.label, data.n_items) / per_item
        agreement[name] = share
    calibration_report(names, results, variants, agreement)
    if args.crowdkit_records:
        print()
        crowdkit_report(names, lodo, chosen, table, args.crowdkit_records)
    if args.auto_records:
        import json

        kind, pool = VARIANTS[variants.index(shipped)]
        with open(args.auto_records, "w", encoding="utf-8") as sink:
            for name in names:
                probas, pick = apply_variant(kind, pool, fit_cache(name, cache))
                ordered = np.sort(probas, axis=1)
                heaviest = max(pick.split(), key=lambda x: float(x.split(":")[1])) if kind == "stack" else pick
                record = {"dataset": name, "library": "goldlabel", "method": "auto",
                          "labels": probas.argmax(axis=1).tolist(), "confidence": ordered[:, -1].tolist(),
                          "second": ordered[:, -2].tolist(), "selected": heaviest.split(":")[0],
                          "source": "benchmarks/selection_lodo.py"}
                sink.write(json.dumps(record) + "\n")
    return 0


ECE_BINS = 15
CROWDKIT_SHORT = {"MajorityVote": "MV", "DawidSkene": "DS", "OneCoinDawidSkene": "OneCoin", "ZeroBasedSkill": "ZBS"}


def crowdkit_report(names: list[str], lodo: dict, chosen: dict, table: dict, paths: list[str]) -> None:
    """The LODO default next to crowd-kit's methods (records of this run), and the goal lines."""
    import json

    ck: dict = {}
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record["dataset"] not in names:
                continue
            key = (record["dataset"], record["method"])
            if "error" in record:
                ck.setdefault(key, None)
                continue
            data = load_categorical(record["dataset"])
            known = data.truth >= 0
            ck[key] = float((np.asarray(record["labels"])[known] == data.truth[known]).mean())
    methods = [m for m in ("MajorityVote", "Wawa", "ZeroBasedSkill", "DawidSkene", "OneCoinDawidSkene",
                           "GLAD", "MACE", "KOS", "MMSR") if any((n, m) in ck for n in names)]
    print("| dataset | goldlabel LODO default | " + " | ".join(f"ck {CROWDKIT_SHORT.get(m, m)}" for m in methods)
          + " | ck best | vs ck DS |")
    print("|---|---|" + "---:|" * (len(methods) + 2))
    best, gaps = {}, {}
    for name in names:
        cells = []
        for m in methods:
            value = ck.get((name, m), "absent")
            cells.append("n/a" if value == "absent" else "failed" if value is None else f"{100 * value:.2f}")
        done = {m: ck[(name, m)] for m in methods if ck.get((name, m)) is not None}
        top = max(done, key=done.get)
        best[name] = done[top]
        gaps[name] = 100 * (lodo[name] - done["DawidSkene"]) if "DawidSkene" in done else float("nan")
        print(f"| {name} | {100 * lodo[name]:.2f} ({chosen[name]}) | " + " | ".join(cells)
              + f" | {100 * best[name]:.2f} ({CROWDKIT_SHORT.get(top, top)}) | {gaps[name]:+.2f} |")
    ours, theirs = np.mean([lodo[n] for n in names]), np.mean([best[n] for n in names])
    print()
    print("```text")
    print(f"{'PASS' if ours >= theirs else 'FAIL'}  LODO default mean accuracy {100 * ours:.2f} vs mean of "
          f"crowd-kit's best per set (hindsight) {100 * theirs:.2f} ({100 * (ours - theirs):+.2f})")
    below = [n for n in names if gaps[n] < -1.0]
    worst = min(gaps, key=gaps.get)
    print(f"{'FAIL' if below else 'PASS'}  never > 1 point below crowd-kit DS: worst {worst} {gaps[worst]:+.2f}"
          + (f"; below on {', '.join(below)}" if below else ""))
    print("```")


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    which = np.minimum((np.clip(confidence, 0, 1) * bins).astype(np.int64), bins - 1)
    gap = np.abs(np.bincount(which, correct.astype(float), bins) - np.bincount(which, confidence, bins))
    return float(gap.sum() / len(confidence))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def fit_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted logistic regression (intercept last), as ``calibration.fit_platt`` with more features."""
    from scipy.optimize import minimize

    design = np.column_stack([x, np.ones(len(x))])

    def loss(beta: np.ndarray) -> tuple[float, np.ndarray]:
        z = design @ beta
        residual = w * (1 / (1 + np.exp(-z)) - y)
        return float((w * (np.logaddexp(0, z) - y * z)).sum()), design.T @ residual

    start = np.zeros(design.shape[1])
    start[0] = 1.0
    return np.asarray(minimize(loss, start, jac=True, method="L-BFGS-B").x)


def calibration_report(names: list[str], results: dict, variants: list[str], agreement: dict) -> None:
    """ECE per variant: raw; after a Platt map on logit(top) fitted on the other sets (each set
    weighted equally), as benchmarks/aggregation.py scores it; and after a map that also sees
    two truth-free set-level features (logit of the set's mean top probability and of its mean
    agreement share), fitted the same way (declared with the variants)."""
    print("| method / variant | mean ECE raw | mean ECE, Platt LODO | mean ECE, Platt + set features LODO"
          " | worst set (Platt LODO) |")
    print("|---|---:|---:|---:|---|")
    for v in variants:
        feats = {}
        for name in names:
            probas, truth = results[(name, v)]
            known = truth >= 0
            top_all = probas.max(axis=1)
            share = agreement[name](probas.argmax(axis=1))
            set_feats = [float(_logit(np.array([top_all.mean()]))[0]), float(_logit(np.array([share.mean()]))[0])]
            top = top_all[known]
            x1 = _logit(top)[:, None]
            x2 = np.column_stack([x1, np.tile(set_feats, (len(top), 1))])
            feats[name] = (probas.argmax(axis=1)[known] == truth[known], top, x1, x2)
        raw, lodo1, lodo2 = {}, {}, {}
        for name in names:
            others = [n for n in names if n != name]
            hit = np.concatenate([feats[n][0] for n in others]).astype(float)
            weights = np.concatenate([np.full(len(feats[n][0]), 1.0 / len(feats[n][0])) for n in others])
            correct, top, x1, x2 = feats[name]
            raw[name] = ece(top, correct)
            for index, out in ((2, lodo1), (3, lodo2)):
                beta = fit_logistic(np.concatenate([feats[n][index] for n in others]), hit, weights)
                z = np.column_stack([feats[name][index], np.ones(len(top))]) @ beta
                # the calibrated top never drops below 1/K (argmax kept), as calibrated_top floors it
                out[name] = ece(1 / (1 + np.exp(-z)), correct)
        worst = max(lodo1, key=lodo1.get)
        print(f"| {v} | {np.mean(list(raw.values())):.3f} | {np.mean(list(lodo1.values())):.3f} | "
              f"{np.mean(list(lodo2.values())):.3f} | {worst} {lodo1[worst]:.3f} |")


if __name__ == "__main__":
    raise SystemExit(main())
