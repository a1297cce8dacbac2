"""Login throughput under a password-spraying load, with an annotator's latency beside it
(issue 17, item 5).

A real ``goldlabel serve`` process (one uvicorn process, as benchmarks/kill9.py starts it) on a
SQLite file or a fresh PostgreSQL database. Two phases of ``--duration`` seconds each, in one
run against the same server:

1. **quiet**: one annotator with an API token (``Authorization: Bearer``) loops next -> submit
   on one keep-alive connection; every cycle's latency is recorded;
2. **spray**: the same annotator goes on while ``--clients`` attackers, each a thread with its
   own connection in a separate process (so that their client CPU does not slow the annotator's
   client), send wrong passwords as fast as the server answers through the login form (the
   login page's pre-session cookie and CSRF token, as a browser; a session is never reached),
   over ``--usernames`` names (the real accounts of the install and names that do not exist)
   and ``--addresses`` client addresses.

Client addresses: the clients all connect from 127.0.0.1; with ``--addresses`` above 1 each
attempt carries ``X-Forwarded-For: 10.x.y.z``. ``goldlabel serve`` runs uvicorn with its
defaults, which trust that header from 127.0.0.1 (``--forwarded-allow-ips``), so the server
takes it as the client's address, as it would behind a reverse proxy on the same host. The
report counts the distinct addresses the throttle saw (its ``login_throttle`` rows), so a server
that ignored the header shows 1.

Reported: login attempts answered per second and how (401 wrong password, 429 refused by the
throttle: address bucket, account lockout or the bound on concurrent hashing), accounts locked
out, the server's peak RSS in each phase (sampled every 50 ms; ``VmHWM``, which includes the
start-up, beside it), and the annotator's cycles/s and p50 / p99 cycle latency in each phase.

    .venv/bin/python benchmarks/login_spray.py --backend sqlite --duration 20
    .venv/bin/python benchmarks/login_spray.py --backend postgres --duration 20 --clients 16
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the real-server helper
from kill9 import PG_ADMIN, SCHEMA, SECRET, Database
from live_server import LiveServer

WRONG = "not-the-password-0"
PASSWORD = "amber lantern quietly 41"


def seed(db: Database, n_accounts: int, n_items: int) -> dict[str, Any]:
    """A project of ``n_items`` open items, one annotator with a token, ``n_accounts`` accounts
    with passwords (the spray's real targets)."""
    from goldlabel.config import Settings
    from goldlabel.services import import_rows
    from goldlabel.services import projects as project_service
    from goldlabel.services import users as user_service
    from goldlabel.services.access import Actor
    from goldlabel.services.context import Context
    from goldlabel.storage.migrate import upgrade_database

    ctx = Context.from_settings(Settings(database_url=db.url, secret_key=SECRET))
    try:
        upgrade_database(ctx.engine)
        row = user_service.create_user(ctx, None, "spray-manager", "manager", None)
        manager = Actor(row["id"], row["username"], row["role"])
        project = project_service.create_project(ctx, manager, "login spray", SCHEMA, overlap_min=1)
        ann = user_service.create_user(ctx, None, "spray-annotator", "annotator", None)
        project_service.set_member(ctx, manager, project["id"], ann["id"], "annotator")
        token = user_service.create_token(ctx, None, ann["id"])["token"]
        rows = [{"external_id": f"i{i}", "data": {"text": f"item {i}"}} for i in range(n_items)]
        import_rows.ingest_rows(ctx, manager, project["id"], enumerate(rows, start=1))
        accounts = []
        for i in range(n_accounts):
            name = f"staff-{i}"
            user_service.create_user(ctx, None, name, "annotator", PASSWORD)
            accounts.append(name)
        return {"project_id": project["id"], "token": token, "accounts": accounts}
    finally:
        ctx.close()


# ---------------------------------------------------------------------------------------------
# The annotator


class Annotator(threading.Thread):
    def __init__(self, base: str, project_id: int, token: str) -> None:
        super().__init__(name="annotator", daemon=True)
        self.http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        self.pid = project_id
        self.phase: str | None = None
        self.cycles: dict[str, list[float]] = {}
        self.errors: Counter[str] = Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            phase = self.phase
            t0 = time.perf_counter()
            lease = self.http.post(f"/api/v1/projects/{self.pid}/next")
            if lease.status_code != 200:
                self.errors[f"next {lease.status_code}"] += 1
                time.sleep(0.05)
                continue
            res = self.http.post(f"/api/v1/projects/{self.pid}/answers", json={
                "lease_token": lease.json()["token"], "value": {"sentiment": "positive"}, "duration_ms": 1000})
            elapsed = time.perf_counter() - t0
            if res.status_code != 201:
                self.errors[f"submit {res.status_code}"] += 1
                continue
            if phase is not None and phase == self.phase:
                self.cycles.setdefault(phase, []).append(elapsed * 1000)
        self.http.close()


# ---------------------------------------------------------------------------------------------
# The attackers (run as a child process: ``--spray-child``)


def _csrf(page: str) -> str | None:
    marker = 'name="csrf_token" value="'
    if marker not in page:
        return None
    return page.split(marker, 1)[1].split('"', 1)[0]


def spray_child(base: str, clients: int, duration: float, usernames: list[str], addresses: list[str],
                seed_: int) -> dict[str, Any]:
    stop = time.monotonic() + duration
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    lock = threading.Lock()

    def attacker(k: int) -> None:
        rng = random.Random(seed_ * 1000 + k)
        mine: Counter[str] = Counter()
        times: list[float] = []
        with httpx.Client(base_url=base, timeout=60) as http:
            token = None
            while time.monotonic() < stop:
                try:
                    if token is None:
                        token = _csrf(http.get("/login").text)
                        if token is None:
                            mine["no login form"] += 1
                            continue
                    headers = {}
                    if len(addresses) > 1:
                        headers["X-Forwarded-For"] = rng.choice(addresses)
                    t0 = time.perf_counter()
                    res = http.post("/login", headers=headers, data={
                        "username": rng.choice(usernames), "password": WRONG, "csrf_token": token, "next": "/"})
                    times.append((time.perf_counter() - t0) * 1000)
                    mine[str(res.status_code)] += 1
                    token = _csrf(res.text)  # the page served with the answer carries the next token
                except httpx.HTTPError as exc:
                    mine[type(exc).__name__] += 1
                    token = None
        with lock:
            statuses.update(mine)
            latencies.extend(times)

    threads = [threading.Thread(target=attacker, args=(k,), daemon=True) for k in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    lat = np.array(latencies) if latencies else np.array([np.nan])
    return {"statuses": dict(statuses), "attempts": len(latencies), "wall_s": wall,
            "p50_ms": float(np.median(lat)), "p99_ms": float(np.percentile(lat, 99))}


# ---------------------------------------------------------------------------------------------


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler(threading.Thread):
    """The server's resident memory every 50 ms: the largest per phase (``VmHWM`` alone would
    hold the start-up's peak too)."""

    def __init__(self, pid: int) -> None:
        super().__init__(name="rss", daemon=True)
        self.pid = pid
        self.phase: str | None = None
        self.peak: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            phase = self.phase
            if phase is not None:
                rss = _rss_mb(self.pid)
                self.peak[phase] = max(self.peak.get(phase, 0.0), rss)


def _summary(ms: list[float], seconds: float) -> dict[str, float]:
    a = np.array(ms) if ms else np.array([np.nan])
    return {"cycles": len(ms), "cycles_per_s": len(ms) / seconds, "p50_ms": float(np.median(a)),
            "p99_ms": float(np.percentile(a, 99))}


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="login-spray-") as tmp:
        workdir = Path(tmp)
        db = Database(args.backend, workdir, args.pg_admin)
        server = LiveServer(db.url, workdir, secret_key=SECRET, env={"GOLDLABEL_MEDIA_DIR": str(workdir / "media")})
        try:
            seeded = seed(db, args.accounts, args.items)
            server.start().wait_ready(300.0)
            assert server.proc is not None
            pid = server.proc.pid
            rng = random.Random(args.seed)
            unknown = [f"user{rng.randrange(10**6)}" for _ in range(max(0, args.usernames - len(seeded["accounts"])))]
            usernames = [*seeded["accounts"], *unknown][:args.usernames]
            addresses = [f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
                         for _ in range(args.addresses)]
            ann = Annotator(server.base, seeded["project_id"], seeded["token"])
            ann.start()
            rss = RssSampler(pid)
            rss.start()
            time.sleep(args.warm_up)  # imports, caches, the first statements
            rss_start = _rss_mb(pid)
            ann.phase = rss.phase = "quiet"
            time.sleep(args.duration)
            ann.phase = None
            ann.phase = rss.phase = "spray"
            started = time.monotonic()
            child = subprocess.run(
                [sys.executable, __file__, "--spray-child", server.base, str(args.clients), str(args.duration),
                 json.dumps(usernames), json.dumps(addresses), str(args.seed)],
                capture_output=True, text=True, timeout=args.duration + 600, check=False)
            spray_s = time.monotonic() - started
            ann.phase = rss.phase = None
            ann.stop.set()
            ann.join(timeout=60)
            rss.stop.set()
            rss.join(timeout=10)
            lifetime_peak = _peak_rss_mb(pid)
            if child.returncode != 0:
                raise RuntimeError(f"the spray process failed: {child.stderr[-2000:]}")
            spray = json.loads(child.stdout.strip().splitlines()[-1])
            with sa.create_engine(db.url, poolclass=sa.pool.NullPool).connect() as conn:
                seen_addresses = conn.execute(sa.text(
                    "SELECT count(*) FROM login_throttle WHERE key LIKE 'a:%'")).scalar_one()
                locked = conn.execute(sa.text(
                    "SELECT count(*) FROM login_throttle WHERE key LIKE 'u:%' AND locked_until > 0")).scalar_one()
            return {
                "backend": args.backend, "clients": args.clients, "duration_s": args.duration,
                "usernames": len(usernames), "accounts": len(seeded["accounts"]), "addresses": len(addresses),
                "spray": {**spray, "attempts_per_s": spray["attempts"] / spray["wall_s"],
                          "addresses_seen": int(seen_addresses), "accounts_locked": int(locked)},
                "quiet": _summary(ann.cycles.get("quiet", []), args.duration),
                "under_spray": _summary(ann.cycles.get("spray", []), spray_s),
                "annotator_errors": dict(ann.errors),
                "rss_mb": {"start": rss_start, "peak_quiet": rss.peak.get("quiet", float("nan")),
                           "peak_spray": rss.peak.get("spray", float("nan")), "peak_lifetime": lifetime_peak},
                "load": os.getloadavg(),
            }
        finally:
            server.stop()
            db.drop()


_SPRAY_HEAD = ("| attempts | answered/s | 401 | 429 | other | addresses seen | accounts locked | "
               "attempt p50 ms | attempt p99 ms |")


def report(r: dict[str, Any]) -> str:
    s, q, u, m = r["spray"], r["quiet"], r["under_spray"], r["rss_mb"]
    st = s["statuses"]
    other = {k: v for k, v in st.items() if k not in ("401", "429")}
    load = " ".join(f"{x:.2f}" for x in r["load"])
    head = (f"Login spray: {r['backend']}, {r['clients']} attackers, {r['usernames']} usernames "
            f"({r['accounts']} real accounts), {r['addresses']} client addresses, {r['duration_s']:g} s per phase; "
            f"load average {load}")
    spray_row = (f"| {s['attempts']} | {s['attempts_per_s']:.1f} | {st.get('401', 0)} | {st.get('429', 0)} | "
                 f"{sum(other.values())} | {s['addresses_seen']} | {s['accounts_locked']} | {s['p50_ms']:.1f} | "
                 f"{s['p99_ms']:.1f} |")
    quiet_row = (f"| alone | {q['cycles']} | {q['cycles_per_s']:.1f} | {q['p50_ms']:.1f} | {q['p99_ms']:.1f} | "
                 f"{m['peak_quiet']:.0f} |")
    under_row = (f"| under the spray | {u['cycles']} | {u['cycles_per_s']:.1f} | {u['p50_ms']:.1f} | "
                 f"{u['p99_ms']:.1f} | {m['peak_spray']:.0f} |")
    tail = (f"server RSS at the start of the quiet phase {m['start']:.0f} MB, the process's peak "
            f"(VmHWM, start-up included) {m['peak_lifetime']:.0f} MB; "
            f"annotator errors: {r['annotator_errors'] or 'none'}; other statuses: {other or 'none'}")
    lines = [head, "", _SPRAY_HEAD, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|", spray_row, "",
             "| annotator | cycles | cycles/s | p50 ms | p99 ms | server peak RSS MB |",
             "|---|---:|---:|---:|---:|---:|", quiet_row, under_row, "", tail]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--spray-child":
        base, clients, duration, usernames, addresses, seed_ = argv[1:7]
        print(json.dumps(spray_child(base, int(clients), float(duration), json.loads(usernames),
                                     json.loads(addresses), int(seed_))))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--clients", type=int, default=16, help="concurrent attackers")
    p.add_argument("--duration", type=float, default=20.0, help="seconds per phase")
    p.add_argument("--usernames", type=int, default=200, help="names sprayed (real accounts first)")
    p.add_argument("--accounts", type=int, default=20, help="real accounts with passwords")
    p.add_argument("--addresses", type=int, default=64, help="client addresses (X-Forwarded-For when > 1)")
    p.add_argument("--items", type=int, default=20_000, help="open items for the annotator")
    p.add_argument("--warm-up", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=17)
    p.add_argument("--pg-admin", default=PG_ADMIN)
    p.add_argument("--json", help="write the figures there")
    args = p.parse_args(argv)
    r = run(args)
    print(report(r))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
