"""CPU time of a gold submit against a normal one, in process (issue 17, item 2).

The services called directly on one database (no HTTP, no server): one project of gold and
normal items served at random (gold rate 0.5), answered by ``--annotators`` annotators in turn,
lease -> submit, and the CPU time of this thread (``time.thread_time``) and the wall time
(``time.perf_counter``) of every submit recorded by the kind of item it answered. The gold
scorer is running (told to wait an hour), as in a server: the submit only queues the gold answer.
The blocking path (services/queue/submit.py ``submit_answer``) is the server's path on SQLite; on
PostgreSQL it is the merged two-statement submit, as on the server.

Gold and normal submits alternate at random in one loop, so load on the machine falls on both
alike; the table gives medians and trimmed means of each, their ratio, and the load average.

    .venv/bin/python benchmarks/gold_submit_cpu.py --backend sqlite --items 600
    .venv/bin/python benchmarks/gold_submit_cpu.py --backend postgres --items 600 --overlap 3 --annotators 3
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import sqlalchemy as sa

PG_ADMIN = os.environ.get("GOLDLABEL_TEST_POSTGRES_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SCHEMA = {"questions": [{"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"]}]}
POS = {"sentiment": "positive"}


def _trimmed_mean(x: np.ndarray, cut: float = 0.1) -> float:
    x = np.sort(x)
    k = int(len(x) * cut)
    return float(x[k:len(x) - k].mean())


def run(args: argparse.Namespace) -> dict:
    from goldlabel.config import Settings
    from goldlabel.services import import_rows
    from goldlabel.services import projects as project_service
    from goldlabel.services import users as user_service
    from goldlabel.services.access import Actor
    from goldlabel.services.context import Context
    from goldlabel.services.gold import GoldScorer
    from goldlabel.services.item_refs import decode_item
    from goldlabel.services.queue import lease as lease_service
    from goldlabel.services.queue import submit as submit_service
    from goldlabel.storage.migrate import upgrade_database
    from goldlabel.storage.tables import items

    pg_name = None
    tmp = tempfile.TemporaryDirectory(prefix="gold-cpu-")
    if args.backend == "sqlite":
        url = f"sqlite:///{Path(tmp.name) / 'gold.db'}"
    else:
        pg_name = f"goldlabel_goldcpu_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{pg_name}"'))
        admin.dispose()
        url = sa.make_url(PG_ADMIN).set(database=pg_name).render_as_string(hide_password=False)
    ctx = Context.from_settings(Settings(database_url=url, secret_key="gold-cpu-benchmark-secret"))
    scorer = None
    try:
        upgrade_database(ctx.engine)
        row = user_service.create_user(ctx, None, "manager", "manager", None)
        manager = Actor(row["id"], row["username"], row["role"])
        project = project_service.create_project(ctx, manager, "gold cpu", SCHEMA, overlap_min=args.overlap,
                                                 overlap_max=args.overlap, settings={"gold_rate": 0.5})
        pid = project["id"]
        annotators = []
        for i in range(args.annotators):
            user = user_service.create_user(ctx, None, f"ann{i}", "annotator", None)
            project_service.set_member(ctx, manager, pid, user["id"], "annotator")
            annotators.append(Actor(user["id"], user["username"], "annotator"))
        rows = [{"external_id": f"g{i}", "data": {"text": f"item g{i}"}, "gold": POS} for i in range(args.items)]
        rows += [{"external_id": f"n{i}", "data": {"text": f"item n{i}"}} for i in range(args.items)]
        import_rows.ingest_rows(ctx, manager, pid, enumerate(rows, start=1))
        with ctx.engine.connect() as conn:
            gold_ids = set(conn.scalars(sa.select(items.c.id).where(items.c.project_id == pid, items.c.is_gold)))
        scorer = GoldScorer(ctx, sweep_s=3600, delay_s=(3600, 3600))
        scorer.start()
        cpu: dict[bool, list[float]] = {True: [], False: []}
        wall: dict[bool, list[float]] = {True: [], False: []}
        n = 0
        done = set()
        while len(done) < len(annotators) and n < args.max_submits:
            for actor in annotators:
                if actor.id in done:
                    continue
                lease = lease_service.lease_next(ctx, actor, pid)
                if lease is None:
                    done.add(actor.id)
                    continue
                c0, w0 = time.thread_time(), time.perf_counter()
                result = submit_service.submit_answer(ctx, actor, pid, lease["token"], POS, 1000)
                c1, w1 = time.thread_time(), time.perf_counter()
                n += 1
                if n <= args.warm_up:
                    continue
                is_gold = decode_item(ctx, pid, actor.id, result["answer"]["item_id"]) in gold_ids
                cpu[is_gold].append((c1 - c0) * 1000)
                wall[is_gold].append((w1 - w0) * 1000)
        out = {"backend": args.backend, "overlap": args.overlap, "annotators": args.annotators,
               "load": os.getloadavg()}
        for kind, is_gold in (("gold", True), ("normal", False)):
            c, w = np.array(cpu[is_gold]), np.array(wall[is_gold])
            out[kind] = {"n": len(c), "cpu_median": float(np.median(c)), "cpu_trimmed": _trimmed_mean(c),
                         "wall_median": float(np.median(w)), "wall_trimmed": _trimmed_mean(w)}
        return out
    finally:
        if scorer is not None:
            scorer.stop(drain=False)
        ctx.close()
        if pg_name:
            admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
            admin.dispose()
        tmp.cleanup()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--items", type=int, default=600, help="gold items, and as many normal ones")
    p.add_argument("--overlap", type=int, default=1)
    p.add_argument("--annotators", type=int, default=1)
    p.add_argument("--warm-up", type=int, default=20)
    p.add_argument("--max-submits", type=int, default=100_000)
    args = p.parse_args(argv)
    r = run(args)
    g, m = r["gold"], r["normal"]
    print(f"Gold vs normal submit, in process: {r['backend']}, overlap {r['overlap']}, "
          f"{r['annotators']} annotator(s); load average {r['load'][0]:.2f} {r['load'][1]:.2f} {r['load'][2]:.2f}")
    print()
    print("| kind | submits | CPU median ms | CPU trimmed mean ms | wall median ms | wall trimmed mean ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind in ("gold", "normal"):
        x = r[kind]
        print(f"| {kind} | {x['n']} | {x['cpu_median']:.3f} | {x['cpu_trimmed']:.3f} | {x['wall_median']:.3f} | "
              f"{x['wall_trimmed']:.3f} |")
    print(f"| gold / normal | | {g['cpu_median'] / m['cpu_median']:.3f} | {g['cpu_trimmed'] / m['cpu_trimmed']:.3f} | "
          f"{g['wall_median'] / m['wall_median']:.3f} | {g['wall_trimmed'] / m['wall_trimmed']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
