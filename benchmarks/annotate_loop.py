"""Annotate-loop load test: goldlabel and Label Studio, same workload, same run.

Each simulated annotator is a distinct user with its own keep-alive HTTP connection and loops
"ask for the next item -> submit an answer" for a fixed duration. One cycle = next + submit.
Reported per run: cycles/s, p50/p95/p99 of the cycle latency, errors, and double assignments
(an item handed to more annotators than its overlap, or twice to one annotator), counted in the
client and re-checked from the database afterwards (answers per item <= overlap, no duplicate
(item, annotator), every acknowledged answer present, items.answer_count in step).

goldlabel runs under uvicorn (``--workers W``) on SQLite and on a fresh PostgreSQL database
(created and dropped here). Label Studio runs from its own virtualenv (.venv-labelstudio) when
present, on SQLite and optionally PostgreSQL, with its UI's endpoints:
``POST /api/dm/actions?id=next_task&project=P`` and ``POST /api/tasks/{id}/annotations``.

``--clients bearer,browser`` runs each goldlabel level twice: with API tokens (``Authorization:
Bearer``) and as the annotator page does (the ``gl_session`` cookie and the ``X-CSRF-Token``
header). The browser sessions are made as ``POST /login`` makes them (a cookie signed with the
server's secret key and its row in ``sessions``), without the Argon2 password check, which would
cost every annotator half a second of CPU before the level and is not part of the loop.

    .venv/bin/python benchmarks/annotate_loop.py                       # everything, 10k + 1M
    .venv/bin/python benchmarks/annotate_loop.py --only goldlabel --items 10000 --duration 10
    .venv/bin/python benchmarks/annotate_loop.py --backends sqlite --workers 1,2 --write-docs
    .venv/bin/python benchmarks/annotate_loop.py --only goldlabel --items 10000 --clients bearer,browser

Loopback only; every load is bounded in duration and in count (items, annotators).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PY = REPO / ".venv" / "bin" / "python"
LS_VENV = REPO / ".venv-labelstudio"
DOCS = REPO / "docs" / "benchmarks.md"
SECTION = "## Annotate loop"
ANALYSIS = "### Analysis"
PG_ADMIN = os.environ.get("GOLDLABEL_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SCHEMA = {"questions": [{"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"]}]}
LS_CONFIG = (
    '<View><Text name="text" value="$text"/>'
    '<Choices name="sentiment" toName="text"><Choice value="positive"/><Choice value="negative"/></Choices></View>'
)
REQUEST_TIMEOUT_S = 120.0
# The servers' session key (GOLDLABEL_SECRET_KEY), so that this process can sign their cookies.
SECRET_KEY = "annotate-loop-benchmark-" + uuid.uuid4().hex
# Projects up to this size get a fresh copy per load level, so no level runs out of work.
FRESH_PROJECT_MAX = 100_000


# ---------------------------------------------------------------------------------------------
# A minimal HTTP/1.1 keep-alive client. The load generator shares the 2 cores with the server,
# so it must cost as little CPU per request as possible (httpx costs ~5x more per request).
# ---------------------------------------------------------------------------------------------


class HttpError(Exception):
    pass


class Conn:
    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.base_headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        return await asyncio.wait_for(self._request(method, path, body), REQUEST_TIMEOUT_S)

    async def _request(self, method: str, path: str, body: Any) -> tuple[int, bytes]:
        payload = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self.base_headers}"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode()
        for attempt in (0, 1):
            if self.writer is None:
                await self._connect()
            try:
                self.writer.write(head + payload)
                return await self._read_response()
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                await self.close()
                if attempt:
                    raise HttpError(f"connection lost: {exc!r}") from exc
        raise AssertionError("unreachable")

    async def _read_response(self) -> tuple[int, bytes]:
        assert self.reader is not None
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunks.append(await self.reader.readexactly(size + 2))
                if size == 0:
                    break
            body = b"".join(c[:-2] for c in chunks)
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:
            body = await self.reader.read()
            await self.close()
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, body


# ---------------------------------------------------------------------------------------------
# Load generation
# ---------------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    cycles: int = 0
    elapsed_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    next_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    empty: int = 0  # "no work for you now" answers
    handed: dict[int, list[int]] = field(default_factory=dict)  # item -> annotators it was handed to
    acked: int = 0
    server_cpu_s: float = float("nan")
    client_cpu_s: float = float("nan")
    warmup_acked: int = 0  # answers acknowledged in the unmeasured warm-up before this level

    def cpu_ms_per_cycle(self) -> float:
        return self.server_cpu_s / self.cycles * 1000 if self.cycles else float("nan")

    def error(self, key: str) -> None:
        self.errors[key] = self.errors.get(key, 0) + 1

    def double_assignments(self, overlap: int) -> tuple[int, int]:
        """(hand-outs beyond the overlap to distinct annotators, same item twice to one annotator)."""
        over = sum(max(0, len(set(a)) - overlap) for a in self.handed.values())
        twice = sum(len(a) - len(set(a)) for a in self.handed.values())
        return over, twice

    def pct(self, q: float, which: str = "latencies_ms") -> float:
        data = sorted(getattr(self, which))
        if not data:
            return float("nan")
        return data[min(len(data) - 1, int(q / 100 * len(data)))]


class Driver:
    """One annotate cycle against one system: ``next`` hands out an item id or None."""

    name = "?"

    async def next(self, conn: Conn, who: int) -> tuple[int | None, Any]:
        raise NotImplementedError

    async def submit(self, conn: Conn, who: int, item_id: int, ctx: Any) -> bool:
        raise NotImplementedError

    def resolve(self, handed: dict[Any, list[int]]) -> dict[int, list[int]]:
        """``handed`` keyed by item id (what ``next`` returned as the item, after the level)."""
        return handed


class GoldlabelDriver(Driver):
    name = "goldlabel"

    def __init__(self, project_id: int, decode: Any = None) -> None:
        self.base = f"/api/v1/projects/{project_id}"
        # (annotator index, item reference) -> item id: annotators see items by references of
        # their own (services/item_refs.py); the double-assignment count needs the ids. Decoded
        # after the level (resolve), not in the loop: the load generator shares the 2 cores with
        # the server, and an AES-SIV decryption per cycle was 0.1 ms of its CPU in every cycle.
        self.decode = decode

    async def next(self, conn: Conn, who: int) -> tuple[int | None, Any]:
        status, body = await conn.request("POST", self.base + "/next")
        if status == 204:
            return None, None
        if status != 200:
            raise HttpError(f"next {status} {body[:200]!r}")
        lease = json.loads(body)
        ref = lease["item"]["id"]
        return ((who, ref) if self.decode else ref), lease["token"]

    async def submit(self, conn: Conn, who: int, item_id: int, ctx: Any) -> bool:
        status, body = await conn.request(
            "POST",
            self.base + "/answers",
            {"lease_token": ctx, "value": {"sentiment": "positive"}, "duration_ms": 1000},
        )
        if status != 201:
            raise HttpError(f"submit {status} {body[:200]!r}")
        return True

    def resolve(self, handed: dict[Any, list[int]]) -> dict[int, list[int]]:
        if not self.decode:
            return handed
        out: dict[int, list[int]] = {}
        for (who, ref), annotators in handed.items():
            out.setdefault(self.decode(who, ref), []).extend(annotators)
        return out


class LabelStudioDriver(Driver):
    name = "Label Studio"

    def __init__(self, project_id: int) -> None:
        self.project_id = project_id

    async def next(self, conn: Conn, who: int) -> tuple[int | None, Any]:
        status, body = await conn.request("POST", f"/api/dm/actions?id=next_task&project={self.project_id}")
        if status == 404:
            return None, None
        if status != 200:
            raise HttpError(f"next {status} {body[:200]!r}")
        task = json.loads(body)
        if not task or "id" not in task:
            return None, None
        return task["id"], None

    async def submit(self, conn: Conn, who: int, item_id: int, ctx: Any) -> bool:
        result = [
            {
                "from_name": "sentiment",
                "to_name": "text",
                "type": "choices",
                "value": {"choices": ["positive"]},
            }
        ]
        status, body = await conn.request(
            "POST",
            f"/api/tasks/{item_id}/annotations?project={self.project_id}",
            {"result": result, "lead_time": 1.0, "task": item_id, "project": self.project_id},
        )
        if status not in (200, 201):
            raise HttpError(f"submit {status} {body[:200]!r}")
        return True


async def _annotator(
    driver: Driver, conn: Conn, who: int, deadline: float, res: LoadResult
) -> None:
    try:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                item_id, ctx = await driver.next(conn, who)
            except (TimeoutError, HttpError, OSError) as exc:
                res.error(str(exc)[:60])
                await conn.close()
                await asyncio.sleep(0.05)
                continue
            t1 = time.perf_counter()
            if item_id is None:
                res.empty += 1
                await asyncio.sleep(0.05)
                continue
            res.handed.setdefault(item_id, []).append(who)
            try:
                await driver.submit(conn, who, item_id, ctx)
            except (TimeoutError, HttpError, OSError) as exc:
                res.error(str(exc)[:60])
                await conn.close()
                continue
            t2 = time.perf_counter()
            res.acked += 1
            res.cycles += 1
            res.latencies_ms.append((t2 - t0) * 1000)
            res.next_ms.append((t1 - t0) * 1000)
            res.submit_ms.append((t2 - t1) * 1000)
    finally:
        await conn.close()


async def run_load(
    driver: Driver, port: int, auth_headers: list[dict[str, str]], duration_s: float
) -> LoadResult:
    res = LoadResult()
    conns = [Conn("127.0.0.1", port, h) for h in auth_headers]
    start = time.perf_counter()
    deadline = start + duration_s
    await asyncio.gather(*(_annotator(driver, c, i, deadline, res) for i, c in enumerate(conns)))
    res.elapsed_s = time.perf_counter() - start
    return res


# ---------------------------------------------------------------------------------------------
# Helpers: ports, processes, waiting
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port: int, path: str, timeout_s: float, proc: subprocess.Popen) -> None:
    import urllib.error
    import urllib.request

    t_end = time.time() + timeout_s
    while time.time() < t_end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                if r.status < 500:
                    return
        except urllib.error.HTTPError as e:
            if e.code < 500:
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server on port {port} did not answer {path} within {timeout_s} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _tree(pid: int) -> list[int]:
    pids = [pid]
    try:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True,
                             check=False).stdout
        pids += [int(p) for p in out.split()]
    except OSError:
        pass
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (uvicorn workers), in seconds.
    CPU per cycle is much less sensitive to other work on shared cores than wall-clock rates."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / ticks


def rss_mb(pid: int) -> float:
    """RSS of a process tree (server + its workers), MB."""
    total = 0
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


# ---------------------------------------------------------------------------------------------
# goldlabel: database, seeding, server, verification
# ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    system: str
    backend: str
    items: int
    workers: int
    annotators: int
    overlap: int
    res: LoadResult
    db_check: str = ""
    note: str = ""

    @property
    def rate(self) -> float:
        return self.res.cycles / self.res.elapsed_s if self.res.elapsed_s else 0.0


class GoldlabelDb:
    def __init__(self, backend: str, workdir: Path) -> None:
        import sqlalchemy as sa

        self.backend = backend
        self.pg_name: str | None = None
        if backend == "sqlite":
            self.url = f"sqlite:///{workdir / f'gl-{uuid.uuid4().hex[:8]}.db'}"
        else:
            self.pg_name = f"goldlabel_bench_{uuid.uuid4().hex[:10]}"
            admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{self.pg_name}"'))
            admin.dispose()
            self.url = sa.make_url(PG_ADMIN).set(database=self.pg_name).render_as_string(hide_password=False)
        from goldlabel.config import Settings
        from goldlabel.services.context import Context
        from goldlabel.storage.migrate import upgrade_database

        self.ctx = Context.from_settings(Settings(database_url=self.url))
        upgrade_database(self.ctx.engine)
        self.tokens: list[str] = []
        self.user_ids: list[int] = []
        self.sessions: list[dict[str, str]] = []

    def item_decoder(self, pid: int) -> Any:
        """(annotator index, item reference) -> the item id, as the server decodes it."""
        from goldlabel.services.item_refs import item_refs

        refs = item_refs(self.ctx)
        return lambda who, ref: refs.decode(pid, self.user_ids[who], ref)

    def headers(self, client: str, n: int) -> list[dict[str, str]]:
        """Each of the first ``n`` annotators' credentials: a Bearer token, or a browser's
        session cookie and CSRF header (made as ``POST /login`` makes them, see the docstring)."""
        if client == "bearer":
            return [{"Authorization": f"Bearer {t}"} for t in self.tokens[:n]]
        from goldlabel.services.sessions import SESSION_COOKIE, SessionSigner, start_session

        signer = SessionSigner(SECRET_KEY)
        while len(self.sessions) < n:
            cookie, session = signer.issue(self.user_ids[len(self.sessions)])
            start_session(self.ctx, session)
            self.sessions.append({"Cookie": f"{SESSION_COOKIE}={cookie}",
                                  "X-CSRF-Token": signer.csrf_token(session.nonce)})
        return self.sessions[:n]

    def make_annotators(self, n: int) -> None:
        from goldlabel.services import users as user_service

        while len(self.user_ids) < n:
            row = user_service.create_user(self.ctx, None, f"annotator{len(self.user_ids) + 1}", "annotator")
            self.user_ids.append(row["id"])
            self.tokens.append(user_service.create_token(self.ctx, None, row["id"], "bench")["token"])

    def warm_up(self, cycles: int = 1000) -> None:
        """Put the database in the state of a server that has been annotating for a while:
        ``cycles`` lease + submit cycles (in process, on a project of their own), then ANALYZE.

        On a fresh database the leases, answers and consensus tables are empty, and PostgreSQL
        caches the plans of the annotate loop's prepared statements for tables of a few rows: the
        claim's "not leased to me" check became a scan of the annotator's every lease (0.45 ms ->
        1.2 ms a claim within 2,000 cycles) until autovacuum analyzes the table, within a minute
        or two of its first rows on a running server. The benchmark measures that running server,
        not the first minute of a new one."""
        import sqlalchemy as sa

        from goldlabel.services import users as user_service
        from goldlabel.services.queue import lease as lease_service
        from goldlabel.services.queue import submit as submit_service

        pid, _ = self.make_project(cycles, 1)
        actor = user_service.authenticate_token(self.ctx, self.tokens[0])
        for i in range(cycles):
            lease = lease_service.lease_next(self.ctx, actor, pid)
            assert lease is not None, "warm-up project ran out of work"
            submit_service.submit_answer(self.ctx, actor, pid, lease["token"], {"sentiment": "positive"}, 1000,
                                        f"warm-{i}")
        with self.ctx.engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))

    def make_project(self, n_items: int, overlap: int) -> tuple[int, float]:
        """A project with ``n_items`` items and every annotator a member; returns (id, seconds to seed)."""
        from goldlabel.services import import_rows, projects

        project = projects.create_project(self.ctx, None, f"bench {n_items}", SCHEMA, overlap_min=overlap)
        pid = project["id"]
        for uid in self.user_ids:
            projects.set_member(self.ctx, None, pid, uid, "annotator")
        rows = (
            (i + 1,
             {"external_id": f"x{i}", "data": {"text": f"item {i}: the quick brown fox jumps over the lazy dog"}})
            for i in range(n_items)
        )
        import sqlalchemy as sa

        t0 = time.perf_counter()
        report = import_rows.ingest_rows(self.ctx, None, pid, rows, fmt="jsonl")
        seconds = time.perf_counter() - t0
        assert report.created == n_items, report.to_dict()
        with self.ctx.engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
        return pid, seconds

    def verify(self, project_id: int, overlap_max: int, acked: int) -> tuple[bool, str]:
        import sqlalchemy as sa

        with self.ctx.engine.connect() as conn:
            over = conn.execute(
                sa.text(
                    "SELECT count(*) FROM (SELECT item_id FROM answers WHERE project_id = :p "
                    "GROUP BY item_id HAVING count(*) > :o) t"
                ),
                {"p": project_id, "o": overlap_max},
            ).scalar()
            dup = conn.execute(
                sa.text(
                    "SELECT count(*) FROM (SELECT item_id, annotator_id FROM answers WHERE project_id = :p "
                    "GROUP BY item_id, annotator_id HAVING count(*) > 1) t"
                ),
                {"p": project_id},
            ).scalar()
            n_answers = conn.execute(
                sa.text("SELECT count(*) FROM answers WHERE project_id = :p"), {"p": project_id}
            ).scalar()
            counted = conn.execute(
                sa.text("SELECT coalesce(sum(answer_count), 0) FROM items WHERE project_id = :p"), {"p": project_id}
            ).scalar()
        ok = over == 0 and dup == 0 and n_answers == acked and counted == n_answers
        text = (
            f"over-overlap {over}, dup (item,annotator) {dup}, answers in db {n_answers} / acked {acked}, "
            f"sum(answer_count) {counted}"
        )
        return ok, text

    def close(self) -> None:
        import sqlalchemy as sa

        self.ctx.close()
        if self.pg_name:
            admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)'))
            admin.dispose()
        else:
            path = Path(self.url.removeprefix("sqlite:///"))
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)


def goldlabel_command(port: int, workers: int) -> list[str]:
    return [
        str(PY), "-m", "uvicorn", "goldlabel.app:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--log-level", "warning",
    ]  # fmt: skip


# The model worker (services/model_worker.py) embeds a choice project's items in the background,
# on the same cores, once it has a model or active learning is on (this benchmark's projects have
# neither). Off by default, so levels compare with runs from before the worker existed;
# --model-worker on measures the default server.
MODEL_WORKER = {"on": None, "off": "0"}


def start_goldlabel(url: str, workers: int, model_worker: str = "off") -> tuple[subprocess.Popen, int, list[str]]:
    port = free_port()
    cmd = goldlabel_command(port, workers)
    env = {**os.environ, "GOLDLABEL_DATABASE_URL": url, "GOLDLABEL_SECRET_KEY": SECRET_KEY}
    if MODEL_WORKER[model_worker] is not None:
        env["GOLDLABEL_MODEL_INTERVAL_S"] = MODEL_WORKER[model_worker]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, start_new_session=True)
    wait_http(port, "/healthz", 60, proc)
    return proc, port, cmd


# ---------------------------------------------------------------------------------------------
# Label Studio: server, users, project, tasks
# ---------------------------------------------------------------------------------------------


def ls_version() -> str | None:
    exe = LS_VENV / "bin" / "python"
    if not exe.exists():
        return None
    out = subprocess.run(
        [str(exe), "-c", "import importlib.metadata as m; print(m.version('label-studio'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or None


LS_SETUP = r"""
import json, os, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings.label_studio")
django.setup()
from django.db import transaction
from users.models import User
from organizations.models import Organization
from rest_framework.authtoken.models import Token
n = int(sys.argv[1])
org = Organization.objects.first()
out = []
for i in range(n):
    email = f"annotator{i + 1}@bench.local"
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(email=email, password="bench-password-1", username=f"annotator{i + 1}")
    if org is not None and not org.has_user(user):
        org.add_user(user)
    user.active_organization = org
    user.save()
    token, _ = Token.objects.get_or_create(user=user)
    out.append(token.key)
