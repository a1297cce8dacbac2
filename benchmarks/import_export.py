"""Import and export throughput and peak memory (issue 2 targets), SQLite and PostgreSQL.

Workload: N items generated as JSONL (``{"external_id", "data": {"text"}, "meta"}``, ~230 bytes
a line). Phases, each in its own fresh subprocess so its peak RSS (``VmHWM``) is that of
the phase alone, interpreter and imports included:

1. import N items into an empty project (``services.imports.import_file``, all-or-nothing,
   one transaction);
2. import N more (new external ids) into the same project, which now holds N items;
3. seed 3 answers + 1 consensus row for each of the first N items (direct SQL, not timed);
4. export the project (2N items, half of them with answers) as JSONL, CSV and Parquet
   (``services.exports.export_project``) to a file.

The rate is items / seconds of the service call (start-up excluded; it is shown apart).
"CPU s" is the phase process's own CPU time (on SQLite the database's work is in it); on
PostgreSQL "server CPU s" adds the server processes serving the phase (same host, from /proc),
which take turns with the client. "load" is the 1-minute load average at the end of the phase.
Targets: import >= 40,000 items/s with peak RSS < 300 MB at 1M items, the same rate into an
empty and a 1M-item project; export >= 50,000 items/s, RSS < 300 MB.

Usage::

    python benchmarks/import_export.py --items 200000
    python benchmarks/import_export.py --items 1000000 --backend sqlite,postgres
    python benchmarks/import_export.py --quick          # 20,000 items (smoke test)
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
import uuid
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("GOLDLABEL_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SCHEMA = {"questions": [{"name": "sentiment", "kind": "choice", "labels": ["positive", "negative", "neutral"]}]}
WORDS = [
    "the", "service", "was", "quick", "and", "the", "staff", "friendly", "but", "the", "room", "was",
    "small", "and", "the", "wifi", "kept", "dropping", "overall", "a", "fair", "price", "for", "the",
    "location", "and", "i", "would", "stay", "again",
]
LABEL_STUDIO = [
    ("Label Studio 1.23 import (SQLite, 100k)", "7,000-8,500 tasks/s", "650-790"),
    ("Label Studio 1.23 export JSON (100k)", "~1,100 tasks/s (89 s)", "811"),
]


def machine_description() -> str:
    import platform

    cpu = platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = ""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            mem = f", {int(line.split()[1]) / 2**20:.0f} GiB RAM"
    return f"{cpu}, {len(os.sched_getaffinity(0))} cores{mem}, Python {platform.python_version()}"


def write_items(path: Path, n: int, prefix: str) -> None:
    with path.open("wb", buffering=1 << 20) as out:
        for i in range(n):
            words = " ".join(WORDS[(i + k * 7) % len(WORDS)] for k in range(24))
            out.write(orjson.dumps({
                "external_id": f"{prefix}{i:08d}",
                "data": {"text": f"Review {i}: {words}"},
                "meta": {"source": "bench", "batch": i // 10000},
            }))
            out.write(b"\n")


# ------------------------------------------------------------------ child phases


def run_phase(argv: list[str]) -> None:
    """Runs in the subprocess: one service call, then one JSON line with time and peak RSS."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--db")
    ap.add_argument("--project", type=int)
    ap.add_argument("--op")
    ap.add_argument("--file")
    ap.add_argument("--fmt", default="jsonl")
    ap.add_argument("--profile", default=None)
    args = ap.parse_args(argv)
    from goldlabel.config import Settings
    from goldlabel.services.context import Context
    from goldlabel.services.exports import export_project
    from goldlabel.services.imports import import_file

    ctx = Context.from_settings(Settings(database_url=args.db))
    rss_before = _peak_rss_mb()

    def work() -> int:
        if args.op == "import":
            return import_file(ctx, None, args.project, args.file).created
        with open(args.file, "wb", buffering=1 << 20) as out:
            return export_project(ctx, None, args.project, args.fmt, out)

    server0 = _server_cpu_seconds(args.db)
    cpu0 = _cpu_seconds()
    t0 = time.perf_counter()
    if args.profile:
        import cProfile

        prof = cProfile.Profile()
        n = prof.runcall(work)
        prof.dump_stats(args.profile)
    else:
        n = work()
    seconds = time.perf_counter() - t0
    cpu = _cpu_seconds() - cpu0
    server = _server_cpu_seconds(args.db)
    ctx.close()
    rss = _peak_rss_mb()
    server_cpu = sum(t - server0.get(pid, 0.0) for pid, t in server.items()) if server is not None else None
    print(json.dumps({"n": n, "seconds": seconds, "cpu": cpu, "server_cpu": server_cpu, "rss_mb": rss,
                      "rss_start_mb": rss_before, "load": os.getloadavg()[0]}))


