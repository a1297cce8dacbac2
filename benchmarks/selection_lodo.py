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
from _datasets import list_datasets, load_categorical, require_datasets  # noqa: E402

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
    from goldlabel.quality.selection import CANDIDATES, _subset, annotator_folds, held_out_predictive

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
    args = parser.parse_args(argv)
    require_datasets()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    names = args.datasets.split(",") if args.datasets else list_datasets()
    from goldlabel.quality.selection import CANDIDATES

    table, picks = {}, {}
    for name in names:
        cached = fit_cache(name, cache)
        for candidate in CANDIDATES:
            table[(name, candidate)] = accuracy(cached[f"post_{candidate}"], cached["truth"])
        for kind, pool in VARIANTS:
            probas, pick = apply_variant(kind, pool, cached)
            table[(name, variant_name(kind, pool))] = accuracy(probas, cached["truth"])
            picks[(name, variant_name(kind, pool))] = pick
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
