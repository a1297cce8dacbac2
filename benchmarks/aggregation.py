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
                    "GLAD", "MACE", "KOS", "MMSR"]
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
    model = methods[name]()
    if hasattr(model, "calibrate"):
        # raw posteriors: the calibration map is fitted and scored leave-one-dataset-out by
        # the main process (the shipped map was fitted on all of these sets)
        model.calibrate = False
    model.fit(answers)
    seconds = time.perf_counter() - start
    probas = np.asarray(model.probas_, dtype=np.float64)
    extra = {"second": _second(probas).tolist()}
    if hasattr(model, "selected_"):
        extra["selected"] = model.selected_
        extra["selection_scores"] = {k: float(v) for k, v in model.scores_.items()}
    return seconds, probas.argmax(axis=1), probas.max(axis=1), extra


def _second(probas: np.ndarray) -> np.ndarray:
    """Second-highest probability per row (0 with one column)."""
    if probas.shape[1] < 2:
        return np.zeros(len(probas))
    return np.sort(probas, axis=1)[:, -2]


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
        extra = {}
    else:
        probas = probas.reindex(index=range(n_items), columns=range(int(data["n_classes"]))).fillna(0.0)
        confidence = probas.to_numpy().max(axis=1)
        extra = {"second": _second(probas.to_numpy()).tolist()}
    return seconds, codes, confidence, extra


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
            seconds, codes, confidence, extra = fit(method, data)
        except Exception as error:  # noqa: BLE001 - report, keep going
            return {"error": f"{type(error).__name__}: {error}"[:300]}
        return {"seconds": seconds, "peak_mb": None, "labels": codes.tolist(),
                "confidence": np.nan_to_num(confidence, nan=-1.0).tolist(), **extra}
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        result_path = handle.name
    before = _maxrss_mb()
    pid = os.fork()
    if pid == 0:  # child: fit, write the result, leave without running atexit handlers
        status = 0
        try:
            start_rss = _maxrss_mb()
            seconds, codes, confidence, extra = fit(method, data)
            result = {"seconds": seconds, "peak_mb": max(_maxrss_mb() - start_rss, 0.0),
                      "peak_total_mb": _maxrss_mb(), "labels": codes.tolist(),
                      "confidence": np.nan_to_num(confidence, nan=-1.0).tolist(), **extra}
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


def start_worker(python: str, library: str, files: list[str], methods: list[str], timeout: float,
                 forked: bool, out: Path) -> subprocess.Popen:
    command = [python, str(Path(__file__).resolve()), "--worker", library, "--out", str(out),
               "--methods", ",".join(methods), "--timeout", str(timeout), *(["--forked"] if forked else []),
               *files]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def collect_worker(process: subprocess.Popen, library: str, out: Path) -> list[dict]:
    _, stderr = process.communicate()
    if process.returncode != 0:
        print(f"<!-- {library} worker failed (rc {process.returncode}): {stderr.strip()[-800:]} -->",
              file=sys.stderr)
    return read_records(out)


def read_records(out: Path) -> list[dict]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line.strip()]


