"""kill -9 harness: a real ``goldlabel serve`` process on a real database, SIGKILLed at random
moments under concurrent lease/submit load, restarted, N times; then the invariants are checked.

Clients (threads in this process, each its own annotator and keep-alive connection):

- Bearer clients: ``Authorization: Bearer <token>``, as the SDK sends it;
- browser clients: log in through ``GET /login`` + the login form (pre-session cookie and its
  CSRF token), read the CSRF token from the annotator page's ``<meta name="csrf-token">`` and send
  it as ``X-CSRF-Token`` with the session cookie on every write, exactly as
  ``web/static/js/api.js`` does.

Every client loops "next -> submit" and retries through the kills: a request that fails in
transit (connection refused, reset, cut) is sent again as it was, a submission with the same
lease token and ``Idempotency-Key``. A 201 is an acknowledgement: the client records the
(item, annotator, value, answer id) it was given.

After the kills the server is started once more and the clients drain the queue; then, from the
database itself:

- every acknowledged answer is present, with the acknowledged value and id (Q4, Q5);
- no duplicates: one answer per (item, annotator), one lease row per (item, annotator) (Q2, Q3);
- per item: answers <= overlap_max, answers + live leases <= overlap_max, ``answer_count`` and
  ``reserved`` in step with the answer and active-lease rows (Q1, Q3);
- no answer stored for a submission whose final reply refused it (a retry returns the original
  result, Q5);
- the queue drained: every item got its target overlap of answers;
- SQLite: ``PRAGMA integrity_check`` says ok (and ``foreign_key_check`` finds nothing).

Negative control: ``--ack-before-commit`` puts a faulty proxy between the clients and the server
that answers ``201`` to a submission before the server has it (and forwards it a moment later).
The checks must then find lost answers: the test suite runs it to prove the harness can fail.

    .venv/bin/python benchmarks/kill9.py --backend sqlite --kills 10
    .venv/bin/python benchmarks/kill9.py --backend postgres --kills 200 --min-up 0.2 --max-up 0.8
    .venv/bin/python benchmarks/kill9.py --backend sqlite --kills 3 --ack-before-commit  # must FAIL

Exit code 0 when every check holds, 1 when one fails (the report says which), 2 on a harness
error. ``--json PATH`` writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from goldlabel.services.item_refs import ItemRefs

# The server is started and waited for by the tests' real-server helper (tests/live_server.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from live_server import LiveServer, free_port

PG_ADMIN = os.environ.get("GOLDLABEL_TEST_POSTGRES_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SCHEMA = {"questions": [{"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"]}]}
PASSWORD = "amber lantern quietly 41"
SECRET = "kill9-harness-secret-key-0123456789"
LEASE_TTL_S = 8
RETRY_SLEEP_S = 0.05
SERVER_START_TIMEOUT_S = 300.0


# ---------------------------------------------------------------------------------------------
# The database: created (PostgreSQL: a fresh database; SQLite: a file), seeded, checked, dropped


class Database:
    def __init__(self, backend: str, workdir: Path, pg_admin: str) -> None:
        self.backend = backend
        self.pg_admin = pg_admin
        self.pg_name: str | None = None
        if backend == "sqlite":
            self.path = workdir / "kill9.db"
            self.url = f"sqlite:///{self.path}"
        else:
            self.pg_name = f"goldlabel_kill9_{uuid.uuid4().hex[:10]}"
            admin = sa.create_engine(pg_admin, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{self.pg_name}"'))
            admin.dispose()
            self.url = sa.make_url(pg_admin).set(database=self.pg_name).render_as_string(hide_password=False)

    def drop(self) -> None:
        if self.pg_name:
            admin = sa.create_engine(self.pg_admin, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)'))
            admin.dispose()

    def engine(self) -> sa.Engine:
        return sa.create_engine(self.url, poolclass=sa.pool.NullPool)


@dataclass
class Seed:
    project_id: int
    manager_token: str
    bearer: list[tuple[int, str]]  # (user id, token)
    browser: list[tuple[int, str]]  # (user id, username)


def seed(db: Database, n_bearer: int, n_browser: int, overlap: int) -> Seed:
    from goldlabel.config import Settings
    from goldlabel.services import projects as project_service
    from goldlabel.services import users as user_service
    from goldlabel.services.access import Actor
    from goldlabel.services.context import Context
    from goldlabel.storage.migrate import upgrade_database

    ctx = Context.from_settings(Settings(database_url=db.url, secret_key=SECRET))
    try:
        upgrade_database(ctx.engine)
        row = user_service.create_user(ctx, None, "kill9-manager", "manager", None)
        manager = Actor(row["id"], row["username"], row["role"])
        project = project_service.create_project(ctx, manager, "kill -9", SCHEMA, overlap_min=overlap,
                                                 lease_ttl_s=LEASE_TTL_S)
        bearer, browser = [], []
        for i in range(n_bearer + n_browser):
            is_browser = i >= n_bearer
            name = f"kill9-{'browser' if is_browser else 'bearer'}-{i}"
            user = user_service.create_user(ctx, None, name, "annotator", PASSWORD if is_browser else None)
            project_service.set_member(ctx, manager, project["id"], user["id"], "annotator")
            if is_browser:
                browser.append((user["id"], name))
            else:
                bearer.append((user["id"], user_service.create_token(ctx, None, user["id"])["token"]))
        token = user_service.create_token(ctx, None, manager.id)["token"]
        return Seed(project["id"], token, bearer, browser)
    finally:
        ctx.close()


# ---------------------------------------------------------------------------------------------
# The negative control: a proxy that acknowledges a submission before the server has it


class AckBeforeCommitProxy:
    """Faulty on purpose: ``POST .../answers`` is answered 201 at once and forwarded to the
    server ``delay`` seconds later (lost when the server is down by then); every other request
    is relayed as it is."""

    def __init__(self, upstream: str, port: int, delay: float = 0.3) -> None:
        import uvicorn

        self.upstream = upstream
        self.delay = delay
        self.base = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="error",
                                                    lifespan="off", interface="asgi3"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.client: httpx.AsyncClient | None = None
        self.pending: set[asyncio.Task] = set()

    def start(self) -> None:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    async def _read(self, receive) -> bytes:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                return body

    async def app(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        if self.client is None:
            self.client = httpx.AsyncClient(base_url=self.upstream, timeout=30.0)
        body = await self._read(receive)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]
                   if k.lower() not in (b"host", b"content-length")]
        path = scope["path"] + (("?" + scope["query_string"].decode()) if scope["query_string"] else "")
        if scope["method"] == "POST" and scope["path"].endswith("/answers"):
            async def later() -> None:
                await asyncio.sleep(self.delay)
                try:
                    await self.client.post(path, content=body, headers=headers)
                except httpx.HTTPError:
                    pass  # the server was down: the acknowledged answer is lost

            task = asyncio.get_running_loop().create_task(later())
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)
            await send({"type": "http.response.start", "status": 201,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": b'{"answer": null, "item_status": "open"}'})
            return
        try:
            res = await self.client.request(scope["method"], path, content=body, headers=headers)
        except httpx.HTTPError:
            await send({"type": "http.response.start", "status": 502, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        out = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in res.headers.multi_items()
               if k.lower() not in ("content-length", "transfer-encoding", "content-encoding", "connection")]
        await send({"type": "http.response.start", "status": res.status_code, "headers": out})
        await send({"type": "http.response.body", "body": res.content})


# ---------------------------------------------------------------------------------------------
# Clients


class Stop(Exception):
    pass


@dataclass
class Shared:
    stop: threading.Event = field(default_factory=threading.Event)
    drained: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # (item reference, annotator id): the item as the client saw it.
    acked: dict[tuple[str, int], tuple[int | None, str]] = field(default_factory=dict)
    refused: dict[tuple[str, int], int] = field(default_factory=dict)  # final non-2xx after a retry
    double_acks: int = 0
    submits: int = 0
    retries: int = 0
    server_errors: dict[int, int] = field(default_factory=dict)
    client_errors: dict[str, int] = field(default_factory=dict)


class Annotator(threading.Thread):
    def __init__(self, base: str, project_id: int, user_id: int, shared: Shared, rng: random.Random,
                 *, token: str | None = None, username: str | None = None) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.project_id = project_id
        self.user_id = user_id
        self.shared = shared
        self.rng = rng
        self.token = token
        self.username = username
        self.http = httpx.Client(base_url=base, timeout=20.0, follow_redirects=False)
        self.csrf: str | None = None
        self.failure: BaseException | None = None

    # -- transport with retries ---------------------------------------------------------------

    def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """One request, sent again until the server gives an HTTP answer that is not a 5xx."""
        tries = 0
        extra = dict(kw.pop("headers", None) or {})
        while True:
            if self.shared.stop.is_set():
                raise Stop
            headers = dict(extra)
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            elif method != "GET" and self.csrf:
                headers["X-CSRF-Token"] = self.csrf
            try:
                res = self.http.request(method, path, headers=headers, **kw)
            except httpx.TransportError:
                tries += 1
                self.shared.retries += 1
                time.sleep(RETRY_SLEEP_S)
                continue
            if res.status_code >= 500:
                with self.shared.lock:
                    self.shared.server_errors[res.status_code] = self.shared.server_errors.get(res.status_code, 0) + 1
                tries += 1
                time.sleep(RETRY_SLEEP_S)
                continue
            if res.status_code in (401, 403) and not self.token and path.startswith("/api/"):
                self.log_in()  # a browser whose session was refused logs in again, as a person would
                continue
            res.tries = tries  # type: ignore[attr-defined]
            return res

    def log_in(self) -> None:
        """As a person in a browser: the login page (pre-session cookie + its CSRF token), the form,
        then the annotator page for the session's CSRF token."""
        while True:
            if self.shared.stop.is_set():
                raise Stop
            try:
                self.http.cookies.clear()
                page = self.http.get("/login")
                token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
                res = self.http.post("/login", data={"username": self.username, "password": PASSWORD,
                                                      "csrf_token": token, "next": "/"})
                if res.status_code >= 500 or res.status_code == 429:  # down (behind a proxy), throttled
                    time.sleep(RETRY_SLEEP_S if res.status_code >= 500 else 1.0)
                    continue
                if res.status_code != 303:
                    raise RuntimeError(f"login answered {res.status_code}")
                page = self.http.get(f"/projects/{self.project_id}/annotate")
                if page.status_code != 200:
                    raise RuntimeError(f"the annotator page answered {page.status_code}")
                self.csrf = page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
                return
            except (httpx.TransportError, IndexError):
                time.sleep(RETRY_SLEEP_S)

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> None:
        try:
            if self.username:
                self.log_in()
            self.loop()
        except Stop:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported by the harness
            self.failure = exc
        finally:
            self.http.close()

    def _count(self, what: str) -> None:
        with self.shared.lock:
            self.shared.client_errors[what] = self.shared.client_errors.get(what, 0) + 1

    def loop(self) -> None:
        api = f"/api/v1/projects/{self.project_id}"
        while True:
            res = self._send("POST", f"{api}/next")
            if res.status_code == 204:
                if self.shared.drained.is_set():
                    return
                time.sleep(0.2)
                continue
            if res.status_code != 200:
                self._count(f"next {res.status_code}")
                time.sleep(0.1)
                continue
            lease = res.json()
            item_id = lease["item"]["id"]
            value = self.rng.choice(["positive", "negative"])
            key = uuid.uuid4().hex
            res = self._send("POST", f"{api}/answers", json={"lease_token": lease["token"],
                                                             "value": {"sentiment": value}},
                             headers={"Idempotency-Key": key})
            pair = (item_id, self.user_id)
            with self.shared.lock:
                self.shared.submits += 1
                if res.status_code == 201:
                    answer = res.json().get("answer")
                    if pair in self.shared.acked:
                        self.shared.double_acks += 1
                    self.shared.acked[pair] = (answer["id"] if answer else None, value)
                else:
                    self.shared.client_errors[f"submit {res.status_code}"] = (
                        self.shared.client_errors.get(f"submit {res.status_code}", 0) + 1)
                    if res.tries:  # type: ignore[attr-defined]
                        self.shared.refused[pair] = res.status_code


