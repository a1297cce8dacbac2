"""Concurrency hammers for the work queue.

* threads: N annotators, one thread each, loop lease + submit through the services on one
  shared Context (SQLite: one writer at a time, never "database is locked"; PostgreSQL: a pool of
  connections claiming concurrently with SKIP LOCKED), with skips, releases, retries and a
  "clock" thread expiring random live leases, so reaping and late submissions race real claims.
* processes: two real uvicorn servers sharing one PostgreSQL database, annotators spread
  over them, over real HTTP.

Afterwards the database is checked: no item above its max overlap, no (item, annotator) twice,
every acknowledged answer present as acknowledged, the counters equal to the rows they count.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from live_server import LiveServer, stop_all

from goldlabel.domain.errors import GoldlabelError
from goldlabel.services.context import Context
from goldlabel.services.item_refs import decode_item
from goldlabel.services.queue import lease as lease_service
from goldlabel.services.queue import submit as submit_service
from goldlabel.storage.engine import now_ms, write_tx
from goldlabel.storage.tables import answers, items, leases

pytestmark = pytest.mark.slow

LABELS = ("positive", "negative")
# tolerated, expected outcomes of a racing submit (Q7) or of a retry that lost its lease to the clock
EXPECTED_CONFLICTS = {"lease_expired"}


@dataclass
class Tally:
    acked: list[tuple[int, str, int, dict]] = field(default_factory=list)  # answer id, item ref, annotator, value
    errors: list[str] = field(default_factory=list)
    conflicts: dict[str, int] = field(default_factory=dict)
    leases: int = 0
    skips: int = 0
    releases: int = 0
    retries: int = 0
    expired: int = 0
    lock = threading.Lock()

    def add(self, **kw: Any) -> None:
        with self.lock:
            for k, v in kw.items():
                if k == "acked":
                    self.acked.append(v)
                elif k == "error":
                    self.errors.append(v)
                elif k == "conflict":
                    self.conflicts[v] = self.conflicts.get(v, 0) + 1
                else:
                    setattr(self, k, getattr(self, k) + v)


def annotate_loop(
    seed: int,
    annotator_id: int,
    lease_next: Callable[[], dict | None],
    submit: Callable[[str, dict], dict],
    skip: Callable[[str], None],
    release: Callable[[str], None],
    tally: Tally,
    deadline: float,
) -> None:
    """One annotator: lease, then mostly submit (sometimes twice: a retry), sometimes skip or
    release; stop after a few empty answers from the queue in a row."""
    rng = random.Random(seed)
    empty = 0
    try:
        while time.monotonic() < deadline:
            lease = lease_next()
            if lease is None:
                empty += 1
                if empty >= 4:
                    return
                time.sleep(0.02 * empty)
                continue
            empty = 0
            tally.add(leases=1)
            token = lease["token"]
            roll = rng.random()
            if roll < 0.04:
                skip(token)
                tally.add(skips=1)
                continue
            if roll < 0.08:
                release(token)
                tally.add(releases=1)
                continue
            value = {"sentiment": rng.choice(LABELS)}
            try:
                res = submit(token, value)
            except GoldlabelError as exc:
                if exc.code not in EXPECTED_CONFLICTS:
                    raise
                tally.add(conflict=exc.code)
                continue
            answer = res["answer"]
            assert answer["annotator_id"] == annotator_id and answer["value"] == value
            tally.add(acked=(answer["id"], answer["item_id"], annotator_id, value))
            if roll > 0.9:  # a client that lost the response retries: the original comes back (Q5)
                again = submit(token, {"sentiment": rng.choice(LABELS)})
                if again["answer"] != answer:
                    raise AssertionError(f"retry returned {again['answer']} instead of {answer}")
                tally.add(retries=1)
    except Exception as exc:  # noqa: BLE001 - every failure is reported by the test
        tally.add(error=f"annotator {annotator_id}: {type(exc).__name__}: {exc}")


def expire_randomly(engine: sa.Engine, project_id: int, stop: threading.Event, tally: Tally,
                    period: float = 0.05) -> None:
    """The clock: every ``period`` one random live lease expires (as if its annotator walked away)."""
    rng = random.Random(7)
    try:
        while not stop.wait(period):
            with write_tx(engine) as conn:
                ids = conn.execute(
                    sa.select(leases.c.id).where(leases.c.project_id == project_id, leases.c.status == "active")
                ).scalars().all()
                if ids:
                    conn.execute(leases.update().where(leases.c.id == rng.choice(ids)).values(expires_at=now_ms() - 1))
                    tally.add(expired=1)
    except Exception as exc:  # noqa: BLE001
        tally.add(error=f"clock: {type(exc).__name__}: {exc}")


def check_database(ctx: Context, project_id: int, tally: Tally) -> dict[str, int]:
    """The invariants, read from the database after the storm."""
    engine = ctx.engine
    assert not tally.errors, "\n".join(tally.errors[:20])
    with engine.connect() as conn:
        rows = conn.execute(sa.select(items).where(items.c.project_id == project_id)).mappings().all()
        counts = dict(
            conn.execute(
                sa.select(answers.c.item_id, sa.func.count())
                .where(answers.c.project_id == project_id)
                .group_by(answers.c.item_id)
            ).all()
        )
        live = dict(
            conn.execute(
                sa.select(leases.c.item_id, sa.func.count())
                .where(leases.c.project_id == project_id, leases.c.status == "active")
                .group_by(leases.c.item_id)
            ).all()
        )
        dupes = conn.execute(
            sa.select(answers.c.item_id, answers.c.annotator_id)
            .where(answers.c.project_id == project_id)
            .group_by(answers.c.item_id, answers.c.annotator_id)
            .having(sa.func.count() > 1)
        ).all()
        stored = {
            r.id: (r.item_id, r.annotator_id, r.value)
            for r in conn.execute(
                sa.select(answers.c.id, answers.c.item_id, answers.c.annotator_id, answers.c.value).where(
                    answers.c.project_id == project_id
                )
            )
        }
    assert dupes == [], f"(item, annotator) answered twice: {dupes[:10]}"  # Q2
    for r in rows:
        n = counts.get(r["id"], 0)
        assert n <= r["overlap_max"], f"item {r['id']}: {n} answers > overlap_max {r['overlap_max']}"  # Q1
        assert r["answer_count"] == n, f"item {r['id']}: answer_count {r['answer_count']} != {n} answers"
        assert r["reserved"] == live.get(r["id"], 0), f"item {r['id']}: reserved {r['reserved']} != live leases"
        assert r["answer_count"] + r["reserved"] <= r["overlap_max"]  # Q3
    acked_ids = [a[0] for a in tally.acked]
    assert len(acked_ids) == len(set(acked_ids)), "one answer acknowledged twice as new"
    for answer_id, item_ref, annotator_id, value in tally.acked:  # Q4: every 2xx is in the database
        # The annotator was told an opaque item reference (services/item_refs.py).
        item_id = decode_item(ctx, project_id, annotator_id, item_ref)
        assert stored.get(answer_id) == (item_id, annotator_id, value), f"acknowledged answer {answer_id} lost"
    assert len(stored) == len(acked_ids), "answers in the database that nobody was told about"
    return {"items": len(rows), "answers": len(stored), "closed": sum(r["status"] != "open" for r in rows)}


def _run_threads(threads: list[threading.Thread], clock: threading.Thread, stop: threading.Event) -> float:
    """Runs the annotators' threads beside the expiring clock until every annotator is done;
    the seconds it took."""
    start = time.monotonic()
    clock.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    clock.join()
    return time.monotonic() - start


def _report(label: str, stats: dict, tally: Tally, elapsed: float) -> None:
    print(
        f"\n{label}: {stats['answers']} answers on {stats['items']} items ({stats['closed']} closed) in "
        f"{elapsed:.1f}s; leases {tally.leases}, skips {tally.skips}, releases {tally.releases}, "
        f"retries {tally.retries}, expired by the clock {tally.expired}, conflicts {tally.conflicts}"
    )


# ---------------------------------------------------------------- threads, in process


def test_hammer_threads(factory, backend):
    n_threads, n_items = (16, 120) if backend == "sqlite" else (12, 120)
    anns = [factory.make_user() for _ in range(n_threads)]
    project = factory.make_project(
        annotators=anns, overlap_min=2, overlap_max=3, lease_ttl_s=60, settings={"target_confidence": 0.8}
    )
    pid = project["id"]
    factory.add_items(project, n_items)
    ctx = factory.ctx
    tally = Tally()
    deadline = time.monotonic() + 40
    stop = threading.Event()
    clock = threading.Thread(target=expire_randomly, args=(ctx.engine, pid, stop, tally))
    threads = [
        threading.Thread(
            target=annotate_loop,
            args=(
                i,
                a.id,
                lambda a=a: lease_service.lease_next(ctx, a, pid),
                lambda token, value, a=a: submit_service.submit_answer(ctx, a, pid, token, value),
                lambda token, a=a: lease_service.skip_item(ctx, a, pid, token),
                lambda token, a=a: lease_service.release_item(ctx, a, pid, token),
                tally,
                deadline,
            ),
        )
        for i, a in enumerate(anns)
    ]
    elapsed = _run_threads(threads, clock, stop)
    stats = check_database(ctx, pid, tally)
    assert stats["answers"] >= n_items  # real work was done
    assert tally.retries and tally.skips and tally.releases
    _report(f"threads/{backend}", stats, tally, elapsed)


# ---------------------------------------------------------------- processes, PostgreSQL


def _http_calls(client: httpx.Client, pid: int):
    def check(res: httpx.Response, *ok: int) -> httpx.Response:
        if res.status_code == 409:
            body = res.json()
            raise GoldlabelError(body.get("detail", ""), code=body["code"], status=409)
        if res.status_code not in ok:
            raise AssertionError(f"{res.request.method} {res.request.url.path}: {res.status_code} {res.text[:500]}")
        return res

    def lease_next():
        res = check(client.post(f"/api/v1/projects/{pid}/next"), 200, 204)
        return res.json() if res.status_code == 200 else None

    def submit(token, value):
        return check(client.post(f"/api/v1/projects/{pid}/answers", json={"lease_token": token, "value": value}),
                     201).json()

    def skip(token):
        check(client.post(f"/api/v1/projects/{pid}/skip", json={"lease_token": token}), 204)

    def release(token):
        check(client.post(f"/api/v1/projects/{pid}/release", json={"lease_token": token}), 204)

    return lease_next, submit, skip, release


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_hammer_processes_postgres(factory, database_url, tmp_path):
    n_servers, per_server, n_items = 2, 6, 100
    t0 = time.monotonic()
    # The servers boot (import, migration check) while the project is set up.
    servers = [LiveServer(database_url, tmp_path, secret_key="hammer", uvicorn=True, name=f"server{i}",
                          env={"GOLDLABEL_PG_POOL_SIZE": "6"}).start() for i in range(n_servers)]
    urls = [s.base for s in servers]
    clients: list[httpx.Client] = []
    try:
        anns = [factory.make_user() for _ in range(n_servers * per_server)]
        project = factory.make_project(
            annotators=anns, overlap_min=2, overlap_max=3, lease_ttl_s=60, settings={"target_confidence": 0.8}
        )
        pid = project["id"]
        factory.add_items(project, n_items)
        tokens = [factory.token_for(a) for a in anns]
        for server in servers:
            server.wait_ready()
        print(f"\n{n_servers} servers up and project ready in {time.monotonic() - t0:.1f}s", end="")
        tally = Tally()
        stop = threading.Event()
        clock = threading.Thread(target=expire_randomly, args=(factory.ctx.engine, pid, stop, tally, 0.1))
        threads = []
        deadline = time.monotonic() + 40
        for i, (a, token) in enumerate(zip(anns, tokens)):
            client = httpx.Client(base_url=urls[i % n_servers], headers={"Authorization": f"Bearer {token}"},
                                  timeout=30)
            clients.append(client)
            threads.append(threading.Thread(
                target=annotate_loop, args=(100 + i, a.id, *_http_calls(client, pid), tally, deadline)
            ))
        elapsed = _run_threads(threads, clock, stop)
    finally:
        for c in clients:
            c.close()
        stop_all(servers)
    for server in servers:  # a 500 is logged by the server: none may have happened
        log = server.log_path.read_text()
        assert "Traceback" not in log, log[-3000:]
    stats = check_database(factory.ctx, pid, tally)
    assert stats["answers"] >= n_items
    _report(f"{n_servers} processes/postgres", stats, tally, elapsed)