print("TOKENS=" + json.dumps(out))
"""


class LabelStudio:
    def __init__(self, workdir: Path, backend: str) -> None:
        self.backend = backend
        self.data_dir = workdir / f"ls-{backend}"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.admin_token = uuid.uuid4().hex
        self.env = {
            **os.environ,
            "LABEL_STUDIO_BASE_DATA_DIR": str(self.data_dir),
            "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(self.data_dir),
            "DJANGO_LOG_LEVEL": "ERROR",
            "LOG_LEVEL": "ERROR",
            "SENTRY_DSN": "",
            "FRONTEND_SENTRY_DSN": "",
            "COLLECT_ANALYTICS": "false",
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "false",
        }
        self.pg_name: str | None = None
        if backend == "postgresql":
            import sqlalchemy as sa

            self.pg_name = f"labelstudio_bench_{uuid.uuid4().hex[:10]}"
            admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{self.pg_name}"'))
            admin.dispose()
            u = sa.make_url(PG_ADMIN)
            self.env.update(
                DJANGO_DB="default",
                POSTGRE_NAME=self.pg_name,
                POSTGRE_USER=u.username or "postgres",
                POSTGRE_PASSWORD=u.password or "",
                POSTGRE_PORT=str(u.port or 5432),
                POSTGRE_HOST=u.host or "127.0.0.1",
            )
        self.cmd = [
            str(LS_VENV / "bin" / "label-studio"), "start", "--no-browser", "--internal-host", "127.0.0.1",
            "-p", str(self.port), "--data-dir", str(self.data_dir), "--username", "admin@bench.local",
            "--password", "bench-password-1", "--user-token", self.admin_token, "--enable-legacy-api-token",
        ]  # fmt: skip
        self.log = open(self.data_dir / "server.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.cmd, env=self.env, cwd=self.data_dir, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        wait_http(self.port, "/health", 600, self.proc)
        self.tokens: list[str] = []

    def _api(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        import urllib.request

        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"Token {token or self.admin_token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=600) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def make_annotators(self, n: int) -> None:
        ls_pkg = next((LS_VENV / "lib").glob("python3*/site-packages/label_studio"))
        out = subprocess.run(
            [str(LS_VENV / "bin" / "python"), "-c", LS_SETUP, str(n)],
            env=self.env,
            cwd=ls_pkg,
            capture_output=True,
            text=True,
            check=False,
        )
        line = next((x for x in out.stdout.splitlines() if x.startswith("TOKENS=")), None)
        if line is None:
            raise RuntimeError(f"Label Studio user setup failed: {out.stderr[-2000:]}")
        self.tokens = json.loads(line.removeprefix("TOKENS="))

    def make_project(self, n_items: int, overlap: int) -> tuple[int, float]:
        project = self._api(
            "POST",
            "/api/projects",
            {"title": f"bench {n_items}", "label_config": LS_CONFIG, "maximum_annotations": overlap},
        )
        pid = project["id"]
        t0 = time.perf_counter()
        batch = 10_000
        for start in range(0, n_items, batch):
            tasks = [
                {"data": {"text": f"item {i}: the quick brown fox jumps over the lazy dog"}}
                for i in range(start, min(n_items, start + batch))
            ]
            self._api("POST", f"/api/projects/{pid}/import", tasks)
        return pid, time.perf_counter() - t0

    def verify(self, project_id: int, overlap: int, acked: int) -> tuple[bool, str]:
        """Annotations per task from Label Studio's own database."""
        q_over = (
            "SELECT count(*) FROM (SELECT task_id FROM task_completion WHERE project_id = %s "
            "GROUP BY task_id HAVING count(*) > %s) t"
        )
        q_dup = (
            "SELECT count(*) FROM (SELECT task_id, completed_by_id FROM task_completion WHERE project_id = %s "
            "GROUP BY task_id, completed_by_id HAVING count(*) > 1) t"
        )
        q_n = "SELECT count(*) FROM task_completion WHERE project_id = %s"
        if self.pg_name:
            import sqlalchemy as sa

            eng = sa.create_engine(sa.make_url(PG_ADMIN).set(database=self.pg_name))
            with eng.connect() as conn:
                vals = [
                    conn.exec_driver_sql(q,
                            (project_id, overlap) if "HAVING count(*) > %s" in q else (project_id,)).scalar()
                    for q in (q_over, q_dup, q_n)
                ]
            eng.dispose()
        else:
            db = self.data_dir / "label_studio.sqlite3"
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=60)
            vals = [
                con.execute(q.replace("%s", "?"), (project_id, overlap) if "> %s" in q else (project_id,)).fetchone()[0]
                for q in (q_over, q_dup, q_n)
            ]
            con.close()
        over, dup, n = vals
        return over == 0 and dup == 0, (f"tasks over overlap {over}, dup (task,annotator) {dup}, "
                                        f"annotations {n}/{acked} acked")

    def close(self) -> None:
        stop(self.proc)
        self.log.close()
        if self.pg_name:
            import sqlalchemy as sa

            admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)'))
            admin.dispose()


