"""Speed target of issue 3: Dawid-Skene on 1,000,000 answers, goldlabel vs crowd-kit 1.4.2.

Synthetic data with known truth: 200,000 items x 5 answers from 5 distinct annotators out of
2,000, 5 classes, an uneven class prior and a random confusion matrix per annotator (accuracy
uniform in [0.35, 0.95], errors spread by a Dirichlet). Both libraries get the same answers
and run the SAME number of EM iterations (``n_iter`` equal, ``tol=0`` so neither stops early);
the number is the iterations goldlabel's DawidSkene needs to converge at its default tolerance
(measured first, unless ``--n-iter`` is given). Each library runs in its own fresh subprocess
(crowd-kit from ``.venv-crowdkit``), so peak memory is that process's ``ru_maxrss``: the
interpreter, the imports, the answers in the library's input format and the fit.

Target: goldlabel >= 10x faster than crowd-kit and peak memory < 1 GB.

Usage::

    python benchmarks/aggregation_speed.py            # the full 1M-answer run
    python benchmarks/aggregation_speed.py --quick    # 4,000 items, 3 iterations, goldlabel only (smoke test)
    python benchmarks/aggregation_speed.py --profile  # also cProfile goldlabel's fit
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _datasets import REPO, machine_description


def simulate(n_items: int, per_item: int, n_annotators: int, n_classes: int, seed: int = 0):
    """Answers (item, annotator, label) and the truth, fully vectorized."""
    rng = np.random.default_rng(seed)
    prior = rng.dirichlet(np.full(n_classes, 5.0))
    truth = rng.choice(n_classes, size=n_items, p=prior)
    # per_item distinct annotators per item: redraw duplicates until none are left
    annotators = rng.integers(0, n_annotators, size=(n_items, per_item))
    while True:
        ordered = np.sort(annotators, axis=1)
        duplicate_rows = np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))
        if len(duplicate_rows) == 0:
            break
        annotators[duplicate_rows] = rng.integers(0, n_annotators, size=(len(duplicate_rows), per_item))
    accuracy = rng.uniform(0.35, 0.95, size=n_annotators)
    errors = rng.dirichlet(np.ones(n_classes - 1), size=(n_annotators, n_classes))
    confusion = np.empty((n_annotators, n_classes, n_classes))
    for k in range(n_classes):  # loop over classes only
        others = [c for c in range(n_classes) if c != k]
        confusion[:, k, k] = accuracy
        confusion[:, k, others] = (1 - accuracy)[:, None] * errors[:, k, :]
    item = np.repeat(np.arange(n_items), per_item)
    annotator = annotators.ravel()
    cumulative = np.cumsum(confusion[annotator, truth[item]], axis=1)
    draw = rng.random(len(item))[:, None]
    label = np.minimum((draw > cumulative).sum(axis=1), n_classes - 1)
    return item, annotator, label, truth


# ------------------------------------------------------------------------------------ worker


def worker(library: str, data_path: str, n_iter: int, tol: float, out: str, profile: bool) -> None:
    data = np.load(data_path)
    item, annotator, label = data["item"], data["annotator"], data["label"]
    n_items, n_classes = int(data["n_items"]), int(data["n_classes"])
    if library == "goldlabel":
        from goldlabel.quality import DawidSkene, from_codes

        start = time.perf_counter()
        answers = from_codes(item, annotator, label, n_items=n_items,
                             n_annotators=int(data["n_annotators"]), n_labels=n_classes)
        prepare = time.perf_counter() - start
        del data, item, annotator, label
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        model = DawidSkene(n_iter=n_iter, tol=tol)
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        start = time.perf_counter()
        model.fit(answers)
        seconds = time.perf_counter() - start
        if profiler is not None:
            import io
            import pstats

            profiler.disable()
            stream = io.StringIO()
            pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(25)
            print(stream.getvalue(), file=sys.stderr)
        predicted = np.asarray(model.label_codes_)
        iterations = int(getattr(model, "n_iter_", n_iter))
    else:
        import pandas as pd
        from crowdkit.aggregation import DawidSkene

        start = time.perf_counter()
        frame = pd.DataFrame({"task": item, "worker": annotator, "label": label})
        prepare = time.perf_counter() - start
        del data, item, annotator, label
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        model = DawidSkene(n_iter=n_iter, tol=tol)
        start = time.perf_counter()
        model.fit(frame)
        seconds = time.perf_counter() - start
        labels = model.labels_.reindex(range(n_items))
        predicted = labels.fillna(-1).to_numpy().astype(np.int64)
        iterations = int(getattr(model, "n_iter_", n_iter) or n_iter)
    truth = np.load(data_path)["truth"]
    result = {
        "library": library,
        "seconds": seconds,
        "prepare_seconds": prepare,
        "iterations": iterations,
        "accuracy": float((predicted == truth).mean()),
        "rss_before_fit_mb": before,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    Path(out).write_text(json.dumps(result), encoding="utf-8")


def run(python: str, library: str, data_path: str, n_iter: int, tol: float, scratch: Path,
        profile: bool = False) -> dict:
    out = scratch / f"{library}-{n_iter}-{tol}.json"
    command = [python, str(Path(__file__).resolve()), "--worker", library, "--data", data_path,
               "--n-iter", str(n_iter), "--tol", repr(tol), "--out", str(out), *(["--profile"] if profile else [])]
    completed = subprocess.run(command, capture_output=True, text=True, check=False,
                               env=dict(os.environ, PYTHONWARNINGS="ignore"))
    if completed.returncode != 0 or not out.exists():
        return {"library": library, "error": completed.stderr.strip()[-1500:]}
    result = json.loads(out.read_text(encoding="utf-8"))
    if profile:
        result["profile"] = completed.stderr
    return result


def crowdkit_python() -> str | None:
    candidate = os.environ.get("GOLDLABEL_CROWDKIT_PYTHON") or str(REPO / ".venv-crowdkit" / "bin" / "python")
    if not Path(candidate).exists():
        return None
    probe = subprocess.run([candidate, "-c", "import crowdkit.aggregation"], capture_output=True,
                           check=False)
    return candidate if probe.returncode == 0 else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4,000 items x 5, 200 annotators, 3 iterations")
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--per-item", type=int, default=5)
    parser.add_argument("--annotators", type=int, default=2_000)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--n-iter", type=int, help="EM iterations for both (default: goldlabel's to convergence)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of goldlabel's fit")
    parser.add_argument("--no-crowdkit", action="store_true")
    parser.add_argument("--crowdkit", action="store_true", help="with --quick: run crowd-kit too (skipped by default)")
    parser.add_argument("--output", help="also write the markdown to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--tol", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.data, args.n_iter, args.tol, args.out, args.profile)
        return 0
    if args.quick:
        args.items, args.annotators = 4_000, 200
        args.n_iter = args.n_iter or 3

    lines: list[str] = []
    emit = lines.append
    with tempfile.TemporaryDirectory(prefix="goldlabel-speed-") as scratch_dir:
        scratch = Path(scratch_dir)
        item, annotator, label, truth = simulate(args.items, args.per_item, args.annotators, args.classes)
        data_path = str(scratch / "answers.npz")
        np.savez(data_path, item=item, annotator=annotator, label=label, truth=truth,
                 n_items=args.items, n_annotators=args.annotators, n_classes=args.classes)
        converged = None
        if args.n_iter is None:
            # goldlabel's own stopping rule (default tol), to learn "iterations to convergence"
            converged = run(sys.executable, "goldlabel", data_path, 1000, 1e-5, scratch)
            if "error" in converged:
                print(converged["error"], file=sys.stderr)
                return 1
            args.n_iter = converged["iterations"]
        loads = [os.getloadavg()[0]]
        results = [run(sys.executable, "goldlabel", data_path, args.n_iter, 0.0, scratch, args.profile)]
        loads.append(os.getloadavg()[0])
        skip_crowdkit = args.no_crowdkit or (args.quick and not args.crowdkit)
        ck_python = None if skip_crowdkit else crowdkit_python()
        if ck_python:
            results.append(run(ck_python, "crowdkit", data_path, args.n_iter, 0.0, scratch))
            loads.append(os.getloadavg()[0])

    emit(f"Machine: {machine_description()}.  ")
    emit("Load average (1-minute; 2 shared cores, the ratio is load-sensitive): "
         + ", ".join(f"{v:.1f}" for v in loads) + " (before goldlabel's timed fit, after it"
         + (", after crowd-kit's" if len(loads) > 2 else "") + ").  ")
    emit(f"Data: {args.items:,} items x {args.per_item} answers = {args.items * args.per_item:,} answers, "
         f"{args.annotators:,} annotators, {args.classes} classes (synthetic, seed 0, known truth).  ")
    if converged is not None:
        emit(f"Iterations: {args.n_iter}, goldlabel DawidSkene's iterations to convergence at tol=1e-5 "
             f"({converged['seconds']:.2f} s); both libraries then run exactly {args.n_iter} with tol=0.")
    else:
        emit(f"Iterations: {args.n_iter} for both (tol=0).")
    emit("")
    emit("| library | fit (s) | s / iteration | iterations | input prep (s) | RSS before fit (MB) "
         "| peak RSS (MB) | accuracy (%) |")
    emit("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        name = "goldlabel DawidSkene" if r["library"] == "goldlabel" else "crowd-kit 1.4.2 DawidSkene"
        if "error" in r:
            emit(f"| {name} | error: {r['error'].splitlines()[-1] if r['error'] else '?'} |||||||")
            continue
        emit(f"| {name} | {r['seconds']:.2f} | {r['seconds'] / max(r['iterations'], 1):.3f} | {r['iterations']} "
             f"| {r['prepare_seconds']:.2f} | {r['rss_before_fit_mb']:.0f} | {r['peak_rss_mb']:.0f} "
             f"| {100 * r['accuracy']:.2f} |")
    emit("")
    gl = results[0]
    emit("```")
    if "error" in gl:
        emit("FAIL  goldlabel DawidSkene failed")
    else:
        if len(results) > 1 and "error" not in results[1]:
            ck = results[1]
            speedup = ck["seconds"] / gl["seconds"]
            emit(f"{'PASS' if speedup >= 10 else 'FAIL'}  speed: goldlabel {speedup:.1f}x faster than crowd-kit "
                 f"on the same {args.n_iter} iterations (goal >= 10x)")
            emit(f"info  accuracy: goldlabel {100 * gl['accuracy']:.2f} vs crowd-kit {100 * ck['accuracy']:.2f}")
            emit(f"info  crowd-kit peak RSS {ck['peak_rss_mb']:.0f} MB")
        else:
            emit("n/a   speed: crowd-kit not available, no ratio")
        emit(f"{'PASS' if gl['peak_rss_mb'] < 1024 else 'FAIL'}  memory: goldlabel peak RSS "
             f"{gl['peak_rss_mb']:.0f} MB (goal < 1024 MB; whole process incl. interpreter and input)")
    emit("```")
    text = "\n".join(lines)
    print(text)
    if args.profile and "profile" in gl:
        print("\ncProfile of goldlabel's fit (cumulative):\n" + gl["profile"][-6000:])
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