# ---------------------------------------------------------------------------------------------
# Checks


def open_work(engine: sa.Engine, project_id: int) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT COALESCE(SUM(target_overlap - answer_count), 0) FROM items WHERE project_id = :p"),
            {"p": project_id}).scalar_one()


def check(db: Database, shared: Shared, project_id: int) -> dict[str, Any]:
    engine = db.engine()
    failures: list[str] = []
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT id, item_id, annotator_id, value FROM answers WHERE project_id = :p"),
                {"p": project_id}).all()
            stored: dict[tuple[int, int], list[tuple[int, Any]]] = {}
            for answer_id, item_id, annotator_id, value in rows:
                if isinstance(value, str):
                    value = json.loads(value)
                stored.setdefault((item_id, annotator_id), []).append((answer_id, value))
            duplicated = sum(len(v) - 1 for v in stored.values())
            # The clients saw each item by its reference (services/item_refs.py): decoded with
            # the install's key, as the server does.
            key = conn.execute(sa.text("SELECT value FROM install_secrets WHERE name = 'item_ref_key'")).scalar_one()
            refs = ItemRefs(bytes.fromhex(key))

            def real(pair: tuple[str, int]) -> tuple[int | None, int]:
                return refs.decode(project_id, pair[1], pair[0]), pair[1]

            lost = wrong = 0
            for pair, (answer_id, value) in shared.acked.items():
                got = stored.get(real(pair))
                if not got:
                    lost += 1
                elif got[0][1] != {"sentiment": value} or (answer_id is not None and got[0][0] != answer_id):
                    wrong += 1
            refused_but_stored = sum(1 for pair in shared.refused if real(pair) in stored)
            lease_dups = conn.execute(sa.text(
                "SELECT COUNT(*) FROM (SELECT item_id, annotator_id FROM leases WHERE project_id = :p "
                "GROUP BY item_id, annotator_id HAVING COUNT(*) > 1) d"), {"p": project_id}).scalar_one()
            per_item = conn.execute(sa.text("""
                SELECT i.id, i.answer_count, i.reserved, i.overlap_max, i.target_overlap,
                       (SELECT COUNT(*) FROM answers a WHERE a.item_id = i.id),
                       (SELECT COUNT(*) FROM leases l WHERE l.item_id = i.id AND l.status = 'active')
                FROM items i WHERE i.project_id = :p"""), {"p": project_id}).all()
            q1 = sum(1 for r in per_item if r[5] > r[3])
            q3 = sum(1 for r in per_item if r[5] + r[6] > r[3])
            counters = sum(1 for r in per_item if r[1] != r[5] or r[2] != r[6])
            undrained = sum(1 for r in per_item if r[5] < r[4])
            integrity = None
            if db.backend == "sqlite":
                integrity = ";".join(str(r[0]) for r in conn.exec_driver_sql("PRAGMA integrity_check"))
                fk = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                if integrity != "ok" or fk:
                    failures.append(f"SQLite integrity_check: {integrity}; foreign_key_check: {len(fk)} rows")
    finally:
        engine.dispose()
    for count, what in [
        (lost, "acknowledged answers lost"), (wrong, "acknowledged answers stored with another value or id"),
        (duplicated, "duplicate answers (item, annotator)"), (shared.double_acks, "items acknowledged twice"),
        (lease_dups, "duplicate lease rows (item, annotator)"), (q1, "items over overlap_max (Q1)"),
        (q3, "items with answers + live leases over overlap_max (Q3)"),
        (counters, "items whose answer_count / reserved disagree with their rows"),
        (refused_but_stored, "submissions refused on retry but stored (Q5)"),
        (undrained, "items short of their target overlap (the queue did not drain)"),
    ]:
        if count:
            failures.append(f"{count} {what}")
    return {"answers": len(rows), "acknowledged": len(shared.acked), "lost": lost, "duplicated": duplicated,
            "wrong": wrong, "q1_violations": q1, "q3_violations": q3, "counter_mismatches": counters,
            "refused_but_stored": refused_but_stored, "undrained_items": undrained, "items": len(per_item),
            "integrity_check": integrity, "failures": failures}


