"""Training-format exports, media import and media serving (issue 16 targets), on SQLite.

1. Exports of N items in the training formats, each in its own subprocess (peak RSS = VmHWM of
   that phase alone): a boxes project (1-3 relative boxes per item, image size in the data) to
   COCO, YOLO, VOC and Hugging Face; a spans project (2 spans per item) to CoNLL and spaCy. The
   JSONL export of the same boxes project runs in the same run as the in-run reference.
2. Media import: K small PNG files (about 1.5 KB) from a local folder into an empty project,
   ``goldlabel import PROJECT DIR`` through its service (hash, store, one item per file).
3. Media serving: a 200 KB image fetched R times over one keep-alive connection from a real
   ``goldlabel serve`` process on loopback (Bearer token); p50 / p99 of the whole request.

Targets: exports >= 50,000 items/s (JSON-like formats) with peak RSS < 300 MB; media import
>= 500 files/s; serving a 200 KB image < 5 ms p50 on loopback.

Usage::

    python benchmarks/media_formats.py --items 1000000 --files 10000 --write-docs
    python benchmarks/media_formats.py --quick        # 20,000 items, 1,000 files, 200 requests

``--write-docs`` replaces the section "Training formats and media" of docs/benchmarks.md with
this run's table (the load average beside every row).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from import_export import machine_description, make_database, phase

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks.md"
SECTION = "## Training formats and media"
JSON_LIKE = ("jsonl", "coco", "conll", "hf")  # one record per item into a few files: the 50k/s goal's formats
BOXES = {"questions": [{"name": "objects", "kind": "boxes", "labels": ["car", "person", "bike"], "source": "image"}]}
SPANS = {"questions": [{"name": "entities", "kind": "spans", "labels": ["PER", "ORG"], "source": "text"}]}


def run_media_phase(argv: list[str]) -> None:
    """In the subprocess: import a media folder, print time and peak RSS as JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--db")
    ap.add_argument("--project", type=int)
    ap.add_argument("--dir")
    ap.add_argument("--media-dir")
    args = ap.parse_args(argv)
    from import_export import _cpu_seconds, _peak_rss_mb

    from goldlabel.config import Settings
    from goldlabel.services.context import Context
    from goldlabel.services.media import import_media

    ctx = Context.from_settings(Settings(database_url=args.db, media_dir=args.media_dir))
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    report = import_media(ctx, None, args.project, args.dir)
    seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    ctx.close()
    print(json.dumps({"n": report.created, "seconds": seconds, "cpu": cpu, "rss_mb": _peak_rss_mb(),
                      "load": os.getloadavg()[0]}))


def make_project(db: str, schema: dict) -> int:
    from goldlabel.config import Settings
    from goldlabel.services import projects as project_service
    from goldlabel.services.context import Context
    from goldlabel.storage.migrate import upgrade_database

    ctx = Context.from_settings(Settings(database_url=db))
    upgrade_database(ctx.engine)
    project = project_service.create_project(ctx, None, "bench", schema)
    ctx.close()
    return project["id"]


def seed_labeled(db: str, project: int, n: int, kind: str) -> float:
    """n items with a final consensus for the project's one question, straight into the tables."""
    from goldlabel.config import Settings
    from goldlabel.storage.engine import create_engine, now_ms
    from goldlabel.storage.tables import consensus, items

    engine = create_engine(Settings(database_url=db))
    now = now_ms()
    t0 = time.perf_counter()
    with engine.begin() as conn:
        for start in range(0, n, 20000):
            rows, values = [], []
            for i in range(start, min(n, start + 20000)):
                if kind == "boxes":
                    data = {"image": f"https://images.example.org/{i}.jpg", "width": 1280, "height": 720}
                    value = [{"x": 0.1 * k, "y": 0.2, "w": 0.2, "h": 0.3, "label": ["car", "person", "bike"][k]}
                             for k in range(1 + i % 3)]
                    question = "objects"
                else:
                    data = {"text": f"Report {i}: Ada Lovelace met Charles Babbage at the Royal Society in London."}
                    value = [{"start": 11 + len(str(i)), "end": 23 + len(str(i)), "label": "PER"},
                             {"start": 52 + len(str(i)), "end": 66 + len(str(i)), "label": "ORG"}]
                    question = "entities"
                rows.append({"project_id": project, "external_id": f"x{i:08d}", "data": data, "priority": 0,
                             "status": "final", "answer_count": 3, "target_overlap": 3, "overlap_max": 3,
                             "created_at": now, "updated_at": now})
                values.append((question, value))
            ids = conn.execute(items.insert().returning(items.c.id), rows).scalars().all()
            conn.execute(consensus.insert(), [
                {"item_id": item_id, "question": q, "project_id": project, "value": v, "confidence": 0.97,
                 "method": "bench", "status": "decided", "contributions": None, "updated_at": now}
                for item_id, (q, v) in zip(ids, values, strict=True)
            ])
    engine.dispose()
    return time.perf_counter() - t0


