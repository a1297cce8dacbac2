"""Benchmark 1 of issue 3: categorical truth inference, goldlabel vs crowd-kit, same run.

Every goldlabel categorical method (``goldlabel.quality.METHODS`` when the registry exists,
else MV, Wawa, DS, OneCoin, GLAD, MACE, BCC, EBCC) and the recommended default
(``goldlabel.quality.DEFAULT_METHOD``) on every categorical dataset in ``../shared/datasets``,
side by side with crowd-kit 1.4.2's MajorityVote, Wawa, ZeroBasedSkill, DawidSkene,
OneCoinDawidSkene, GLAD, MACE (and KOS on binary sets), run from ``.venv-crowdkit``
(``$GOLDLABEL_CROWDKIT_PYTHON`` overrides) in a worker subprocess of this same run.

Reported per (dataset, method): accuracy on items with truth, F1 of the positive class on
binary sets, expected calibration error of the final label's confidence (15 equal-width
bins), fit time and peak memory. Memory: each fit runs in a forked child of the worker
(after imports and data loading); "peak MB" is the child's ``ru_maxrss`` high-water mark
minus the worker's before the fit, i.e. the extra resident memory the fit needed.

Then the issue's goals are checked (PASS/FAIL lines) and the non-categorical table of
``benchmarks/quality_kinds.py`` is appended.

Usage::

    python benchmarks/aggregation.py                 # full run, markdown on stdout
    python benchmarks/aggregation.py --quick         # smoke test on a tiny subset, goldlabel only
    python benchmarks/aggregation.py --quick --crowdkit  # ... with crowd-kit's worker too
    python benchmarks/aggregation.py --datasets dog,face --timeout 120 --output out.md
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _datasets import (
    REPO,
    Categorical,
    list_datasets,
    load_categorical,
    machine_description,
    require_datasets,
)

CROWDKIT_METHODS = ["MajorityVote", "Wawa", "ZeroBasedSkill", "DawidSkene", "OneCoinDawidSkene",
                    "GLAD", "MACE", "KOS"]
CROWDKIT_BINARY_ONLY = {"KOS"}
FALLBACK_GOLDLABEL = ["MajorityVote", "Wawa", "DawidSkene", "OneCoinDawidSkene", "GLAD", "MACE",
                      "BCC", "EBCC"]
QUICK_DATASETS = ["dog"]
QUICK_ITEMS = 60
QUICK_CROWDKIT = ["MajorityVote", "Wawa", "DawidSkene"]
ECE_BINS = 15

# Published accuracies (%) quoted in issue 3; F1 where marked.
ANCHORS = {
    "zheng_product": "93.78 BCC; F1 71.59 D&S (Zheng VLDB'17 T6)",
    "zheng_possent": "96.00 (Zheng T6); EBCC 96.1 / IBCC 96.0 (Li ICML'19)",
    "zheng_rel": "61.64 LFC (Zheng T6)",
    "bluebirds": "EBCC 86.11 / IBCC 88.89 (Li ICML'19)",
    "dog": "EBCC 84.01 / IBCC 83.89 (Li)",
    "face": "EBCC 63.53 / IBCC 64.04 (Li)",
    "trec2011": "EBCC 70.37 / IBCC 70.55 (Li)",
    "snow_rte": "EBCC 93.13 / IBCC 92.75 (Li)",
    "acf_sp": "EBCC 91.52 / IBCC 91.50 (Li)",
    "acf_cf": "issue: crowd-kit DS 83.0 vs MV 90.0",
    "acf_ms": "issue: crowd-kit DS 76.9 vs ZBS 80.0",
}


# ------------------------------------------------------------------------------------ worker


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def goldlabel_registry() -> tuple[dict, str | None]:
    """``{name: factory}`` of goldlabel's categorical methods and the default's name."""
    from goldlabel import quality

    registry = getattr(quality, "METHODS", None)
    methods: dict = {}
    if isinstance(registry, dict) and registry:
        for name, entry in registry.items():
            methods[str(name)] = _factory(entry)
    else:
        for name in FALLBACK_GOLDLABEL:
            methods[name] = getattr(quality, name)
    default = getattr(quality, "DEFAULT_METHOD", None)
    default_name = None
    if isinstance(default, str):
        if default in methods:
            default_name = default
        else:
            matches = [n for n in methods if n.lower() == default.lower()]
            if matches:
                default_name = matches[0]
            elif hasattr(quality, default):
                methods[f"default:{default}"] = getattr(quality, default)
                default_name = f"default:{default}"
    elif default is not None:
        methods["default"] = _factory(default)
        default_name = "default"
    return methods, default_name


def _factory(entry):
    if isinstance(entry, type) or callable(entry) and not hasattr(entry, "fit"):
        return entry
    params = entry.get_params() if hasattr(entry, "get_params") else {}
    return lambda: type(entry)(**params)


def _fit_goldlabel(name: str, data: dict):
    from goldlabel import quality

    methods, _ = goldlabel_registry()
    answers = quality.from_codes(data["item"], data["worker"], data["label"],
                                 n_items=int(data["n_items"]), n_annotators=int(data["n_workers"]),
                                 n_labels=int(data["n_classes"]))
    start = time.perf_counter()
    model = methods[name]().fit(answers)
    seconds = time.perf_counter() - start
    probas = np.asarray(model.probas_, dtype=np.float64)
    return seconds, probas.argmax(axis=1), probas.max(axis=1)


def _fit_crowdkit(name: str, data: dict):
    import pandas as pd
    from crowdkit import aggregation

    n_items = int(data["n_items"])
    frame = pd.DataFrame({"task": data["item"], "worker": data["worker"], "label": data["label"]})
    model = getattr(aggregation, name)()
    start = time.perf_counter()
    labels = model.fit_predict(frame)  # Wawa and ZeroBasedSkill set labels_ only here
    probas = getattr(model, "probas_", None)
    if probas is None and hasattr(model, "predict_proba"):
        probas = model.predict_proba(frame)
    seconds = time.perf_counter() - start
    labels = labels.reindex(range(n_items))
    codes = labels.fillna(-1).to_numpy().astype(np.int64)
    if probas is None:
        confidence = np.full(n_items, np.nan)
    else:
        probas = probas.reindex(index=range(n_items), columns=range(int(data["n_classes"]))).fillna(0.0)
        confidence = probas.to_numpy().max(axis=1)
    return seconds, codes, confidence


def worker_main(library: str, data_files: list[str], methods: list[str], out: str,
                timeout: float, forked: bool) -> None:
    """Fit every method on every data file; one JSON line per (dataset, method) into ``out``."""
    if library == "goldlabel":
        import goldlabel.quality  # noqa: F401  (import cost outside the timings)
        fit = _fit_goldlabel
    else:
        import crowdkit.aggregation  # noqa: F401
        import pandas  # noqa: F401
        fit = _fit_crowdkit
    with open(out, "w", encoding="utf-8") as sink:
        for path in data_files:
            data = dict(np.load(path))
            name = Path(path).stem
            for method in methods:
                if library == "crowdkit" and method in CROWDKIT_BINARY_ONLY and int(data["n_classes"]) != 2:
                    continue
                record = {"dataset": name, "library": library, "method": method}
                record.update(_run_one(fit, method, data, timeout, forked))
                sink.write(json.dumps(record) + "\n")
                sink.flush()


def _run_one(fit, method: str, data: dict, timeout: float, forked: bool) -> dict:
    if not forked:  # quick mode: in process, no memory figure
        try:
            seconds, codes, confidence = fit(method, data)
        except Exception as error:  # noqa: BLE001 - report, keep going
            return {"error": f"{type(error).__name__}: {error}"[:300]}
        return {"seconds": seconds, "peak_mb": None, "labels": codes.tolist(),
                "confidence": np.nan_to_num(confidence, nan=-1.0).tolist()}
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        result_path = handle.name
    before = _maxrss_mb()
    pid = os.fork()
    if pid == 0:  # child: fit, write the result, leave without running atexit handlers
        status = 0
        try:
            start_rss = _maxrss_mb()
            seconds, codes, confidence = fit(method, data)
            result = {"seconds": seconds, "peak_mb": max(_maxrss_mb() - start_rss, 0.0),
                      "peak_total_mb": _maxrss_mb(), "labels": codes.tolist(),
                      "confidence": np.nan_to_num(confidence, nan=-1.0).tolist()}
        except BaseException as error:  # noqa: BLE001
            result = {"error": f"{type(error).__name__}: {error}"[:300]}
            status = 1
        with open(result_path, "w", encoding="utf-8") as handle:
            json.dump(result, handle)
        os._exit(status)
    deadline = time.monotonic() + timeout
    while True:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.unlink(result_path)
            return {"error": f"timeout after {timeout:.0f} s"}
        time.sleep(0.02)
    try:
        with open(result_path, encoding="utf-8") as handle:
            result = json.load(handle)
    except (OSError, ValueError):
        result = {"error": "worker child died without a result"}
    os.unlink(result_path)
    result.setdefault("baseline_mb", before)
    return result


# ----------------------------------------------------------------------------------- metrics


def accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    known = truth >= 0
    return float((pred[known] == truth[known]).mean())


def f1_positive(pred: np.ndarray, truth: np.ndarray, positive: int) -> float:
    known = truth >= 0
    p, t = pred[known] == positive, truth[known] == positive
    tp = float((p & t).sum())
    denominator = float(p.sum() + t.sum())
    return 2 * tp / denominator if denominator else 0.0


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE with equal-width bins on [0, 1]: sum over bins of |bin| / n * |accuracy - confidence|."""
    confidence = np.clip(np.asarray(confidence, dtype=np.float64), 0.0, 1.0)
    correct = np.asarray(correct, dtype=np.float64)
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    count = np.bincount(which, minlength=bins)
    gap = np.abs(np.bincount(which, correct, minlength=bins) - np.bincount(which, confidence, minlength=bins))
    return float(gap.sum() / max(len(confidence), 1)) if count.sum() else float("nan")


