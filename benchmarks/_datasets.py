"""Shared loader for the benchmark scripts: the crowd datasets in ``../shared/datasets``.

Only the standard library and numpy are imported here, so the crowd-kit worker (which runs
under the separate ``.venv-crowdkit`` interpreter, without goldlabel) can use it too.

The datasets folder is ``$GOLDLABEL_DATASETS`` or ``<repo>/../shared/datasets``. When it is
absent, :func:`require_datasets` prints a clear message and exits with status 0 (the
benchmarks are optional; nothing is wrong with the checkout).
"""

from __future__ import annotations

import csv
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def datasets_dir() -> Path:
    env = os.environ.get("GOLDLABEL_DATASETS")
    return Path(env) if env else (REPO / ".." / "shared" / "datasets").resolve()


def require_datasets() -> Path:
    """The datasets folder, or print why not and exit 0."""
    path = datasets_dir()
    if not (path.is_dir() and any(path.glob("*/meta.json"))):
        print(f"benchmark skipped: crowd datasets not found at {path} "
              "(set GOLDLABEL_DATASETS to the folder holding <name>/answers.csv, truth.csv, meta.json)")
        raise SystemExit(0)
    return path


def read_meta(name: str) -> dict:
    return json.loads((datasets_dir() / name / "meta.json").read_text(encoding="utf-8"))


def list_datasets(task_type: str = "categorical") -> list[str]:
    root = datasets_dir()
    return sorted(p.parent.name for p in root.glob("*/meta.json")
                  if json.loads(p.read_text(encoding="utf-8")).get("task_type") == task_type)


@dataclass
class Categorical:
    """A categorical dataset, integer coded.

    ``item``, ``worker``, ``label``: codes of each answer (items are ``0..n_items-1`` in
    ``item_ids`` order, labels index ``classes``). ``truth``: label code per item, -1 where unknown.
    """

    name: str
    item: np.ndarray
    worker: np.ndarray
    label: np.ndarray
    item_ids: list[str]
    worker_ids: list[str]
    classes: list[str]
    truth: np.ndarray

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_workers(self) -> int:
        return len(self.worker_ids)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_answers(self) -> int:
        return len(self.item)

    @property
    def positive(self) -> int | None:
        """Code of the positive class of a binary set: the last class (1, Yes, 2)."""
        return self.n_classes - 1 if self.n_classes == 2 else None

    def subset_items(self, keep: np.ndarray) -> Categorical:
        """The dataset restricted to the items where ``keep`` (bool per item) is true, recoded."""
        keep = np.asarray(keep, dtype=bool)
        new_code = np.cumsum(keep) - 1
        mask = keep[self.item]
        workers_used, worker = np.unique(self.worker[mask], return_inverse=True)
        return Categorical(self.name, new_code[self.item[mask]], worker.astype(np.int64),
                           self.label[mask], [i for i, k in zip(self.item_ids, keep) if k],
                           [self.worker_ids[w] for w in workers_used], self.classes, self.truth[keep])


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return header, [row for row in reader if row]


def load_categorical(name: str) -> Categorical:
    folder = datasets_dir() / name
    meta = read_meta(name)
    classes = [str(c) for c in meta["classes"]]
    class_code = {c: i for i, c in enumerate(classes)}
    header, rows = _read_csv(folder / "answers.csv")
    ci, cw, cl = header.index("item"), header.index("worker"), header.index("label")
    items = [r[ci] for r in rows]
    item_ids = sorted(set(items), key=lambda s: (len(s), s) if s.isdigit() else (10**9, s))
    item_code = {v: i for i, v in enumerate(item_ids)}
    workers = [r[cw] for r in rows]
    worker_ids = sorted(set(workers))
    worker_code = {v: i for i, v in enumerate(worker_ids)}
    item = np.fromiter((item_code[v] for v in items), dtype=np.int64, count=len(rows))
    worker = np.fromiter((worker_code[v] for v in workers), dtype=np.int64, count=len(rows))
    label = np.fromiter((class_code[r[cl]] for r in rows), dtype=np.int64, count=len(rows))
    truth = np.full(len(item_ids), -1, dtype=np.int64)
    t_header, t_rows = _read_csv(folder / "truth.csv")
    ti, tl = t_header.index("item"), t_header.index("label")
    for r in t_rows:
        code = item_code.get(r[ti])
        if code is not None and r[tl] in class_code:
            truth[code] = class_code[r[tl]]
    return Categorical(name, item, worker, label, item_ids, worker_ids, classes, truth)


def machine_description() -> str:
    """One line: CPU model, cores usable, memory, Python and numpy versions."""
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f", {int(line.split()[1]) / 2**20:.0f} GiB RAM"
                break
    except OSError:
        pass
    return (f"{cpu}, {cores} cores{memory}, Linux {platform.release()}, "
            f"Python {platform.python_version()}, numpy {np.__version__}")


if __name__ == "__main__":
    require_datasets()
    for n in list_datasets():
        d = load_categorical(n)
        print(n, d.n_items, d.n_workers, d.n_answers, d.n_classes, int((d.truth >= 0).sum()), file=sys.stdout)
