"""The item browser's text search (``?q=``) with and without the text index, SQLite and PostgreSQL.

Workload: N items (``{"external_id": "it00000042", "data": {"text": "Review 42: <24 words>"}}``,
every 100th text with the word "espresso"), imported into one project through
``services.imports.import_file``. The import is timed twice: into a database at revision 0016
(no text index) and into one at head (which has the index, filled after imports: SQLite's FTS5
trigram table, PostgreSQL's item_text with a pg_trgm GIN index), each a fresh database, so
"import" shows what the index costs a write (it should cost nothing). "index catch-up" is
``services.items.index_text`` on the head database after the import (what the server's
background indexer does in its batches). The searches then run there, each as the browser's first page
(50 items, ``storage.items.list_items``): "scan" is the search without the index (what a
database without it does, and what every search did before), "index" with it, on the same
database in the same run; both must return the same items. The median of ``--repeat`` runs.
"load" is the 1-minute load average when the backend's searches ended.

Usage::

    python benchmarks/item_search.py --items 100000 --backend sqlite,postgres
    python benchmarks/item_search.py --quick          # 2,000 items, SQLite (smoke test)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from import_export import PG_ADMIN, WORDS, machine_description, make_database

SCHEMA = {"questions": [{"name": "sentiment", "kind": "choice", "labels": ["positive", "negative", "neutral"]}]}


def write_items(path: Path, n: int) -> None:
    with path.open("wb", buffering=1 << 20) as out:
        for i in range(n):
            words = " ".join(WORDS[(i + k * 7) % len(WORDS)] for k in range(24))
            extra = " espresso" if i % 100 == 7 else ""
            out.write(orjson.dumps({"external_id": f"it{i:08d}", "data": {"text": f"Review {i}: {words}{extra}"}}))
            out.write(b"\n")


def searches(n: int) -> list[tuple[str, str]]:
    last = n - 3
    return [
        ("no match", "zqxjv"),
        ("one item, last (text)", f"Review {last}:"),
        ("one item (external id)", f"it{n // 2:08d}"),
        ("1% of items", "ESPRESSO"),
        ("every item", "friendly"),
        ("2 characters (no index)", "zq"),
    ]


def load_project(db: str, revision: str, file: Path) -> tuple[object, int, float]:
    from goldlabel.config import Settings
    from goldlabel.services import projects as project_service
    from goldlabel.services import users as user_service
    from goldlabel.services.access import Actor
    from goldlabel.services.context import Context
    from goldlabel.services.imports import import_file
    from goldlabel.storage.migrate import upgrade_database

    ctx = Context.from_settings(Settings(database_url=db))
    upgrade_database(ctx.engine, revision)
    row = user_service.create_user(ctx, None, f"bench-{uuid.uuid4().hex[:6]}", "manager", "amber lantern quietly 41")
    manager = Actor(row["id"], row["username"], row["role"])
    project = project_service.create_project(ctx, manager, "bench", SCHEMA)
    t0 = time.perf_counter()
    import_file(ctx, None, project["id"], str(file))
    return ctx, project["id"], time.perf_counter() - t0


def time_search(ctx, project_id: int, term: str, indexed: bool, repeat: int) -> tuple[float, list[int]]:
    from goldlabel.storage import items as item_store
    from goldlabel.storage.engine import read_tx

    times, ids = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        with read_tx(ctx.engine) as conn:
            rows = item_store.list_items(conn, project_id, 0, 50, q=term, text_index=indexed)
        times.append(time.perf_counter() - t0)
        ids = [r["id"] for r in rows]
    return statistics.median(times), ids


def bench(backend: str, n: int, file: Path, workdir: Path, repeat: int) -> list[tuple]:
    import sqlalchemy as sa

    from goldlabel.services.items import index_text
    from goldlabel.storage.engine import write_tx
    from goldlabel.storage.items import has_text_index

    rows = []
    url, drop = make_database(backend, workdir)
    try:
        ctx, _pid, seconds = load_project(url, "0016", file)
        ctx.close()
    finally:
        drop()
    rows.append((backend, "import (revision 0016, no index)", f"{n / seconds:,.0f} items/s", "", ""))
    url, drop = make_database(backend, workdir)
    try:
        ctx, pid, seconds = load_project(url, "head", file)
        rows.append((backend, "import (head, text index filled afterwards)", f"{n / seconds:,.0f} items/s", "", ""))
        with write_tx(ctx.engine) as conn:
            assert has_text_index(conn), "the head database has no text index"
        # Right after the import nothing is indexed: a search scans the tail (the scan's cost).
        scan, scan_ids = time_search(ctx, pid, "zqxjv", False, 1)
        tail, tail_ids = time_search(ctx, pid, "zqxjv", True, 1)
        assert scan_ids == tail_ids
        rows.append((backend, "search right after the import, nothing indexed yet: no match",
                     f"{scan * 1000:,.1f} ms", f"{tail * 1000:,.1f} ms", f"{scan / tail:,.1f}x"))
        t0 = time.perf_counter()
        indexed = index_text(ctx)
        seconds = time.perf_counter() - t0
        assert indexed == n, (indexed, n)
        rows.append((backend, "index catch-up after the import (index_text)", f"{n / seconds:,.0f} items/s",
                     f"{seconds:,.1f} s", ""))
        if backend != "sqlite":
            with write_tx(ctx.engine) as conn:
                conn.execute(sa.text("ANALYZE items"))
                conn.execute(sa.text("ANALYZE item_text"))
        for label, term in searches(n):
            scan, scan_ids = time_search(ctx, pid, term, False, repeat)
            index, index_ids = time_search(ctx, pid, term, True, repeat)
            if scan_ids != index_ids:
                raise SystemExit(f"{backend} {term!r}: the index found {len(index_ids)} items, the scan "
                                 f"{len(scan_ids)}")
            rows.append((backend, f"search: {label} ({len(scan_ids)} on the page)",
                         f"{scan * 1000:,.1f} ms", f"{index * 1000:,.1f} ms", f"{scan / index:,.1f}x"))
        rows.append((backend, "load", f"{os.getloadavg()[0]:.1f}", "", ""))
        ctx.close()
    finally:
        drop()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--backend", default="sqlite", help="sqlite, postgres or sqlite,postgres")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="2,000 items, 3 repeats")
    args = ap.parse_args()
    n, repeat = (2000, 3) if args.quick else (args.items, args.repeat)
    print(f"Machine: {machine_description()}; PostgreSQL at {PG_ADMIN.split('@')[-1]} if used")
    print(f"{n:,} items in one project; first page of 50; median of {repeat} runs\n")
    print("| db | what | scan (before) / rate | index (after) | speed-up |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        file = workdir / "items.jsonl"
        write_items(file, n)
        for backend in args.backend.split(","):
            for row in bench(backend.strip(), n, file, workdir, repeat):
                print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
