"""Q4 for both entry points: a real server process, SIGKILLed while a browser client (session
cookie + X-CSRF-Token) and an API-token client annotate, loses no answer it acknowledged.

Each kill lands at a random moment of the load; the server is restarted on the same database and
the clients carry on. Afterwards every acknowledged answer is in the database, no item holds more
answers than its overlap, no (item, annotator) pair twice, ``items.answer_count`` agrees with the
answers, and SQLite's ``integrity_check`` is ok. A SIGKILL checks that the 2xx follows COMMIT
(what the process had written survives it); the sync's own part only a power cut can check
(tests/storage/test_write_durability.py checks that it runs, and when). (The full harness, with hundreds of kills and a
negative control, is issue 17 item 11; this is its smallest form, in CI on both databases.)"""

from __future__ import annotations

import random
import threading
import time

import httpx
import sqlalchemy as sa
from live_server import LiveServer

from goldlabel.services.sessions import SESSION_COOKIE, SessionSigner, start_session

SECRET = "kill-server-test-secret"
KILLS = 3
POSITIVE = {"sentiment": "positive"}


def _annotate(base: str, headers: dict[str, str], pid: int, acked: list[int], stop: threading.Event) -> None:
    """next -> answers until told to stop, through kills: a request that fails (server gone) is
    retried later; a lease lost with the server simply expires."""
    with httpx.Client(base_url=base, headers=headers, timeout=5) as client:
        while not stop.is_set():
            try:
                lease = client.post(f"/api/v1/projects/{pid}/next")
                if lease.status_code != 200:
                    time.sleep(0.05)
                    continue
                res = client.post(f"/api/v1/projects/{pid}/answers",
                                  json={"lease_token": lease.json()["token"], "value": POSITIVE})
                if res.status_code == 201:
                    acked.append(res.json()["answer"]["id"])
            except httpx.HTTPError:
                time.sleep(0.05)


def test_acknowledged_answers_survive_sigkill_for_browser_and_token_clients(factory, database_url, tmp_path):
    browser_user, token_user = factory.make_user(), factory.make_user()
    project = factory.make_project(annotators=[browser_user, token_user], overlap_min=1, overlap_max=1)
    factory.add_items(project, 400)
    pid = project["id"]
    signer = SessionSigner(SECRET)
    cookie, session = signer.issue(browser_user.id)
    start_session(factory.ctx, session)  # as POST /login records it
    clients = {
        "browser": {"Cookie": f"{SESSION_COOKIE}={cookie}", "X-CSRF-Token": signer.csrf_token(session.nonce)},
        "token": {"Authorization": f"Bearer {factory.token_for(token_user)}"},
    }
    acked: dict[str, list[int]] = {name: [] for name in clients}
    stop = threading.Event()
    server = LiveServer(database_url, tmp_path, secret_key=SECRET, uvicorn=True)
    server.start().wait_ready()
    threads = [threading.Thread(target=_annotate, args=(server.base, h, pid, acked[name], stop))
               for name, h in clients.items()]
    for t in threads:
        t.start()
    try:
        for _ in range(KILLS):
            time.sleep(random.uniform(0.8, 1.6))
            server.kill9()
            server.start().wait_ready()
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
        server.stop()
    assert acked["browser"] and acked["token"], acked  # both clients got answers through
    every = acked["browser"] + acked["token"]
    with factory.ctx.engine.connect() as conn:
        ids = set(conn.execute(sa.text("SELECT id FROM answers WHERE project_id = :p"), {"p": pid}).scalars())
        assert set(every) <= ids, f"acknowledged answers lost: {sorted(set(every) - ids)}"
        assert conn.execute(sa.text(
            "SELECT count(*) FROM (SELECT item_id, annotator_id FROM answers WHERE project_id = :p "
            "GROUP BY item_id, annotator_id HAVING count(*) > 1) d"), {"p": pid}).scalar() == 0
        assert conn.execute(sa.text(
            "SELECT count(*) FROM (SELECT item_id FROM answers WHERE project_id = :p GROUP BY item_id "
            "HAVING count(*) > 1) d"), {"p": pid}).scalar() == 0  # overlap 1
        counted = conn.execute(sa.text("SELECT coalesce(sum(answer_count), 0) FROM items WHERE project_id = :p"),
                               {"p": pid}).scalar()
        assert counted == len(ids)
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