# ---------------------------------------------------------------------------------------------
# The runs
# ---------------------------------------------------------------------------------------------


def fmt_row(r: Row) -> str:
    over, twice = r.res.double_assignments(r.overlap)
    errs = sum(r.res.errors.values())
    return (
        f"| {r.system} | {r.backend} | {r.items:,} | {r.workers} | {r.annotators} | {r.rate:,.1f} | "
        f"{r.res.pct(50):.1f} | {r.res.pct(95):.1f} | {r.res.pct(99):.1f} | {r.res.cpu_ms_per_cycle():.2f} | "
        f"{over + twice} | {errs} | {r.db_check}{_ran_out(r)} |"
    )


def _ran_out(r: Row) -> str:
    # A "no work for you now" answer means the project ran dry during the level: the annotators
    # then sleep 50 ms per try, so the rate is a lower bound. Size the project or the duration so
    # that it does not happen (the 10k project lasts about 13 s at 750 cycles/s with overlap 1).
    return f"; RAN OUT OF WORK ({r.res.empty} empty answers): rate is a lower bound" if r.res.empty else ""


TABLE_HEAD = (
    "| system | db | items | workers | annotators | cycles/s | p50 ms | p95 ms | p99 ms | server CPU ms/cycle "
    "| double assigned | errors | db check |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
)