# ---------------------------------------------------------------------------------------------
# The run


def top_up(base: str, seed_: Seed, engine: sa.Engine, want: int, batch: int, counter: list[int]) -> None:
    """Keep at least ``want`` answers of open work, so every cycle runs under load."""
    missing = want - open_work(engine, seed_.project_id)
    if missing <= 0:
        return
    rows = []
    for _ in range((missing + 2) // 3 if missing < batch else batch):
        counter[0] += 1
        rows.append({"external_id": f"k{counter[0]}", "data": {"text": f"item {counter[0]}"}})
    res = httpx.post(f"{base}/api/v1/projects/{seed_.project_id}/items", json=rows, timeout=60,
                     headers={"Authorization": f"Bearer {seed_.manager_token}"})
    if res.status_code not in (200, 201):
        raise RuntimeError(f"adding items answered {res.status_code}: {res.text[:300]}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="goldlabel-kill9-"))
    db = Database(args.backend, workdir, args.pg_admin)
    server = None
    proxy = None
    threads: list[Annotator] = []
    shared = Shared()
    t_start = time.monotonic()
    try:
        seed_ = seed(db, args.bearer, args.browser, args.overlap)
        server = LiveServer(db.url, workdir, secret_key=SECRET, env={"GOLDLABEL_MEDIA_DIR": str(workdir / "media")})
        base = server.base
        if args.ack_before_commit:
            proxy = AckBeforeCommitProxy(server.base, free_port())
            proxy.start()
            base = proxy.base
        engine = db.engine()
        counter = [0]
        startup: list[float] = []
        startup.append(server.start().wait_ready(SERVER_START_TIMEOUT_S))
        top_up(server.base, seed_, engine, args.open_work, args.open_work, counter)
        for user_id, token in seed_.bearer:
            threads.append(Annotator(base, seed_.project_id, user_id, shared, random.Random(rng.random()),
                                     token=token))
        for user_id, username in seed_.browser:
            threads.append(Annotator(base, seed_.project_id, user_id, shared, random.Random(rng.random()),
                                     username=username))
        for t in threads:
            t.start()
        kills = 0
        for cycle in range(args.kills):
            if cycle:
                startup.append(server.start().wait_ready(SERVER_START_TIMEOUT_S))
                top_up(server.base, seed_, engine, args.open_work, args.open_work, counter)
            time.sleep(rng.uniform(args.min_up, args.max_up))
            server.kill9()
            kills += 1
            time.sleep(rng.uniform(0.0, args.max_down))
            if args.verbose:
                print(f"kill {kills}: {len(shared.acked)} acknowledged, {shared.submits} submits", file=sys.stderr)
        startup.append(server.start().wait_ready(SERVER_START_TIMEOUT_S))
        t_drain = time.monotonic()
        # Drain: no more items; the clients finish what is open (orphaned leases, whose reply was
        # lost in a kill, expire after the project's lease TTL and are served again).
        while open_work(engine, seed_.project_id) > 0:
            dead = [t for t in threads if not t.is_alive()]
            if dead or time.monotonic() - t_drain > args.drain_timeout:
                break
            time.sleep(0.2)
        drain_s = time.monotonic() - t_drain
        shared.drained.set()
        for t in threads:
            t.join(timeout=max(5.0, 2 * LEASE_TTL_S))
        shared.stop.set()
        for t in threads:
            t.join(timeout=10)
        if proxy is not None:
            time.sleep(proxy.delay + 0.5)  # the proxy's pending forwards land (or are lost)
        server.stop()
        engine.dispose()
        result = check(db, shared, seed_.project_id)
        stuck = [t.name for t in threads if t.is_alive()]
        crashed = [f"{t.name}: {t.failure!r}" for t in threads if t.failure is not None]
        if crashed:
            result["failures"].append("client failures: " + "; ".join(crashed))
        if stuck:
            result["failures"].append(f"{len(stuck)} clients still running after the drain")
        result.update(
            backend=args.backend, kills=kills, server_starts=server.starts, submits=shared.submits,
            transport_retries=shared.retries, server_errors=shared.server_errors,
            client_errors=shared.client_errors, bearer_clients=args.bearer, browser_clients=args.browser,
            ack_before_commit=args.ack_before_commit, drain_s=round(drain_s, 2),
            startup_s_median=round(sorted(startup)[len(startup) // 2], 2),
            wall_s=round(time.monotonic() - t_start, 1), seed=args.seed,
        )
        return result
    finally:
        shared.stop.set()
        if proxy is not None:
            proxy.stop()
        if server is not None:
            server.stop()
        db.drop()
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
        elif args.verbose:
            print(f"kept {workdir}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--bearer", type=int, default=4, help="Bearer-token clients")
    parser.add_argument("--browser", type=int, default=2, help="browser-style (cookie + CSRF) clients")
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--open-work", type=int, default=300,
                        help="answers of open work kept in the queue at each restart")
    parser.add_argument("--min-up", type=float, default=0.3, help="shortest run under load before a kill (s)")
    parser.add_argument("--max-up", type=float, default=1.5, help="longest run under load before a kill (s)")
    parser.add_argument("--max-down", type=float, default=0.3, help="longest pause before the restart (s)")
    parser.add_argument("--drain-timeout", type=float, default=90.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--pg-admin", default=PG_ADMIN, help="PostgreSQL URL to create the database from")
    parser.add_argument("--ack-before-commit", action="store_true",
                        help="negative control: a faulty proxy acknowledges submissions before the server has them")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (database, server-PORT.log)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**31)
    try:
        result = run(args)
    except Exception as exc:  # noqa: BLE001 - a harness error, told apart from a failed check
        print(f"kill9 harness error (seed {args.seed}): {exc!r}", file=sys.stderr)
        return 2
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print("| backend | kills | acknowledged | lost | duplicated | Q1/Q3 violations | integrity | drained | 5xx |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {result['backend']} | {result['kills']} | {result['acknowledged']} | {result['lost']} | "
          f"{result['duplicated']} | {result['q1_violations']}/{result['q3_violations']} | "
          f"{result['integrity_check'] or 'n/a'} | {'yes' if not result['undrained_items'] else 'NO'} | "
          f"{sum(result['server_errors'].values())} |")
    print(f"seed {result['seed']}, {result['submits']} submissions, {result['transport_retries']} retries in "
          f"transit, {result['server_starts']} server starts (median start {result['startup_s_median']} s), "
          f"drain {result['drain_s']} s, {result['wall_s']} s in all; refused: {result['client_errors']}")
    if result["failures"]:
        print("FAIL: " + "; ".join(result["failures"]))
        return 1
    print("PASS: every acknowledged answer present, no duplicates, Q1-Q3 hold, the queue drained")
    return 0


if __name__ == "__main__":
    sys.exit(main())