def score(record: dict, dataset: Categorical) -> dict:
    if "error" in record:
        return record
    pred = np.asarray(record["labels"], dtype=np.int64)
    confidence = np.asarray(record["confidence"], dtype=np.float64)
    known = dataset.truth >= 0
    out = dict(record)
    out["accuracy"] = accuracy(pred, dataset.truth)
    if dataset.positive is not None:
        out["f1"] = f1_positive(pred, dataset.truth, dataset.positive)
    if (confidence[known] >= 0).all():
        out["ece"] = expected_calibration_error(confidence[known], pred[known] == dataset.truth[known])
    return out


# -------------------------------------------------------------------------------------- main


def crowdkit_python() -> str | None:
    candidate = os.environ.get("GOLDLABEL_CROWDKIT_PYTHON") or str(REPO / ".venv-crowdkit" / "bin" / "python")
    if not Path(candidate).exists():
        return None
    probe = subprocess.run([candidate, "-c", "import crowdkit, pandas; print(crowdkit.__version__)"],
                           capture_output=True, text=True, check=False)
    return candidate if probe.returncode == 0 else None


def crowdkit_version(python: str) -> str:
    # Informational only: an empty version string when the probe fails, never an exception.
    probe = subprocess.run([python, "-c", "import crowdkit; print(crowdkit.__version__)"],
                           capture_output=True, text=True, check=False)
    return probe.stdout.strip()