def _run_async(coro: Any) -> Any:
    """Run the load generator on uvloop when it is installed (it comes with uvicorn[standard]):
    the client shares the 2 cores with the server, and uvloop costs it less CPU per request than
    asyncio's own loop. The same client drives both systems."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def run_level(
    driver: Driver, port: int, headers: list[dict[str, str]], duration: float, server_pid: int,
    warmup: float = 0.0,
) -> LoadResult:
    """``warmup`` seconds of the same load first, not measured: a server that has just started
    (or a level with more annotators than the last) pays first-request costs in every worker
    (tokens verified, statements prepared, connections opened) that a running server has behind
    it. The warm-up's answers count in ``warmup_acked`` (the database check compares them all)
    and its hand-outs in ``handed`` (the client's double-assignment check covers both)."""
    warm = _run_async(run_load(driver, port, headers, warmup)) if warmup > 0 else LoadResult()
    cpu0, own0 = cpu_seconds(server_pid), time.process_time()
    res = _run_async(run_load(driver, port, headers, duration))
    res.server_cpu_s = cpu_seconds(server_pid) - cpu0
    res.client_cpu_s = time.process_time() - own0
    res.warmup_acked = warm.acked
    res.handed = driver.resolve(res.handed)
    for item, who in driver.resolve(warm.handed).items():
        res.handed[item] = who + res.handed.get(item, [])
    return res


def print_row(r: Row) -> None:
    over, twice = r.res.double_assignments(r.overlap)
    print(
        f"  {r.system:12} {r.backend:10} items={r.items:>9,} workers={r.workers} annotators={r.annotators:>2} "
        f"{r.rate:8.1f} cycles/s  p50 {r.res.pct(50):7.1f}  p95 {r.res.pct(95):7.1f}  p99 {r.res.pct(99):8.1f} ms"
        f"  (next p50 {r.res.pct(50, 'next_ms'):.1f}, submit p50 {r.res.pct(50, 'submit_ms'):.1f})"
        f"  cpu/cycle server {r.res.cpu_ms_per_cycle():.2f} ms client "
        f"{r.res.client_cpu_s / max(1, r.res.cycles) * 1000:.2f} ms"
        f"  double {over}+{twice}  errors {dict(r.res.errors) or 0}  empty {r.res.empty}  [{r.db_check}]",
        flush=True,
    )


def bench_goldlabel(args: argparse.Namespace, workdir: Path, rows: list[Row], notes: list[str], cmds: set[str]) -> None:
    for backend in args.backends:
        for n_items in args.items:
            db = GoldlabelDb(backend, workdir)
            try:
                db.make_annotators(max(args.annotators))
                db.warm_up()
                fresh = n_items <= FRESH_PROJECT_MAX
                acked: dict[int, int] = {}
                shared: tuple[int, float] | None = None
                if not fresh:
                    shared = db.make_project(n_items, args.overlap)
                    notes.append(f"goldlabel {backend}: seeding {n_items:,} items via ingest_rows took {shared[1]:.1f} "
                                 f"s "
                                 f"({n_items / shared[1]:,.0f} items/s); one project serves every load level")
                    print(f"[seed] {backend} {n_items:,} items in {shared[1]:.1f} s", flush=True)
                for workers in (args.pg_workers or args.workers) if backend == "postgresql" else args.workers:
                    proc, port, cmd = start_goldlabel(db.url, workers, args.model_worker)
                    shown_url = "sqlite:///..." if backend == "sqlite" else "postgresql+psycopg://.../fresh_db"
                    worker_env = [] if MODEL_WORKER[args.model_worker] is None else [
                        "GOLDLABEL_MODEL_INTERVAL_S=" + MODEL_WORKER[args.model_worker]]
                    cmds.add(shlex.join(["GOLDLABEL_DATABASE_URL=" + shown_url, *worker_env] + cmd)
                             .replace(f"--port {port}", "--port PORT"))
                    try:
                        for n_ann, client in ((n, c) for n in args.annotators for c in args.clients):
                            if fresh:
                                pid, _ = db.make_project(n_items, args.overlap)
                            else:
                                pid, _ = shared  # type: ignore[misc]
                            res = run_level(GoldlabelDriver(pid, db.item_decoder(pid)), port, db.headers(client, n_ann),
                                            args.duration,
                                            proc.pid, args.warmup)
                            # A shared project holds the answers of the earlier levels too.
                            acked[pid] = acked.get(pid, 0) + res.warmup_acked + res.acked
                            ok, check = db.verify(pid, args.overlap, acked[pid])
                            system = "goldlabel" if client == "bearer" else "goldlabel (browser)"
                            row = Row(system, backend, n_items, workers, n_ann, args.overlap, res,
                                      ("ok" if ok else "FAIL") + ": " + check)
                            row.note = f"rss {rss_mb(proc.pid):.0f} MB"
                            rows.append(row)
                            print_row(row)
                    finally:
                        stop(proc)
            finally:
                db.close()


def bench_labelstudio(
    args: argparse.Namespace, workdir: Path, rows: list[Row], notes: list[str], cmds: set[str]
) -> None:
    for backend in args.ls_backends:
        t0 = time.perf_counter()
        ls = LabelStudio(workdir, backend)
        print(f"[ls] Label Studio ({backend}) up in {time.perf_counter() - t0:.0f} s on port {ls.port}", flush=True)
        cmds.add(shlex.join(ls.cmd).replace(ls.admin_token, "TOKEN").replace(str(ls.port), "PORT")
                 .replace(str(workdir), "TMP"))
        try:
            ls.make_annotators(max(args.annotators))
            for n_items in args.ls_items:
                for n_ann in args.annotators:
                    pid, seed_s = ls.make_project(n_items, args.overlap)
                    notes.append(f"Label Studio {backend}: import of {n_items:,} tasks for the {n_ann}-annotator "
                                 f"level took {seed_s:.1f} s")
                    res = run_level(LabelStudioDriver(pid), ls.port,
                                    [{"Authorization": f"Token {t}"} for t in ls.tokens[:n_ann]], args.duration,
                                    ls.proc.pid, args.warmup)
                    ok, check = ls.verify(pid, args.overlap, res.warmup_acked + res.acked)
                    row = Row("Label Studio", backend, n_items, 1, n_ann, args.overlap, res,
                              ("ok" if ok else "FAIL") + ": " + check)
                    rows.append(row)
                    print_row(row)
        finally:
            ls.close()


def ratios(rows: list[Row]) -> list[str]:
    out = []
    ls = {(r.backend, r.annotators): r for r in rows if r.system == "Label Studio"}
    for r in rows:
        if r.system != "goldlabel":
            continue
        peer = ls.get((r.backend, r.annotators)) or ls.get(("sqlite", r.annotators))
        if peer is None or peer.rate == 0:
            continue
        out.append(
            f"| {r.backend} | {r.items:,} | {r.workers} | {r.annotators} | {r.rate:,.1f} | "
            f"{peer.backend} {peer.rate:,.2f} | **{r.rate / peer.rate:,.0f}x** | "
            f"{peer.res.pct(99) / r.res.pct(99):,.0f}x lower |"
        )
    return out


def client_ratios(rows: list[Row]) -> list[str]:
    """Browser clients' throughput against API-token clients' at the same level and server."""
    bearer = {(r.backend, r.items, r.workers, r.annotators): r for r in rows if r.system == "goldlabel"}
    out = []
    for r in rows:
        peer = bearer.get((r.backend, r.items, r.workers, r.annotators))
        if r.system != "goldlabel (browser)" or peer is None or peer.rate == 0:
            continue
        out.append(f"| {r.backend} | {r.items:,} | {r.workers} | {r.annotators} | {peer.rate:,.1f} | {r.rate:,.1f} | "
                   f"**{r.rate / peer.rate:.2f}** |")
    return out


CLIENT_HEAD = ("| db | items | workers | annotators | Bearer cycles/s | browser cycles/s | browser / Bearer |\n"
               "|---|---:|---:|---:|---:|---:|---:|")


def machine() -> str:
    mem = "?"
    try:
        kb = int(next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1])
        mem = f"{kb / 1024**2:.0f} GiB"
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} cores, {mem} RAM, {platform.system()} {platform.release()}, Python "
        f"{platform.python_version()}; "
        f"load average at the end of the run {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min; the cores are "
        f"shared with other work, so absolute numbers are noisy — compare ratios from the same run)"
    )