def _peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM). Not ``ru_maxrss``: Linux carries the forked
    parent's high-water mark across exec into it, so every phase reported at least the RSS the
    parent had when it started the phase (263 MB for each export after seeding 3M answers)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _server_cpu_seconds(db: str) -> dict[int, float] | None:
    """PostgreSQL on this host: CPU seconds so far of each server process connected to the
    benchmark's database (its name is unique to this run, so they are this phase's), from
    /proc. None for SQLite, whose work is in the client's own CPU time."""
    if not db.startswith("postgresql"):
        return None
    import sqlalchemy as sa

    engine = sa.create_engine(db, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        pids = conn.execute(sa.text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )).scalars().all()
    engine.dispose()
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # not on this host, or gone
        out[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return out


def phase(db: str, project: int, op: str, file: Path, fmt: str = "jsonl", profile: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--phase", "--db", db, "--project", str(project), "--op", op,
           "--file", str(file), "--fmt", fmt]
    if profile:
        cmd += ["--profile", profile]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(f"phase {op} failed:\n{res.stderr[-4000:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["wall"] = wall
    return out


# ------------------------------------------------------------------ setup


def make_database(backend: str, workdir: Path) -> tuple[str, callable]:
    import sqlalchemy as sa

    if backend == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{workdir / 'bench.db'}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{workdir / 'bench.db'}", lambda: None
    name = f"goldlabel_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


def setup_project(db: str) -> tuple[int, list[int]]:
    from goldlabel.config import Settings
    from goldlabel.services import projects as project_service
    from goldlabel.services import users as user_service
    from goldlabel.services.access import Actor
    from goldlabel.services.context import Context
    from goldlabel.storage.migrate import upgrade_database

    ctx = Context.from_settings(Settings(database_url=db))
    upgrade_database(ctx.engine)
    suffix = uuid.uuid4().hex[:6]
    row = user_service.create_user(ctx, None, f"bench-manager-{suffix}", "manager", "amber lantern quietly 41")
    manager = Actor(row["id"], row["username"], row["role"])
    annotators = [
        user_service.create_user(ctx, None, f"bench-ann{k}-{suffix}", "annotator", "amber lantern quietly 41")["id"]
        for k in range(3)
    ]
    project = project_service.create_project(
        ctx, manager, "bench", SCHEMA, overlap_min=3, overlap_max=3
    )
    ctx.close()
    return project["id"], annotators


def seed_answers(db: str, project: int, annotators: list[int], n: int) -> float:
    """3 answers and a consensus row for each of the first n items, straight into the tables."""
    import sqlalchemy as sa

    from goldlabel.config import Settings
    from goldlabel.storage.engine import create_engine, now_ms
    from goldlabel.storage.tables import answers, consensus, items

    engine = create_engine(Settings(database_url=db))
    labels = ["positive", "negative", "neutral"]
    t0 = time.perf_counter()
    now = now_ms()
    with engine.begin() as conn:
        ids = conn.execute(
            sa.select(items.c.id).where(items.c.project_id == project).order_by(items.c.id).limit(n)
        ).scalars().all()
        for start in range(0, len(ids), 20000):
            chunk = ids[start:start + 20000]
            conn.execute(answers.insert(), [
                {"project_id": project, "item_id": i, "annotator_id": a,
                 "value": {"sentiment": labels[(i + k) % 3 // 2]},
                 "status": "submitted", "duration_ms": 4000, "created_at": now, "updated_at": now}
                for i in chunk for k, a in enumerate(annotators)
            ])
            conn.execute(consensus.insert(), [
                {"item_id": i, "question": "sentiment", "project_id": project, "value": labels[i % 3 // 2],
                 "confidence": 0.67, "method": "bench", "status": "decided", "contributions": None, "updated_at": now}
                for i in chunk
            ])
            conn.execute(items.update().where(items.c.id.in_(chunk)).values(status="final", answer_count=3))
    engine.dispose()
    return time.perf_counter() - t0


# ------------------------------------------------------------------ main


def bench(backend: str, n: int, workdir: Path, profile: bool) -> list[tuple]:
    db, drop = make_database(backend, workdir)
    rows: list[tuple] = []
    try:
        project, annotators = setup_project(db)
        first, second = workdir / "first.jsonl", workdir / "second.jsonl"
        write_items(first, n, "a")
        write_items(second, n, "b")
        size_mb = first.stat().st_size / 2**20
        r = phase(db, project, "import", first, profile=str(workdir / "import.prof") if profile else None)
        rows.append((backend, f"import JSONL into empty project ({size_mb:.0f} MB)", r, 40_000))
        r = phase(db, project, "import", second)
        rows.append((backend, f"import JSONL into project holding {n:,}", r, 40_000))
        seeded = seed_answers(db, project, annotators, n)
        print(f"  [{backend}] seeded {3 * n:,} answers in {seeded:.0f} s", file=sys.stderr)
        for fmt in ("jsonl", "csv", "parquet", "hf"):
            out = workdir / f"export.{fmt}"
            prof = str(workdir / f"export-{fmt}.prof") if profile else None
            r = phase(db, project, "export", out, fmt, profile=prof)
            r["extra"] = f"{out.stat().st_size / 2**20:.0f} MB"
            rows.append((backend, f"export {fmt} ({2 * n:,} items, half with 3 answers)", r, 50_000))
            out.unlink()
    finally:
        drop()
    return rows


def print_table(rows: list[tuple], n: int) -> None:
    print(f"\nImport / export, N = {n:,} ({machine_description()})\n")
    print("| backend | phase | items | seconds | items/s | CPU s | items/CPU-s | server CPU s | peak RSS MB "
          "| load | target (wall rate) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for backend, name, r, target in rows:
        rate = r["n"] / r["seconds"] if r["seconds"] else 0
        ok = "ok" if rate >= target and r["rss_mb"] < 300 else "MISSED"
        extra = f" {r['extra']}" if r.get("extra") else ""
        cpu_rate = r["n"] / r["cpu"] if r["cpu"] else 0
        server = "" if r.get("server_cpu") is None else f"{r['server_cpu']:.1f}"
        print(f"| {backend} | {name}{extra} | {r['n']:,} | {r['seconds']:.1f} | {rate:,.0f} | {r['cpu']:.1f} | "
              f"{cpu_rate:,.0f} | {server} | {r['rss_mb']:.0f} | {r.get('load', 0):.1f} | "
              f">= {target:,}/s, < 300 MB: {ok} |")
    for name, rate, rss in LABEL_STUDIO:
        print(f"| reference | {name} | | | {rate} | | | | {rss} | | |")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} "
          "(the machine is shared: compare items/CPU-s when it is high)")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--phase":
        run_phase(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=200_000)
    ap.add_argument("--backend", default="sqlite", help="sqlite, postgres or sqlite,postgres")
    ap.add_argument("--quick", action="store_true", help="20,000 items")
    ap.add_argument("--profile", action="store_true", help="cProfile the first import and the exports")
    ap.add_argument("--workdir", default=None, help="keep files here (default: a temporary directory)")
    args = ap.parse_args()
    n = 20_000 if args.quick else args.items
    rows: list[tuple] = []
    with tempfile.TemporaryDirectory(prefix="gl-bench-") as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for backend in args.backend.split(","):
            try:
                done = bench(backend.strip(), n, workdir, args.profile)
            except Exception as exc:  # noqa: BLE001 - report and go on with the next backend
                print(f"  [{backend}] failed: {type(exc).__name__}: {str(exc).splitlines()[0]}", file=sys.stderr)
                continue
            print_table(done, n)  # as soon as a backend is done: a later failure loses nothing
            rows += done
    if len(rows) > 0 and "," in args.backend:
        print_table(rows, n)


if __name__ == "__main__":
    main()
