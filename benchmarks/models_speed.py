"""Speed of goldlabel.models at project scale (issue 14, benchmark 4, without the embedding):
active-learning queue priorities over N embedded items (the model worker's
``goldlabel.models.active_priorities``, with and without a model), retraining on M labeled items, and the
auto-label pass (predict + threshold) over N items.

    python benchmarks/models_speed.py [--items 1000000] [--labeled 100000] [--dim 384]

Embeddings are synthetic unit vectors stored as float16 (what a 1M-item project keeps: 768 MB),
with labels from a random linear rule plus noise; the timings do not depend on the values.
The load average is printed: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _datasets import machine_description

from goldlabel.models import (
    PRIORITY_LEVELS,
    ProjectModel,
    active_priorities,
    margin_uncertainty,
    select_threshold,
    top_probas,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--labeled", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--batch", type=int, default=100, help="items selected per batch")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, d = args.items, args.dim
    embeddings = np.empty((n, d), dtype=np.float16)
    for start in range(0, n, 100_000):  # built in blocks: never a float32 copy of the whole
        block = rng.standard_normal((min(100_000, n - start), d), dtype=np.float32)
        embeddings[start:start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    rule = rng.standard_normal(d).astype(np.float32)
    labeled = rng.choice(n, size=args.labeled, replace=False)
    X = embeddings[labeled].astype(np.float32)
    y = ((X @ rule) * 3 + rng.normal(size=len(X)) > 0).astype(np.int64)

    started = time.perf_counter()
    model = ProjectModel(n_classes=2, folds=5)
    fit = model.fit(X, y)
    retrain = time.perf_counter() - started

    started = time.perf_counter()
    probas = model.predict_proba(embeddings)
    predict = time.perf_counter() - started

    started = time.perf_counter()
    threshold = select_threshold(fit.oof_probas.max(axis=1), fit.oof_probas.argmax(axis=1) == y)
    auto = probas.max(axis=1) >= (threshold.threshold if threshold.threshold is not None else 2.0)
    auto_pass = predict + time.perf_counter() - started

    # the model worker's priority pass (services.models.priorities.prioritize), after its read: the
    # stored top score per item -> margin -> priorities, the k-center batch over the pool's
    # vectors only, then the rows whose priority changed; and the cold start before a model
    old = np.zeros(n, dtype=np.int64)
    covered = embeddings[labeled[:2000]].astype(np.float32)
    started = time.perf_counter()
    uncertainty = margin_uncertainty(top_probas(probas.max(axis=1), probas.shape[1]))
    priority = active_priorities(uncertainty, n, lambda index: embeddings[index].astype(np.float32),
                                 policy="uncertainty_diversity", batch=args.batch, labeled=covered, rng=rng)
    changed = np.flatnonzero(priority != old)
    select = time.perf_counter() - started
    assert (priority > PRIORITY_LEVELS).sum() == args.batch and len(changed) > 0
    started = time.perf_counter()
    cold = active_priorities(None, n, lambda index: embeddings[index].astype(np.float32),
                             policy="uncertainty_diversity", batch=args.batch, rng=rng)
    cold_select = time.perf_counter() - started
    assert (cold > PRIORITY_LEVELS).sum() == args.batch

    print(machine_description())
    print(f"load average at the end: {tuple(round(x, 1) for x in os.getloadavg())}")
    print(f"retrain ({args.labeled} labeled x {d}, 5-fold cross-fit + C choice): {retrain:.1f} s "
          f"(C={fit.metrics['C']}, oof accuracy {fit.metrics['oof_accuracy']:.3f}, ECE {fit.metrics['ece']:.3f})")
    print(f"active-learning priorities over {n} items (uncertainty + k-center batch of {args.batch}, "
          f"{len(changed)} changed): {select:.2f} s; cold start (k-center over a 20,000 sample): {cold_select:.2f} s")
    print(f"auto-label pass over {n} items (predict + threshold): {auto_pass:.1f} s "
          f"(threshold {threshold.threshold}, {int(auto.sum())} items above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