def load_all(names: list[str], quick: bool) -> dict[str, Categorical]:
    loaded = {}
    for name in names:
        data = load_categorical(name)
        if quick:
            keep = np.zeros(data.n_items, dtype=bool)
            keep[:QUICK_ITEMS] = True
            data = data.subset_items(keep)
        loaded[name] = data
    return loaded


def run_worker(python: str, library: str, files: list[str], methods: list[str], timeout: float,
               forked: bool, scratch: Path) -> list[dict]:
    out = scratch / f"{library}.jsonl"
    command = [python, str(Path(__file__).resolve()), "--worker", library, "--out", str(out),
               "--methods", ",".join(methods), "--timeout", str(timeout), *(["--forked"] if forked else []),
               *files]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        print(f"<!-- {library} worker failed (rc {completed.returncode}): "
              f"{completed.stderr.strip()[-800:]} -->", file=sys.stderr)
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line.strip()]


def fmt(value, spec: str = ".2f", scale: float = 1.0) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return format(value * scale, spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: dog's first 60 items, 3 crowd-kit methods, no fork/memory")
    parser.add_argument("--datasets", help="comma-separated dataset names (default: all categorical)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per fit before it is killed")
    parser.add_argument("--no-crowdkit", action="store_true")
    parser.add_argument("--crowdkit", action="store_true",
                        help="with --quick: run crowd-kit too (skipped by default, it costs seconds of imports)")
    parser.add_argument("--no-kinds", action="store_true", help="skip benchmarks/quality_kinds.py")
    parser.add_argument("--output", help="also write the markdown to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--methods", help=argparse.SUPPRESS)
    parser.add_argument("--forked", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("files", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args.worker, args.files, args.methods.split(","), args.out, args.timeout, args.forked)
        return 0

    require_datasets()
    names = args.datasets.split(",") if args.datasets else (QUICK_DATASETS if args.quick else list_datasets())
    datasets = load_all(names, args.quick)
    gl_methods, default_name = goldlabel_registry()
    skip_crowdkit = args.no_crowdkit or (args.quick and not args.crowdkit)
    ck_python = None if skip_crowdkit else crowdkit_python()
    load_before = os.getloadavg()
    lines: list[str] = []
    emit = lines.append

    with tempfile.TemporaryDirectory(prefix="goldlabel-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        files = []
        for name, data in datasets.items():
            path = scratch / f"{name}.npz"
            np.savez(path, item=data.item, worker=data.worker, label=data.label,
                     n_items=data.n_items, n_workers=data.n_workers, n_classes=data.n_classes)
            files.append(str(path))
        forked = not args.quick
        started = time.perf_counter()
        records = run_worker(sys.executable, "goldlabel", files, list(gl_methods), args.timeout, forked, scratch)
        if ck_python:
            ck_methods = QUICK_CROWDKIT if args.quick else CROWDKIT_METHODS
            records += run_worker(ck_python, "crowdkit", files, ck_methods, args.timeout, forked, scratch)
        wall = time.perf_counter() - started

    scored = [score(r, datasets[r["dataset"]]) for r in records]
    by_key = {(r["dataset"], r["library"], r["method"]): r for r in scored}
    gl_cols = [("goldlabel", m) for m in gl_methods]
    ck_cols = [("crowdkit", m) for m in (QUICK_CROWDKIT if args.quick else CROWDKIT_METHODS)] if ck_python else []
    columns = gl_cols + ck_cols

    def label(col):
        library, method = col
        short = {"MajorityVote": "MV", "DawidSkene": "DS", "OneCoinDawidSkene": "OneCoin",
                 "ZeroBasedSkill": "ZBS"}.get(method, method)
        star = "*" if library == "goldlabel" and method == default_name else ""
        return f"{'gl' if library == 'goldlabel' else 'ck'} {short}{star}"

    emit(f"Machine: {machine_description()}; load average {load_before[0]:.1f} at the start, "
         f"{os.getloadavg()[0]:.1f} at the end (1-minute).  ")
    if ck_python:
        emit(f"crowd-kit {crowdkit_version(ck_python)} from `{os.path.relpath(ck_python, REPO)}`, "
             "run in a worker subprocess of the same benchmark run.  ")
    elif skip_crowdkit:
        emit("crowd-kit: skipped (--no-crowdkit, or --quick without --crowdkit), goldlabel only.  ")
    else:
        emit("crowd-kit: not installed (no `.venv-crowdkit`), goldlabel only.  ")
    emit(f"gl = goldlabel, ck = crowd-kit; `*` = goldlabel's default "
         f"(`DEFAULT_METHOD` = {default_name!r}); all methods with library defaults, no per-dataset tuning. "
         f"Datasets: {len(datasets)}{' (quick subset)' if args.quick else ''}; wall time {wall:.0f} s.")
    emit("")

    def matrix(title, key, scale, spec, only=None, extra=None, mean=True):
        if only and not any(only(d) for d in datasets.values()):
            return
        emit(f"**{title}**")
        emit("")
        head = ["dataset"] + [label(c) for c in columns] + ([extra[0]] if extra else [])
        emit("| " + " | ".join(head) + " |")
        emit("|---|" + "---:|" * len(columns) + ("---|" if extra else ""))
        sums = {c: [] for c in columns}
        for name, data in datasets.items():
            if only and not only(data):
                continue
            cells = []
            values = {c: by_key.get((name, *c), {}).get(key) for c in columns}
            best = max((v for v in values.values() if v is not None), default=None) if key in {"accuracy", "f1"} else None
            for c in columns:
                r = by_key.get((name, *c))
                if r is None:
                    cells.append("n/a")
                    continue
                if "error" in r:
                    cells.append("timeout" if "timeout" in r["error"] else "error")
                    continue
                value = r.get(key)
                sums[c].append(value)
                text = fmt(value, spec, scale)
                cells.append(f"**{text}**" if best is not None and value is not None and value == best else text)
            emit(f"| {name} | " + " | ".join(cells) + (f" | {extra[1](name)} |" if extra else " |"))
        if mean:
            cells = []
            for c in columns:
                vals = [v for v in sums[c] if v is not None]
                n_rows = sum(1 for n, d in datasets.items() if not only or only(d))
                cells.append(fmt(float(np.mean(vals)), spec, scale) + ("" if len(vals) == n_rows else f" ({len(vals)})") if vals else "–")
            emit("| **mean** | " + " | ".join(cells) + (" | |" if extra else " |"))
        emit("")

    matrix("Accuracy (%) on items with truth (best per row in bold)", "accuracy", 100, ".2f",
           extra=("published anchors", lambda n: ANCHORS.get(n, "")))
    matrix("F1 (%) of the positive class, binary sets (positive = last class: 1 / Yes / 2)", "f1", 100, ".2f",
           only=lambda d: d.positive is not None)
    matrix(f"Calibration: ECE of the final label's confidence ({ECE_BINS} equal-width bins; KOS has no probabilities)",
           "ece", 1, ".3f")
    matrix("Fit time (s)", "seconds", 1, ".2f")
    if forked:
        matrix("Peak extra memory of the fit (MB, ru_maxrss of a forked child above the loaded worker)",
               "peak_mb", 1, ".0f")
    errors = [r for r in scored if "error" in r]
    if errors:
        emit("Failed or timed-out fits: " + "; ".join(
            f"{r['dataset']} {r['library']} {r['method']}: {r['error']}" for r in errors) + ".")
        emit("")

    emit("**Goals (issue 3)**")
    emit("")
    emit("```")
    for line in goal_lines(datasets, by_key, default_name, ck_python is not None):
        emit(line)
    emit("```")
    emit("")

    if not args.no_kinds and not args.quick:
        emit("**Non-categorical kinds** (output of `python benchmarks/quality_kinds.py`, same run)")
        emit("")
        kinds = subprocess.run([sys.executable, str(REPO / "benchmarks" / "quality_kinds.py")],
                               capture_output=True, text=True, check=False)
        emit(kinds.stdout.strip() if kinds.returncode == 0 else f"quality_kinds.py failed: {kinds.stderr[-500:]}")
        emit("")

    text = "\n".join(lines)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    return 0


def goal_lines(datasets, by_key, default_name, have_crowdkit) -> list[str]:
    out = []
    if default_name is None:
        out.append("FAIL  no goldlabel.quality.DEFAULT_METHOD: nothing to judge")
        return out

    def acc(name, library, method):
        r = by_key.get((name, library, method), {})
        return r.get("accuracy")

    default = {n: acc(n, "goldlabel", default_name) for n in datasets}
    if any(v is None for v in default.values()):
        out.append("FAIL  the default failed on: " + ", ".join(n for n, v in default.items() if v is None))
        return out
    mean_default = float(np.mean(list(default.values())))
    if have_crowdkit:
        best = {}
        for n in datasets:
            values = [acc(n, "crowdkit", m) for m in CROWDKIT_METHODS]
            values = [v for v in values if v is not None]
            best[n] = max(values) if values else float("nan")
        mean_best = float(np.nanmean(list(best.values())))
        verdict = "PASS" if mean_default >= mean_best - 1e-12 else "FAIL"
        out.append(f"{verdict}  mean accuracy of the default {default_name}: {100 * mean_default:.2f} "
                   f"vs mean of per-dataset best crowd-kit method {100 * mean_best:.2f} "
                   f"({100 * (mean_default - mean_best):+.2f})")
        worst = []
        for n in datasets:
            ds = acc(n, "crowdkit", "DawidSkene")
            if ds is None:
                out.append(f"n/a   {n}: crowd-kit DawidSkene has no result")
                continue
            gap = 100 * (default[n] - ds)
            worst.append(gap)
            verdict = "PASS" if gap >= -1.0 else "FAIL"
            out.append(f"{verdict}  {n:<20} default {100 * default[n]:6.2f} vs crowd-kit DS {100 * ds:6.2f} "
                       f"({gap:+.2f}; best crowd-kit {100 * best[n]:.2f})")
        if worst:
            verdict = "PASS" if min(worst) >= -1.0 else "FAIL"
            out.append(f"{verdict}  never more than 1 point below crowd-kit DS: worst gap {min(worst):+.2f}")
    else:
        out.append(f"n/a   crowd-kit not installed; mean accuracy of the default {100 * mean_default:.2f}")
    eces = [by_key.get((n, "goldlabel", default_name), {}).get("ece") for n in datasets]
    eces = [e for e in eces if e is not None]
    if eces:
        mean_ece = float(np.mean(eces))
        out.append(f"{'PASS' if mean_ece < 0.05 else 'FAIL'}  mean ECE of the default {mean_ece:.4f} (goal < 0.05; "
                   f"worst {max(eces):.4f})")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
