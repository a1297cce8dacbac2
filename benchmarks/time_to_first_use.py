"""Time to first use of the models on a fresh text project (issue 14, benchmark 4).

A fresh SQLite project of N text items (zheng_product's product texts, cycled and numbered so
that no two are equal and the embedding cache cannot help; synthetic texts when the datasets
are absent) is imported with ``services.imports.import_file``; then, with active learning on
(``uncertainty_diversity``), the model worker's own pass (``services.models.process_project``,
its default 20 s embedding budget per pass) runs until:

1. **cold start**: the first diverse batch is in the queue priorities (k-center over the
   embedded sample; a fresh project has no labels, so no model yet);
2. **first model-ranked batch**: 50 items of the embedded sample get a reviewer's label (the
   script's stand-in for the first human work, not timed), and the next passes train the first
   model on them, predict the embedded items and write uncertainty + diversity priorities.

Each is timed from the end of the import. The rest of the project embeds in later passes (in
the background on a server): that time is reported as the measured rate, not waited for.

    python benchmarks/time_to_first_use.py --items 100000
    python benchmarks/time_to_first_use.py --quick      # 2,000 items
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _datasets import datasets_dir

SCHEMA = {"questions": [{"name": "match", "kind": "choice", "labels": ["yes", "no"]}]}


def texts(n: int) -> list[str]:
    base = datasets_dir() / "zheng_product" / "texts.csv"
    if base.exists():
        with base.open(newline="", encoding="utf-8") as f:
            pool = [row["text"] for row in csv.DictReader(f)]
    else:
        words = ["red", "blue", "running", "shoe", "laptop", "case", "cable", "phone", "charger", "steel",
                 "bottle", "desk", "lamp"]
        pool = [" ".join(words[(i * k) % len(words)] for k in range(1, 9)) for i in range(1000)]
    return [f"{pool[i % len(pool)]} #{i}" for i in range(n)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true", help="2,000 items")
    ap.add_argument("--labels", type=int, default=50, help="labels given after the cold start")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    n = 2000 if args.quick else args.items

    from goldlabel.config import Settings
    from goldlabel.services import models as model_service
    from goldlabel.services import projects as project_service
    from goldlabel.services import review as review_service
    from goldlabel.services import users as user_service
    from goldlabel.services.access import Actor
    from goldlabel.services.context import Context
    from goldlabel.services.imports import import_file
    from goldlabel.storage import models as model_store
    from goldlabel.storage.engine import read_tx
    from goldlabel.storage.migrate import upgrade_database

    work = Path(tempfile.mkdtemp(prefix="gl-ttfu-"))
    ctx = Context.from_settings(Settings(database_url=f"sqlite:///{work / 'bench.db'}", model_interval_s=0))
    upgrade_database(ctx.engine)
    row = user_service.create_user(ctx, None, "bench-manager", "manager", "amber lantern quietly 41")
    manager = Actor(row["id"], row["username"], row["role"])
    project = project_service.create_project(ctx, manager, "ttfu", SCHEMA, overlap_min=1, overlap_max=3)
    pid = project["id"]
    items_file = work / "items.jsonl"
    with items_file.open("w", encoding="utf-8") as f:
        for i, text in enumerate(texts(n)):
            f.write(json.dumps({"external_id": f"t{i}", "data": {"text": text}}) + "\n")
    t0 = time.perf_counter()
    created = import_file(ctx, None, pid, str(items_file)).created
    import_s = time.perf_counter() - t0
    model_service.update_settings(ctx, manager, pid, {"active_learning": "uncertainty_diversity"})

    out: dict = {"items": created, "import_s": round(import_s, 1), "load_start": os.getloadavg()[0]}
    start = time.perf_counter()
    passes = 0
    while True:  # 1. the cold start
        summary = model_service.process_project(ctx, pid)
        passes += 1
        if summary.get("error"):
            sys.exit(f"the model pass failed: {summary['error']}")
        if summary.get("prioritized"):
            break
    out["cold_start_s"] = round(time.perf_counter() - start, 1)
    out["cold_start_passes"] = passes
    with read_tx(ctx.engine) as conn:
        out["embedded_at_cold_start"] = model_store.count_embedded(conn, pid)
        first_ids, _vectors = next(iter(model_store.iter_vectors(conn, pid, args.labels)))
    ids = [int(i) for i in first_ids]
    # 2. the first human labels (not timed), then the first model-ranked batch
    paused = time.perf_counter()
    for k, item_id in enumerate(ids):
        review_service.review_item(ctx, manager, pid, item_id, "fix", {"match": "yes" if k % 3 else "no"})
    resumed = time.perf_counter()
    while True:
        summary = model_service.process_project(ctx, pid)
        passes += 1
        if summary.get("error"):
            sys.exit(f"the model pass failed: {summary['error']}")
        with read_tx(ctx.engine) as conn:
            ready = model_store.fetch_current_version(conn, pid) is not None
        if ready and summary.get("prioritized"):
            break
    done = time.perf_counter()
    out["first_model_ranked_s"] = round(done - start - (resumed - paused), 1)
    out["labeling_s_excluded"] = round(resumed - paused, 1)
    with read_tx(ctx.engine) as conn:
        out["embedded_at_first_model"] = model_store.count_embedded(conn, pid)
    out["embed_rate_per_s"] = round(out["embedded_at_first_model"] / max(out["first_model_ranked_s"], 1e-9), 1)
    out["load_end"] = os.getloadavg()[0]
    ctx.close()
    print(json.dumps(out))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
