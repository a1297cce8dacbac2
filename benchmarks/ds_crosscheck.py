"""goldlabel's DawidSkene next to crowd-kit 1.4.2's, per categorical set, same run.

For each categorical set in ``../shared/datasets``: accuracy (items with truth) and EM
iterations of

- ``gl ds``: ``goldlabel.quality.DawidSkene()`` with its defaults;
- ``gl ds a=0 100it``: goldlabel's EM without smoothing and without a stopping rule (exactly
  ``n_iter=100`` iterations), the same computation as ``ck DS 100it``;
- ``gl ds ck-stop``: ``DawidSkene(stopping="crowdkit")``;
- ``ck DS``: crowd-kit's ``DawidSkene()`` with its defaults (run from ``.venv-crowdkit``);
- ``ck DS 100it``: crowd-kit's DawidSkene with ``tol=-inf`` (exactly 100 EM iterations).

plus the share of items on which ``gl ds a=0 100it`` and ``ck DS 100it`` give the same label
and the largest difference of their posteriors: where both are ~100% / ~0, the two libraries
run the same EM and any accuracy gap between the defaults comes from when they stop.

Usage::

    python benchmarks/ds_crosscheck.py [--datasets a,b] [--extra "name=Cls(**kw)" ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _datasets import REPO, list_datasets, load_categorical, require_datasets


def crowdkit_worker(names: list[str], out: str) -> None:
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    rows = {}
    for name in names:
        data = load_categorical(name)
        frame = pd.DataFrame({"task": data.item, "worker": data.worker, "label": data.label})
        row = {}
        for key, model in (("ck DS", DawidSkene()), ("ck DS 100it", DawidSkene(n_iter=100, tol=-np.inf))):
            start = time.perf_counter()
            model.fit(frame)
            probas = model.probas_.reindex(index=range(data.n_items), columns=range(data.n_classes)).fillna(0.0)
            row[key] = {"seconds": time.perf_counter() - start, "n_iter": len(model.loss_history_),
                        "probas": probas.to_numpy().tolist(),
                        "labels": model.labels_.reindex(range(data.n_items)).to_numpy().astype(int).tolist()}
        rows[name] = row
        print(f"  crowd-kit done: {name}", file=sys.stderr, flush=True)
    Path(out).write_text(json.dumps(rows))


def goldlabel_fits(name: str, extra: dict[str, str]) -> dict:
    from goldlabel import quality
    from goldlabel.quality import DawidSkene

    data = load_categorical(name)
    answers = quality.from_codes(data.item, data.worker, data.label, n_items=data.n_items,
                                 n_annotators=data.n_workers, n_labels=data.n_classes)
    models = {
        "gl ds": lambda: DawidSkene(),
        "gl ds a=0 100it": lambda: DawidSkene(alpha=0.0, tol=-1.0),
        "gl ds ck-stop": lambda: DawidSkene(stopping="crowdkit"),
    }
    for key, expr in extra.items():
        # the caller's own expression over goldlabel.quality
        models[key] = lambda expr=expr: eval(expr, vars(quality))
    row = {}
    for key, make in models.items():
        model = make()
        start = time.perf_counter()
        model.fit(answers)
        probas = np.asarray(model.probas_)
        row[key] = {"seconds": time.perf_counter() - start, "n_iter": getattr(model, "n_iter_", None),
                    "probas": probas, "labels": probas.argmax(axis=1)}
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", help="comma-separated names (default: every categorical set)")
    parser.add_argument("--extra", action="append", default=[],
                        help='another goldlabel model, "label=Expression(...)" over goldlabel.quality')
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        crowdkit_worker(args.worker.split(","), args.out)
        return 0
    require_datasets()
    names = args.datasets.split(",") if args.datasets else list_datasets("categorical")
    extra = dict(item.split("=", 1) for item in args.extra)
    python = os.environ.get("GOLDLABEL_CROWDKIT_PYTHON") or str(REPO / ".venv-crowdkit" / "bin" / "python")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ck.json"
        if not Path(python).exists():
            print(f"crowd-kit not found at {python} (make crowdkit, or set GOLDLABEL_CROWDKIT_PYTHON): "
                  "its columns are n/a", file=sys.stderr)
            python = sys.executable
            names_for_worker = ""
        else:
            names_for_worker = ",".join(names)
        worker = subprocess.Popen([python, "-c", "pass"] if not names_for_worker else
                                  [python, __file__, "--worker", names_for_worker, "--out", str(out)])
        try:
            gl = {name: goldlabel_fits(name, extra) for name in names}
        except BaseException:
            worker.kill()
            raise
        finally:
            worker.wait()
        ck = json.loads(out.read_text()) if out.exists() else {}
    keys = list(next(iter(gl.values())).keys()) + ["ck DS", "ck DS 100it"]
    print("| dataset | " + " | ".join(f"{k} acc (iters)" for k in keys)
          + " | same label gl a=0 100it vs ck 100it | max abs proba diff |")
    print("|---|" + "---:|" * (len(keys) + 2))
    for name in names:
        data = load_categorical(name)
        has = data.truth >= 0
        row = dict(gl[name])
        row.update(ck.get(name, {}))
        cells = []
        for key in keys:
            if key not in row:
                cells.append("n/a")
                continue
            labels = np.asarray(row[key]["labels"])
            acc = 100.0 * float((labels[has] == data.truth[has]).mean())
            cells.append(f"{acc:.2f} ({row[key]['n_iter']})")
        if "ck DS 100it" in row:
            a, b = np.asarray(row["gl ds a=0 100it"]["probas"]), np.asarray(row["ck DS 100it"]["probas"])
            same = 100.0 * float((a.argmax(1) == b.argmax(1)).mean())
            cells += [f"{same:.2f}%", f"{float(np.abs(a - b).max()):.2e}"]
        else:
            cells += ["n/a", "n/a"]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