def versions() -> str:
    import importlib.metadata as md

    parts = [f"goldlabel {md.version('goldlabel')}"]
    for pkg in ("fastapi", "uvicorn", "sqlalchemy", "psycopg"):
        try:
            parts.append(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            pass
    try:
        import sqlalchemy as sa

        eng = sa.create_engine(PG_ADMIN)
        with eng.connect() as conn:
            parts.append("PostgreSQL " + conn.exec_driver_sql("SHOW server_version").scalar().split()[0])
        eng.dispose()
    except Exception:  # noqa: BLE001, S110 - the PostgreSQL version is optional in the header
        pass
    parts.append(f"SQLite {sqlite3.sqlite_version}")
    v = ls_version()
    if v:
        parts.append(f"Label Studio {v}")
    return ", ".join(parts)


def write_docs(body: str) -> None:
    header = (
        "# Benchmarks\n\n"
        "Machine: 2 cores, 24 GiB RAM, shared with other work while the benchmarks ran (numbers are noisy;\n"
        "ratios measured in the same run are the ones to compare). Each section names its script.\n"
    )
    text = DOCS.read_text() if DOCS.exists() else header
    start = text.find(SECTION + "\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + body.rstrip("\n") + "\n"
    else:
        nxt = text.find("\n## ", start + len(SECTION))
        end = len(text) if nxt == -1 else nxt + 1
        # Hand-written analysis ("### Analysis" to the end of the section) survives a re-run.
        old = text[start:end]
        keep = old[old.find(ANALYSIS):].rstrip("\n") + "\n" if ANALYSIS in old else ""
        new = body.rstrip("\n") + "\n" + ("\n" + keep if keep else "")
        text = text[:start] + new + ("\n" + text[end:] if nxt != -1 else "")
    DOCS.write_text(text)


def parse_ints(s: str) -> list[int]:
    return [int(x.replace("_", "")) for x in s.split(",") if x]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["goldlabel", "labelstudio"], help="run one system only")
    ap.add_argument("--items", type=parse_ints, default=[10_000, 1_000_000], help="project sizes, e.g. 10000,1000000")
    ap.add_argument("--ls-items", type=parse_ints, default=[10_000], help="Label Studio project sizes")
    ap.add_argument("--annotators", type=parse_ints, default=[1, 8, 32], help="concurrent annotators per level")
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per load level")
    ap.add_argument("--warmup", type=float, default=2.0,
                    help="seconds of the same load before each level, not measured (both systems)")
    ap.add_argument("--overlap", type=int, default=1, help="answers wanted per item")
    ap.add_argument("--backends", type=lambda s: s.split(","), default=["sqlite", "postgresql"])
    ap.add_argument("--ls-backends", type=lambda s: s.split(","), default=["sqlite"])
    ap.add_argument("--workers", type=parse_ints, default=[1], help="uvicorn worker processes, e.g. 1,2")
    ap.add_argument("--pg-workers", type=parse_ints, default=None,
                    help="worker processes on PostgreSQL (default: --workers). The annotate loop runs on each "
                         "worker's event loop, so a worker waits out its PostgreSQL round trips: more workers "
                         "than cores keep PostgreSQL busy; SQLite has one writer, so one worker is its best")
    ap.add_argument("--clients", type=lambda s: s.split(","), default=["bearer"],
                    help="goldlabel clients per level: bearer (API token), browser (session cookie + CSRF header)")
    ap.add_argument("--model-worker", choices=sorted(MODEL_WORKER), default="off",
                    help="goldlabel's background model worker during the levels (default off: it embeds the "
                         "benchmark's items on the same cores)")
    ap.add_argument("--write-docs", action="store_true", help=f"write the results to {DOCS.relative_to(REPO)}")
    args = ap.parse_args(argv)
    args.backends = ["postgresql" if b in ("postgres", "pg") else b for b in args.backends]
    args.ls_backends = ["postgresql" if b in ("postgres", "pg") else b for b in args.ls_backends]

    rows: list[Row] = []
    notes: list[str] = []
    cmds: set[str] = set()
    started = time.strftime("%Y-%m-%d %H:%M")
    workdir = Path(tempfile.mkdtemp(prefix="gl-annotate-"))
    try:
        if args.only != "labelstudio":
            bench_goldlabel(args, workdir, rows, notes, cmds)
        if args.only != "goldlabel":
            if ls_version() is None:
                notes.append(f"Label Studio not measured: {LS_VENV} is missing")
                print(notes[-1])
            else:
                bench_labelstudio(args, workdir, rows, notes, cmds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    table = "\n".join([TABLE_HEAD, *(fmt_row(r) for r in rows)])
    rat = ratios(rows)
    print("\n" + table)
    if rat:
        print("\n| db | items | workers | annotators | goldlabel cycles/s | Label Studio cycles/s "
              "| throughput ratio | p99 |")
        print("\n".join(rat))
    by_client = client_ratios(rows)
    if by_client:
        print("\n" + CLIENT_HEAD)
        print("\n".join(by_client))
    for n in notes:
        print("- " + n)
    if args.write_docs:
        command = [str(PY.relative_to(REPO)), "benchmarks/annotate_loop.py",
                   *(argv if argv is not None else sys.argv[1:])]
        body = [
            SECTION,
            "",
            f"Script: `benchmarks/annotate_loop.py`, run {started} with `{shlex.join(command)}`.",
            "",
            f"Machine: {machine()}.",
            "",
            f"Versions: {versions()}.",
            "",
            (f"Workload: each annotator is a distinct user with its own token and keep-alive connection, looping "
             f"next -> submit (one cycle) for {args.duration:g} s per level, after {args.warmup:g} s of the same load "
             f"that is not measured (both systems); overlap {args.overlap}; a choice question. "
             "Latency is per cycle (both requests). \"double assigned\" counts hand-outs of an item to more distinct "
             "annotators than its overlap plus the same item twice to one annotator, seen by the client; \"db check\" "
             "re-counts from the database afterwards."),
            "",
            "Server command lines:",
            "",
            *(f"    {c}" for c in sorted(cmds)),
            "",
            table,
            "",
        ]
        if rat:
            body += [
                "Ratios against Label Studio measured in this run (same machine, same load level):",
                "",
                ("| db | items | workers | annotators | goldlabel cycles/s | Label Studio cycles/s "
                 "| throughput ratio | p99 |"),
                "|---|---:|---:|---:|---:|---:|---:|---|",
                *rat,
                "",
            ]
        if by_client:
            body += ["Browser clients against API-token clients (same server, same level):", "", CLIENT_HEAD,
                     *by_client, ""]
        if notes:
            body += ["Notes:", "", *(f"- {n}" for n in notes), ""]
        write_docs("\n".join(body))
        print(f"\nwrote {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