def write_pngs(folder: Path, k: int) -> None:
    import io

    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(k):
        buf = io.BytesIO()
        Image.new("RGB", (32, 32), ((i * 37) % 256, (i * 91) % 256, (i * 13) % 256)).save(buf, format="PNG")
        sub = folder / f"batch{i // 1000:03d}"
        sub.mkdir(exist_ok=True)
        (sub / f"img{i:06d}.png").write_bytes(buf.getvalue())


def media_import(db: str, workdir: Path, k: int) -> dict:
    project = make_project(db, BOXES)
    folder = workdir / "pngs"
    write_pngs(folder, k)
    cmd = [sys.executable, __file__, "--media-phase", "--db", db, "--project", str(project), "--dir", str(folder),
           "--media-dir", str(workdir / "media")]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        sys.exit(f"media import failed:\n{res.stderr[-4000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def media_serving(db: str, workdir: Path, requests: int) -> dict:
    import io
    import random

    import httpx
    from PIL import Image

    from goldlabel.config import Settings
    from goldlabel.services import users as user_service
    from goldlabel.services.context import Context
    from goldlabel.services.media import import_media

    project = make_project(db, BOXES)
    folder = workdir / "big"
    folder.mkdir(exist_ok=True)
    rng = random.Random(1)
    noise = bytes(rng.getrandbits(8) for _ in range(256 * 256 * 3))  # noise: PNG cannot shrink it
    buf = io.BytesIO()
    Image.frombytes("RGB", (256, 256), noise).save(buf, format="PNG")
    (folder / "photo.png").write_bytes(buf.getvalue())
    size_kb = len(buf.getvalue()) / 1024
    ctx = Context.from_settings(Settings(database_url=db, media_dir=str(workdir / "media")))
    import_media(ctx, None, project, folder)
    admin = user_service.create_user(ctx, None, "bench-admin", "admin", None)
    token = user_service.create_token(ctx, None, admin["id"])["token"]
    # The timed reads are an annotator's, as the workspace makes them: a manager's or an admin's
    # whole-file read is written to the audit log (one durable write each), an annotator's is not.
    from goldlabel.services import projects as project_service

    annotator = user_service.create_user(ctx, None, "bench-annotator", "annotator", None)
    project_service.set_member(ctx, None, project, annotator["id"], "annotator")
    annotator_token = user_service.create_token(ctx, None, annotator["id"])["token"]
    ctx.close()
    port = _free_port()
    env = {**os.environ, "GOLDLABEL_DATABASE_URL": db, "GOLDLABEL_MEDIA_DIR": str(workdir / "media"),
           "GOLDLABEL_REFIT_INTERVAL_S": "0"}
    server = subprocess.Popen([sys.executable, "-m", "goldlabel.cli", "serve", "--host", "127.0.0.1", "--port",
                               str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
            # The server takes seconds to start on a loaded machine: wait up to a minute.
            deadline = time.monotonic() + 60
            status = None
            while status != 200:
                if time.monotonic() > deadline:
                    sys.exit(f"the server did not answer /api/v1/users/me with 200 in 60 s (last: {status})")
                try:
                    status = client.get("/api/v1/users/me").status_code
                except httpx.TransportError:
                    status = None
                if status != 200:
                    time.sleep(0.2)
            items = client.get(f"/api/v1/projects/{project}/items").json()["items"]
            url = items[0]["data"]["image"]
            client.headers["Authorization"] = f"Bearer {annotator_token}"
            for _ in range(20):
                client.get(url)
            times = []
            for _ in range(requests):
                t0 = time.perf_counter()
                res = client.get(url)
                times.append((time.perf_counter() - t0) * 1000)
                assert res.status_code == 200 and len(res.content) == len(buf.getvalue())
    finally:
        server.terminate()
        server.wait(10)
    times.sort()
    return {"size_kb": size_kb, "p50": statistics.median(times), "p99": times[int(0.99 * (len(times) - 1))],
            "n": requests, "load": os.getloadavg()[0]}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--phase":
        from import_export import run_phase

        run_phase(sys.argv[2:])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--media-phase":
        run_media_phase(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=200_000)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--quick", action="store_true", help="20,000 items, 1,000 files, 200 requests")
    ap.add_argument("--write-docs", action="store_true", help=f"write the tables to {DOCS.relative_to(REPO)}")
    ap.add_argument("--note", default="", help="a paragraph added under the tables (what changed, what ran beside)")
    args = ap.parse_args()
    n, k, r = (20_000, 1_000, 200) if args.quick else (args.items, args.files, args.requests)
    rows = []
    with tempfile.TemporaryDirectory(prefix="gl-media-bench-") as tmp:
        workdir = Path(tmp)
        for kind, formats in (("boxes", ("jsonl", "coco", "yolo", "voc", "hf")), ("spans", ("conll", "spacy"))):
            db, drop = make_database("sqlite", workdir)
            try:
                project = make_project(db, BOXES if kind == "boxes" else SPANS)
                seeded = seed_labeled(db, project, n, kind)
                print(f"  seeded {n:,} {kind} items in {seeded:.0f} s", file=sys.stderr)
                for fmt in formats:
                    out = workdir / f"export-{fmt}"
                    res = phase(db, project, "export", out, fmt)
                    res["extra"] = f"{out.stat().st_size / 2**20:.0f} MB"
                    rows.append((f"export {fmt} ({kind})", res))
                    print(f"  export {fmt}: {res['n'] / res['seconds']:,.0f} items/s, {res['rss_mb']:.0f} MB "
                          f"(load {res['load']:.1f})", file=sys.stderr)
                    out.unlink()
            finally:
                drop()
        db, drop = make_database("sqlite", workdir)
        try:
            imported = media_import(db, workdir, k)
        finally:
            drop()
        db, drop = make_database("sqlite", workdir)
        try:
            served = media_serving(db, workdir, r)
        finally:
            drop()
    lines = ["| phase | items | seconds | items/s | items/CPU-s | peak RSS MB | output | load | goal |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, res in rows:
        fmt = name.split()[1]
        rate = res["n"] / res["seconds"]
        goal = "" if fmt == "jsonl" else (
            ("met" if rate >= 50_000 and res["rss_mb"] < 300 else "not met") if fmt in JSON_LIKE
            else ("RSS met" if res["rss_mb"] < 300 else "RSS not met") + " (one file or Doc per item)")
        lines.append(f"| {name} | {res['n']:,} | {res['seconds']:.1f} | {rate:,.0f} | "
                     f"{res['n'] / max(res['cpu'], 1e-9):,.0f} | {res['rss_mb']:.0f} | {res['extra']} | "
                     f"{res['load']:.1f} | {goal} |")
    lines.append(f"| media import ({k:,} PNG files, ~1.5 KB) | {imported['n']:,} | {imported['seconds']:.1f} | "
                 f"{imported['n'] / imported['seconds']:,.0f} files/s | "
                 f"{imported['n'] / max(imported['cpu'], 1e-9):,.0f} | {imported['rss_mb']:.0f} | | "
                 f"{imported['load']:.1f} | {'met' if imported['n'] / imported['seconds'] >= 500 else 'not met'} |")
    table = "\n".join(lines)
    serving = (f"Media serving: {served['size_kb']:.0f} KB PNG, {served['n']} requests over one keep-alive "
               f"connection: p50 {served['p50']:.2f} ms, p99 {served['p99']:.2f} ms (load {served['load']:.1f}; "
               f"goal p50 < 5 ms: {'met' if served['p50'] < 5 else 'not met'}).")
    print(f"\nTraining formats and media, N = {n:,} items, {k:,} files ({machine_description()})\n")
    print(table)
    print("\n" + serving)
    print(json.dumps({"exports": {name: res for name, res in rows}, "media_import": imported,
                      "media_serving": served}, default=str), file=sys.stderr)
    if args.write_docs:
        write_docs(n, k, r, table, serving, args.note)


def write_docs(n: int, k: int, r: int, table: str, serving: str, note: str) -> None:
    body = (
        f"{SECTION}\n\n"
        f"`benchmarks/media_formats.py` (`python benchmarks/media_formats.py --items {n} --files {k} "
        f"--requests {r} --write-docs`). A boxes project (1-3 relative boxes per item, the image size in the "
        "data) and a spans project (2 spans per item) of N items each, consensus rows seeded straight into the "
        "tables; each export runs in a fresh subprocess (peak RSS = its `VmHWM`, interpreter and imports "
        "included), and the JSONL export of the boxes project in the same run is the reference. Then "
        f"{k:,} PNGs of ~1.5 KB are imported from a local folder (hash, store, one item each), and a ~190 KB "
        f"PNG is fetched {r} times from a real `goldlabel serve` on loopback over one keep-alive connection "
        f"with a Bearer token. Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine_description()}, "
        f"N = {n:,}; the load average of the machine (shared) is beside every row.\n\n"
        "Goals (issue 16): >= 50,000 items/s with peak RSS < 300 MB for the JSON-like formats (COCO, CoNLL, "
        "Hugging Face: a record per item into a few files); YOLO and VOC write a zip member per item and "
        "spaCy builds a `Doc` per item, so they are held to the RSS bound only.\n\n"
        f"{table}\n\n{serving}\n" + (f"\n{note}\n" if note else "")
    )
    text = DOCS.read_text()
    start = text.find(SECTION)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + body
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + body + (text[end:] if end != -1 else "")
    DOCS.write_text(text)
    print(f"wrote {DOCS.relative_to(REPO)}", file=sys.stderr)


if __name__ == "__main__":
    main()