def run_worker(python: str, library: str, files: list[str], methods: list[str], timeout: float,
               forked: bool, scratch: Path) -> list[dict]:
    out = scratch / f"{library}.jsonl"
    return collect_worker(start_worker(python, library, files, methods, timeout, forked, out), library, out)


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
    parser.add_argument("--records", help="keep the workers' raw results (JSON lines) in this folder")
    parser.add_argument("--from-records", action="store_true",
                        help="do not fit: re-render the tables from the results kept in --records")
    parser.add_argument("--parallel", action="store_true", help="run the two libraries' workers at once")
    parser.add_argument("--quality-md", help="rewrite the generated section of this docs/quality.md")
    parser.add_argument("--diagrams", help="write reliability diagrams (PNG) into this folder")
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
        # smallest first: a run cut short still has every small set
        for name, data in sorted(datasets.items(), key=lambda kv: kv[1].n_answers):
            path = scratch / f"{name}.npz"
            np.savez(path, item=data.item, worker=data.worker, label=data.label,
                     n_items=data.n_items, n_workers=data.n_workers, n_classes=data.n_classes)
            files.append(str(path))
        forked = not args.quick
        started = time.perf_counter()
        keep = Path(args.records) if args.records else scratch
        keep.mkdir(parents=True, exist_ok=True)
        ck_methods = QUICK_CROWDKIT if args.quick else CROWDKIT_METHODS
        if args.from_records:
            # re-render a finished run (tables, LODO, calibration) without re-fitting anything
            # every goldlabel*.jsonl / crowdkit*.jsonl there (a worker may have been split over
            # processes); for a (dataset, method) fitted twice a finished fit beats a failed one
            merged: dict = {}
            for path in sorted(keep.glob("goldlabel*.jsonl")) + sorted(keep.glob("crowdkit*.jsonl")):
                for r in read_records(path):
                    key = (r["dataset"], r["library"], r["method"])
                    if key not in merged or ("error" in merged[key] and "error" not in r):
                        merged[key] = r
            records = [r for r in merged.values() if r["dataset"] in datasets]
            ck_python = ck_python or ("(recorded)" if any(r["library"] == "crowdkit" for r in records) else None)
        else:
            jobs = [("goldlabel", sys.executable, list(gl_methods))]
            if ck_python:
                jobs.append(("crowdkit", ck_python, ck_methods))
            records = []
            if args.parallel:  # both libraries at once, one core each
                running = [(lib, start_worker(py, lib, files, m, args.timeout, forked, keep / f"{lib}.jsonl"))
                           for lib, py, m in jobs]
                for lib, process in running:
                    records += collect_worker(process, lib, keep / f"{lib}.jsonl")
            else:
                for lib, py, m in jobs:
                    records += run_worker(py, lib, files, m, args.timeout, forked, keep)
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
    if ck_python == "(recorded)":
        emit("crowd-kit: results read back from the kept records of the fitting run (--from-records).  ")
    elif ck_python:
        emit(f"crowd-kit {crowdkit_version(ck_python)} from `{ck_python}`, "
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
            best = max((v for v in values.values() if v is not None), default=None) if key in {"accuracy",
                                                                                               "f1"} else None
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
                cells.append(fmt(float(np.mean(vals)), spec,
                                 scale) + ("" if len(vals) == n_rows else f" ({len(vals)})") if vals else "–")
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

    lodo_lines, lodo_table, _, _ = lodo_report(datasets, by_key, gl_methods, ck_python is not None, args.diagrams)
    lines.extend(lodo_lines)
    if args.quality_md:
        write_quality_md(Path(args.quality_md), lodo_table,
                         f"Generated by `python benchmarks/aggregation.py` on {time.strftime('%Y-%m-%d')} "
                         f"({machine_description()}).")

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


# ------------------------------------------------------------- leave-one-dataset-out

#: goldlabel methods a default may be chosen from; ``robust`` is left out on purpose: its
#: constants were tuned by looking at these very sets, so no score of it here is held out
DEFAULT_CANDIDATES = ["auto", "onecoin", "ds", "ebcc", "mv"]
QUALITY_MD_START = "<!-- aggregation.py:lodo:start -->"
QUALITY_MD_END = "<!-- aggregation.py:lodo:end -->"


def _truth_arrays(record: dict, data: Categorical):
    known = data.truth >= 0
    pred = np.asarray(record["labels"], dtype=np.int64)[known]
    conf = np.asarray(record["confidence"], dtype=np.float64)[known]
    second = np.asarray(record.get("second", np.zeros(len(record["labels"]))), dtype=np.float64)[known]
    return pred == data.truth[known], conf, second


def lodo_calibration(datasets, by_key, library: str, method: str):
    """Per held-out set: the ECE of ``method``'s confidence raw and after a Platt map fitted on
    the OTHER sets only (each set weighted equally); plus the map fitted on all sets (shipped),
    and the pooled (confidence, correct) pairs for the reliability diagram."""
    from goldlabel.quality.calibration import calibrated_top, fit_platt

    pairs = {}
    for name, data in datasets.items():
        r = by_key.get((name, library, method))
        if r is None or "error" in r or min(r["confidence"]) < 0:
            continue  # a failed fit: the map is fitted and scored on the other sets
        pairs[name] = _truth_arrays(r, data)
    if len(pairs) < 2:
        return None
    datasets = {n: d for n, d in datasets.items() if n in pairs}
    out = {"raw": {}, "lodo": {}, "conf_raw": [], "conf_lodo": [], "correct": []}
    for name, data in datasets.items():
        others = [n for n in datasets if n != name]
        conf = np.concatenate([pairs[n][1] for n in others])
        correct = np.concatenate([pairs[n][0] for n in others])
        weights = np.concatenate([np.full(len(pairs[n][0]), 1.0 / len(pairs[n][0])) for n in others])
        params = fit_platt(conf, correct, weights)
        hit, raw, second = pairs[name]
        mapped = calibrated_top(raw, second, data.n_classes, params)
        out["raw"][name] = expected_calibration_error(raw, hit)
        out["lodo"][name] = expected_calibration_error(mapped, hit)
        out["conf_raw"].append(raw)
        out["conf_lodo"].append(mapped)
        out["correct"].append(hit)
    conf = np.concatenate([pairs[n][1] for n in datasets])
    correct = np.concatenate([pairs[n][0] for n in datasets])
    weights = np.concatenate([np.full(len(pairs[n][0]), 1.0 / len(pairs[n][0])) for n in datasets])
    out["shipped"] = fit_platt(conf, correct, weights)
    return out


def reliability_png(path: Path, title: str, raw, mapped, correct, bins: int = ECE_BINS) -> bool:
    """A reliability diagram (accuracy per confidence bin, raw and calibrated) as a PNG;
    False when matplotlib (a benchmark-only dependency) is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    raw, mapped, correct = (np.concatenate(x) for x in (raw, mapped, correct))
    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=100)
    ax.plot([0, 1], [0, 1], color="0.6", linewidth=1, linestyle="--", label="perfect")
    for conf, label, marker in ((raw, "raw posterior", "o"), (mapped, "calibrated (LODO map)", "s")):
        which = np.minimum((np.clip(conf, 0, 1) * bins).astype(np.int64), bins - 1)
        count = np.bincount(which, minlength=bins)
        used = count > 0
        mean_conf = np.bincount(which, conf, bins)[used] / count[used]
        accuracy = np.bincount(which, correct, bins)[used] / count[used]
        ece = expected_calibration_error(conf, correct)
        ax.plot(mean_conf, accuracy, marker=marker, markersize=3, linewidth=1, label=f"{label}, ECE {ece:.3f}")
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def lodo_report(datasets, by_key, gl_methods, have_crowdkit, diagrams: str | None):
    """The leave-one-dataset-out section: for each held-out set, the default chosen (from
    DEFAULT_CANDIDATES, by mean accuracy over the other sets) and its accuracy there; the
    calibration maps fitted on the other sets and their ECE there. Returns (lines, table for
    docs/quality.md, shipped Platt maps)."""
    lines: list[str] = []
    emit = lines.append
    if len(datasets) < 2:
        emit("Leave-one-dataset-out: needs at least two data sets (skipped).")
        emit("")
        return lines, [], {}, None

    def acc(name, library, method):
        r = by_key.get((name, library, method), {})
        return r.get("accuracy")

    candidates = [m for m in DEFAULT_CANDIDATES if m in gl_methods]
    names = list(datasets)
    chosen, lodo_acc = {}, {}
    for name in names:
        others = [n for n in names if n != name]

        def mean_other(method, others=others):
            values = [acc(n, "goldlabel", method) for n in others]
            return float(np.mean(values)) if all(v is not None for v in values) else -1.0
        best = max(candidates, key=lambda m: (mean_other(m), -candidates.index(m)))
        chosen[name] = best
        lodo_acc[name] = acc(name, "goldlabel", best)
    everywhere = max(candidates, key=lambda m: (float(np.mean([acc(n, "goldlabel", m) or -1 for n in names])),
                                                -candidates.index(m)))

    calibration = {m: lodo_calibration(datasets, by_key, "goldlabel", m) for m in gl_methods}
    ck_cal = {m: lodo_calibration(datasets, by_key, "crowdkit", m) for m in CROWDKIT_METHODS} if have_crowdkit else {}
    shipped = {m: c["shipped"] for m, c in calibration.items() if c is not None}

    ck_cols = [m for m in CROWDKIT_METHODS if any((n, "crowdkit", m) in by_key for n in names)]
    short = {"MajorityVote": "MV", "DawidSkene": "DS", "OneCoinDawidSkene": "OneCoin", "ZeroBasedSkill": "ZBS"}
    table: list[str] = []
    head = ["dataset", "LODO default (chosen on the other sets)", "auto picked", "auto",
            "ECE auto raw", "ECE auto LODO-calibrated"] + [f"ck {short.get(m, m)}" for m in ck_cols] + ["ck best"]
    table.append("| " + " | ".join(head) + " |")
    table.append("|---|---|---|---:|---:|---:|" + "---:|" * (len(ck_cols) + 1))
    best_ck, gaps = {}, {}
    for name in names:
        auto = by_key.get((name, "goldlabel", "auto"), {})
        values = {m: acc(name, "crowdkit", m) for m in ck_cols}
        finished = {m: v for m, v in values.items() if v is not None}
        best_m = max(finished, key=finished.get) if finished else None
        best_ck[name] = finished[best_m] if best_m else float("nan")
        if values.get("DawidSkene") is not None and lodo_acc[name] is not None:
            gaps[name] = 100 * (lodo_acc[name] - values["DawidSkene"])
        cal = calibration.get("auto")
        cells = [name, f"{fmt(lodo_acc[name], '.2f', 100)} ({chosen[name]})", str(auto.get("selected", "–")),
                 fmt(auto.get("accuracy"), ".2f", 100),
                 fmt(cal["raw"].get(name), ".3f") if cal else "–", fmt(cal["lodo"].get(name), ".3f") if cal else "–"]
        for m in ck_cols:
            r = by_key.get((name, "crowdkit", m))
            cells.append("n/a" if r is None else ("failed" if "error" in r else fmt(values[m], ".2f", 100)))
        cells.append(f"{fmt(best_ck[name], '.2f', 100)} ({short.get(best_m, best_m)})" if best_m else "–")
        table.append("| " + " | ".join(cells) + " |")
    scored = [lodo_acc[n] for n in names if lodo_acc[n] is not None]
    mean_lodo = float(np.mean(scored)) if scored else float("nan")
    auto_all = [acc(n, "goldlabel", "auto") for n in names]
    cal = calibration.get("auto")
    mean_cells = ["**mean**", f"**{100 * mean_lodo:.2f}**" + ("" if len(scored) == len(names) else f" ({len(scored)})"),
                  "",
                  fmt(float(np.mean(auto_all)) if all(v is not None for v in auto_all) else None, ".2f", 100),
                  fmt(float(np.mean(list(cal["raw"].values()))), ".3f") if cal else "–",
                  fmt(float(np.mean(list(cal["lodo"].values()))), ".3f") if cal else "–"]
    for m in ck_cols:
        vals = [acc(n, "crowdkit", m) for n in names]
        done = [v for v in vals if v is not None]
        mean_cells.append(fmt(float(np.mean(done)), ".2f", 100) + ("" if len(done) == len(names) else f" ({len(done)})")
                          if done else "–")
    mean_best = float(np.nanmean(list(best_ck.values()))) if best_ck else float("nan")
    mean_cells.append(fmt(mean_best, ".2f", 100))
    table.append("| " + " | ".join(mean_cells) + " |")

    emit("**Leave-one-dataset-out: the default and its calibration**")
    emit("")
    emit(f"Default candidates {candidates} (robust left out: tuned on these sets). For each set, the "
         "default is the candidate with the best mean accuracy on the OTHER sets, scored on the held-out "
         f"set; on all sets the rule picks `{everywhere}`. ECE: {ECE_BINS} equal-width bins; the Platt map "
         "of each method is fitted on the other sets only (each set weighted equally). crowd-kit "
         "methods past the timeout count as failed.")
    emit("")
    lines.extend(table)
    emit("")
    block_start = len(lines)
    emit("ECE per method, mean over the sets: raw posterior -> Platt map fitted leave-one-dataset-out")
    emit("")
    emit("| method | raw | LODO-calibrated | worst set (LODO) | shipped map (a, b) |")
    emit("|---|---:|---:|---|---|")
    written = []
    for (library, m), c in [*((("goldlabel", m), calibration[m]) for m in gl_methods),
                            *((("crowdkit", m), ck_cal[m]) for m in ck_cal)]:
        if c is None:
            continue
        worst = max(c["lodo"], key=c["lodo"].get)
        tag = f"{'gl' if library == 'goldlabel' else 'ck'} {short.get(m, m)}"
        if len(c["lodo"]) < len(names):
            tag += f" ({len(c['lodo'])} sets)"
        emit(f"| {tag} | {np.mean(list(c['raw'].values())):.3f} | {np.mean(list(c['lodo'].values())):.3f} | "
             f"{worst} {c['lodo'][worst]:.3f} | {c['shipped'][0]:.4f}, {c['shipped'][1]:.4f} |")
        if diagrams and library == "goldlabel":
            path = Path(diagrams) / f"reliability-{m}.png"
            if reliability_png(path, f"goldlabel {m}: {len(c['lodo'])} sets pooled, items with truth",
                               c["conf_raw"], c["conf_lodo"], c["correct"]):
                written.append(path)
    emit("")
    if diagrams:
        emit(f"Reliability diagrams written: {', '.join(p.name for p in written) or 'none (no matplotlib)'}.")
        emit("")
    emit("```")
    common = [n for n in names if lodo_acc[n] is not None and np.isfinite(best_ck.get(n, np.nan))]
    if have_crowdkit and common:
        ours = float(np.mean([lodo_acc[n] for n in common]))
        theirs = float(np.mean([best_ck[n] for n in common]))
        verdict = "PASS" if ours >= theirs - 1e-12 else "FAIL"
        emit(f"{verdict}  LODO default mean accuracy {100 * ours:.2f} vs mean of crowd-kit's best per set "
             f"(hindsight) {100 * theirs:.2f} ({100 * (ours - theirs):+.2f}; {len(common)} of {len(names)} sets "
             "have both)")
        if gaps:
            worst = min(gaps, key=gaps.get)
            verdict = "PASS" if gaps[worst] >= -1.0 else "FAIL"
            below = [n for n, g in gaps.items() if g < -1.0]
            emit(f"{verdict}  LODO default never > 1 point below crowd-kit DS: worst {worst} {gaps[worst]:+.2f}"
                 + (f"; below on {', '.join(below)}" if below else ""))
    if cal:
        mean_ece = float(np.mean(list(cal["lodo"].values())))
        emit(f"{'PASS' if mean_ece < 0.05 else 'FAIL'}  mean ECE of auto, LODO-calibrated: {mean_ece:.4f} "
             f"(raw {np.mean(list(cal['raw'].values())):.4f}; goal < 0.05)")
    emit("```")
    emit("")
    block = [*table, "", *lines[block_start:]]
    emit("Shipped maps (`goldlabel.quality.calibration.CALIBRATION`, fitted on all sets): "
         + ", ".join(f'"{m}": ({a:.4f}, {b:.4f})' for m, (a, b) in shipped.items()))
    emit("")
    return lines, block, shipped, everywhere


def write_quality_md(path: Path, table: list[str], header: str) -> None:
    text = path.read_text(encoding="utf-8")
    start, end = text.find(QUALITY_MD_START), text.find(QUALITY_MD_END)
    if start < 0 or end < start:
        raise SystemExit(f"{path}: markers {QUALITY_MD_START} ... {QUALITY_MD_END} not found")
    body = "\n".join([QUALITY_MD_START, header, "", *table, QUALITY_MD_END])
    path.write_text(text[:start] + body + text[end + len(QUALITY_MD_END):], encoding="utf-8")


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
