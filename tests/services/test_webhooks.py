"""Webhooks end to end, on SQLite and PostgreSQL, with a real HTTP receiver on loopback.

The outbound guard refuses loopback by default, so these tests allow-list 127.0.0.1 through the
setting (``webhook_allowed_networks``); ``test_outbound_guard.py`` checks that without it nothing
reaches a loopback canary. Signatures are checked with the verifier printed in docs/webhooks.md.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import LiveServer, start_all, stop_all

from goldlabel.config import Settings
from goldlabel.services.context import Context
from goldlabel.services.queue import lease as lease_service
from goldlabel.services.queue import submit as submit_service
from goldlabel.services.webhooks import WebhookWorker, route_events
from goldlabel.storage import consensus_events
from goldlabel.storage.engine import now_ms, read_tx, write_tx

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
POS = {"sentiment": "positive"}


def docs_verifier():
    """``verify_webhook`` exactly as docs/webhooks.md prints it (the block also runs its demo)."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.DOTALL)
    [code] = [b for b in blocks if "def verify_webhook" in b]
    namespace: dict = {}
    exec(compile(code, str(DOCS), "exec"), namespace)  # noqa: S102 - the docs' own example
    return namespace["verify_webhook"]


class Receiver:
    """A webhook receiver on 127.0.0.1: records each request; answers from ``statuses`` (then
    200); with ``hold`` set, holds the first request until ``release`` is set."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict, bytes]] = []
        self.statuses: list[int] = []
        self.hold = False
        self.got_request = threading.Event()
        self.release = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                receiver.got_request.set()
                if receiver.hold:
                    receiver.hold = False
                    receiver.release.wait(30)
                    return  # the sender was killed meanwhile: nobody reads an answer
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def event_ids(self) -> list[int]:
        return [json.loads(body)["id"] for _headers, body in self.requests]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


WEBHOOK_SETTINGS = {
    "webhook_allowed_networks": "127.0.0.1/32",
    "webhook_retry_base_s": 0.05,
    "webhook_timeout_s": 5.0,
    "webhook_claim_s": 60.0,
}


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The app's settings (subscriptions are checked against the allow-list too)."""
    return Settings(database_url=database_url, secret_key="test-secret", **WEBHOOK_SETTINGS)


@pytest.fixture
def worker(settings) -> Iterator[WebhookWorker]:
    """A delivery worker with the loopback receiver allow-listed, on the test's database."""
    ctx = Context.from_settings(settings.model_copy(update=WEBHOOK_SETTINGS))
    w = WebhookWorker(ctx)
    yield w
    w.close()
    ctx.close()


def subscribe(factory, project, url, types=("answer.created",)) -> dict:
    res = factory.api_as(project["manager"]).post(
        f"/api/v1/projects/{project['id']}/webhooks", json={"url": url, "event_types": list(types)}
    )
    assert res.status_code == 201, res.text
    return res.json()


def answer_items(factory, project, annotator, n: int) -> list[int]:
    ids = []
    for _ in range(n):
        lease = lease_service.lease_next(factory.ctx, annotator, project["id"])
        got = submit_service.submit_answer(factory.ctx, annotator, project["id"], lease["token"], POS)
        ids.append(got["answer"]["id"])
    return ids


def deliveries(factory, project, hook) -> list[dict]:
    res = factory.api_as(project["manager"]).get(
        f"/api/v1/projects/{project['id']}/webhooks/{hook['id']}/deliveries"
    )
    assert res.status_code == 200, res.text
    return res.json()


def test_a_committed_event_is_delivered_once_signed(factory, worker, receiver):
    ann = factory.make_user()
    project = factory.make_project(annotators=[ann], overlap_min=2, overlap_max=2)
    factory.add_items(project, 2)
    hook = subscribe(factory, project, receiver.url, ["answer.created"])
    answer_ids = answer_items(factory, project, ann, 2)

    assert worker.run_once() == 2
    verify = docs_verifier()
    events = [verify(hook["secret"], headers, body) for headers, body in receiver.requests]
    assert sorted(e["data"]["answer_id"] for e in events) == sorted(answer_ids)
    assert {e["type"] for e in events} == {"answer.created"}
    for (headers, _body), event in zip(receiver.requests, events, strict=True):
        assert headers["Goldlabel-Webhook-Id"] == str(event["id"])
    # A wrong secret and a tampered body are refused by the documented verifier.
    headers, body = receiver.requests[0]
    with pytest.raises(ValueError, match="bad signature"):
        verify("whsec_wrong", headers, body)
    with pytest.raises(ValueError, match="bad signature"):
        verify(hook["secret"], headers, body.replace(b"answer", b"answar"))
    with pytest.raises(ValueError, match="replay window"):
        verify(hook["secret"], headers, body, now=time.time() + 3600)

    log = deliveries(factory, project, hook)
    assert [(d["status"], d["attempts"], d["response_status"]) for d in log] == [("delivered", 1, 200)] * 2
    # Delivered work is not sent again.
    assert worker.run_once() == 0
    assert len(receiver.requests) == 2
    # The secret is shown once: never in a later answer.
    listed = factory.api_as(project["manager"]).get(f"/api/v1/projects/{project['id']}/webhooks").json()
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]


def test_rolled_back_work_is_never_delivered(factory, worker, receiver):
    project = factory.make_project()
    hook = subscribe(factory, project, receiver.url, ["*"])
    with pytest.raises(RuntimeError), write_tx(factory.ctx.engine) as conn:
        consensus_events.insert_event(conn, project["id"], "item.final", {"item_id": 1, "status": "final"}, now_ms())
        raise RuntimeError("the work failed after its event was written")
    with write_tx(factory.ctx.engine) as conn:
        consensus_events.insert_event(conn, project["id"], "item.final", {"item_id": 2, "status": "final"}, now_ms())

    assert worker.run_once() == 1
    assert [json.loads(b)["data"]["item_id"] for _h, b in receiver.requests] == [2]
    assert len(deliveries(factory, project, hook)) == 1


def test_event_types_filter_and_subscriptions_see_only_later_events(factory, worker, receiver):
    project = factory.make_project()
    with write_tx(factory.ctx.engine) as conn:  # before the subscription: not sent to it
        consensus_events.insert_event(conn, project["id"], "item.final", {"item_id": 1}, now_ms() - 1000)
    subscribe(factory, project, receiver.url, ["item.*"])
    other = factory.make_project()
    subscribe(factory, other, receiver.url, ["import.completed"])
    now = now_ms()
    with write_tx(factory.ctx.engine) as conn:
        consensus_events.insert_event(conn, project["id"], "item.needs_review", {"item_id": 2}, now)
        consensus_events.insert_event(conn, project["id"], "answer.created", {"answer_id": 3}, now)
        consensus_events.insert_event(conn, other["id"], "item.final", {"item_id": 4}, now)
    worker.run_once()
    assert [json.loads(b)["type"] for _h, b in receiver.requests] == ["item.needs_review"]


def test_failures_are_retried_with_exponential_backoff_then_given_up(factory, settings, receiver):
    ctx = Context.from_settings(settings.model_copy(update={**WEBHOOK_SETTINGS, "webhook_retry_base_s": 10,
                                                            "webhook_retry_window_s": 100}))
    worker = WebhookWorker(ctx)
    try:
        project = factory.make_project()
        hook = subscribe(factory, project, receiver.url, ["item.final"])
        with write_tx(factory.ctx.engine) as conn:
            consensus_events.insert_event(conn, project["id"], "item.final", {"item_id": 7}, now_ms())
        receiver.statuses = [500, 503, 500, 500]
        t0 = now_ms()
        assert worker.run_once(now=t0) == 1  # attempt 1: 500, next in 10 s
        assert worker.run_once(now=t0 + 9_000) == 0  # not due yet
        assert worker.run_once(now=t0 + 10_000) == 1  # attempt 2: 503, next in 20 s
        assert worker.run_once(now=t0 + 29_000) == 0
        assert worker.run_once(now=t0 + 30_000) == 1  # attempt 3: 500, next in 40 s
        [d] = deliveries(factory, project, hook)
        assert (d["status"], d["attempts"], d["response_status"], d["next_attempt_at"]) == (
            "pending", 3, 500, t0 + 70_000)
        # Attempt 4 fails and the next (80 s later) would fall outside the 100 s window: failed.
        assert worker.run_once(now=t0 + 70_000) == 1
        [d] = deliveries(factory, project, hook)
        assert (d["status"], d["attempts"], d["last_error"]) == ("failed", 4, "HTTP 500")
        assert worker.run_once(now=t0 + 500_000) == 0
        # A manager's re-send queues it again; the receiver now answers 200.
        res = factory.api_as(project["manager"]).post(
            f"/api/v1/projects/{project['id']}/webhooks/{hook['id']}/deliveries/{d['id']}/resend")
        assert res.status_code == 200 and res.json()["status"] == "pending", res.text
        assert worker.run_once() == 1
        [d] = deliveries(factory, project, hook)
        assert (d["status"], d["attempts"]) == ("delivered", 5)
        # Every try carried the same event id: what the receiver de-duplicates on.
        assert len(set(receiver.event_ids())) == 1 and len(receiver.requests) == 5
    finally:
        worker.close()
        ctx.close()


WORKER_SCRIPT = """
import sys
from goldlabel.config import Settings
from goldlabel.services.context import Context
from goldlabel.services.webhooks import WebhookWorker
ctx = Context.from_settings(Settings(database_url=sys.argv[1], webhook_allowed_networks="127.0.0.1/32",
                                     webhook_timeout_s=30, webhook_claim_s=60))
WebhookWorker(ctx).run_once()
"""


def test_a_worker_killed_while_sending_leaves_the_delivery_to_another(factory, settings, worker, receiver):
    """At least once across kill -9: the event is committed, a worker process claims its
    delivery and sends it, and is killed before it records the answer. Until its claim expires
    no other worker sends it; then one does, with the same event id."""
    project = factory.make_project()
    hook = subscribe(factory, project, receiver.url, ["item.final"])
    with write_tx(factory.ctx.engine) as conn:
        consensus_events.insert_event(conn, project["id"], "item.final", {"item_id": 9}, now_ms())
    receiver.hold = True
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT, settings.database_url], env=env)
    try:
        assert receiver.got_request.wait(60), "the worker process never sent the delivery"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    receiver.release.set()
    [d] = deliveries(factory, project, hook)
    assert (d["status"], d["attempts"]) == ("pending", 0)  # claimed, never recorded
    assert worker.run_once() == 0  # the dead worker's claim still holds
    assert worker.run_once(now=now_ms() + 61_000) == 1  # expired: sent again
    [d] = deliveries(factory, project, hook)
    assert (d["status"], d["attempts"]) == ("delivered", 1)
    ids = receiver.event_ids()
    assert len(ids) == 2 and ids[0] == ids[1]


def test_workers_of_several_processes_send_each_delivery_once(factory, settings, receiver):
    """Two workers (two engines, as two server processes would have) run at once over the same
    outbox: every event reaches the receiver exactly once."""
    ctxs = [Context.from_settings(settings.model_copy(update=WEBHOOK_SETTINGS)) for _ in range(2)]
    workers = [WebhookWorker(c) for c in ctxs]
    try:
        project = factory.make_project()
        subscribe(factory, project, receiver.url, ["item.final"])
        with write_tx(factory.ctx.engine) as conn:
            for i in range(40):
                consensus_events.insert_event(conn, project["id"], "item.final", {"item_id": i}, now_ms())
        threads = [threading.Thread(target=w.run_once) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for w in workers:  # anything left between the two rounds
            w.run_once()
        ids = receiver.event_ids()
        assert len(ids) == 40 and len(set(ids)) == 40
    finally:
        for w, c in zip(workers, ctxs, strict=True):
            w.close()
            c.close()


def test_subscription_input_is_checked(factory):
    project = factory.make_project()
    client = factory.api_as(project["manager"])
    path = f"/api/v1/projects/{project['id']}/webhooks"
    cases = {
        "http://127.0.0.2:9/x": "address_refused",  # loopback, outside the allow-list
        "http://169.254.169.254/latest/meta-data/": "address_refused",
        "http://[fd00:ec2::254]/": "address_refused",
        "http://2130706433/": "ip_spelling",
        "http://0177.0.0.1/": "ip_spelling",
        "http://[::ffff:127.0.0.1]/": "ip_spelling",
        "file:///etc/passwd": "invalid_url",
    }
    for url, code in cases.items():
        res = client.post(path, json={"url": url, "event_types": ["*"]})
        assert res.status_code == 422, (url, res.text)
        assert res.json()["errors"][0]["code"] == code, (url, res.json())
    res = client.post(path, json={"url": "https://hooks.example.com/x", "event_types": ["item.finished"]})
    assert res.status_code == 422 and res.json()["errors"][0]["code"] == "unknown_event_type"
    # Annotators may not subscribe.
    ann = factory.make_user()
    factory.api_as(project["manager"]).put(f"/api/v1/projects/{project['id']}/members",
                                           json={"user_id": ann.id, "role": "annotator"})
    res = factory.api_as(ann).post(path, json={"url": "https://hooks.example.com/x", "event_types": ["*"]})
    assert res.status_code == 403


def test_route_events_leaves_the_outbox_alone_without_subscribers(factory, receiver):
    project = factory.make_project()
    with write_tx(factory.ctx.engine) as conn:
        consensus_events.insert_event(conn, project["id"], "item.final", {"item_id": 1}, now_ms())
    assert route_events(factory.ctx) == 0  # nobody subscribes anywhere: not even a write
    with read_tx(factory.ctx.engine) as conn:
        [event] = consensus_events.list_events(conn, project["id"], 0, 10)
    assert event["delivered_at"] is None
    # A subscription in another project: this project's events are routed (to nobody).
    subscribe(factory, factory.make_project(), receiver.url, ["*"])
    assert route_events(factory.ctx) == 1
    assert route_events(factory.ctx) == 0
    with read_tx(factory.ctx.engine) as conn:
        [event] = consensus_events.list_events(conn, project["id"], 0, 10)
    assert event["delivered_at"] is not None


def test_item_status_changes_are_delivered(factory, worker, receiver):
    """"Item final" / "item needs review" subscriptions hear of the item's new status."""
    a1, a2 = factory.make_user(), factory.make_user()
    project = factory.make_project(annotators=[a1, a2], overlap_min=2, overlap_max=2)
    factory.add_items(project, 1)
    subscribe(factory, project, receiver.url, ["item.final", "item.needs_review"])
    for annotator in (a1, a2):
        answer_items(factory, project, annotator, 1)
    item = factory.api_as(project["manager"]).get(f"/api/v1/projects/{project['id']}/items").json()["items"][0]
    assert item["status"] in ("final", "needs_review")
    assert worker.run_once() == 1
    [event] = [json.loads(b) for _h, b in receiver.requests]
    assert event["type"] == f"item.{item['status']}"
    assert event["data"] == {"item_id": item["id"], "status": item["status"]}


@pytest.mark.slow
def test_server_processes_deliver_from_one_outbox(factory, settings, receiver, tmp_path):
    """Two real server processes on one database: their lifespans start the workers, which
    share the outbox; every event reaches the receiver exactly once."""
    project = factory.make_project()
    subscribe(factory, project, receiver.url, ["item.final"])
    env = {"GOLDLABEL_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32", "GOLDLABEL_WEBHOOK_POLL_INTERVAL_S": "0.1",
           "GOLDLABEL_REFIT_INTERVAL_S": "0"}
    servers = start_all([LiveServer(settings.database_url, tmp_path, env=env, secret_key="test-secret",
                                    uvicorn=True) for _ in range(2)])
    try:
        for i in range(30):
            with write_tx(factory.ctx.engine) as conn:
                consensus_events.insert_event(conn, project["id"], "item.final", {"item_id": i}, now_ms())
        deadline = time.monotonic() + 60
        while len(receiver.requests) < 30 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)  # a duplicate, if any, would arrive meanwhile
    finally:
        stop_all(servers)
    ids = receiver.event_ids()
    assert len(ids) == 30 and len(set(ids)) == 30


def test_the_delivery_log_keeps_finished_deliveries_for_the_retention(factory, worker, receiver):
    project = factory.make_project()
    hook = subscribe(factory, project, receiver.url, ["item.final"])
    with write_tx(factory.ctx.engine) as conn:
        consensus_events.insert_event(conn, project["id"], "item.final", {"item_id": 1}, now_ms())
    receiver.statuses = [200, 500]
    assert worker.run_once() == 1  # delivered
    with write_tx(factory.ctx.engine) as conn:
        consensus_events.insert_event(conn, project["id"], "item.final", {"item_id": 2}, now_ms())
    assert worker.run_once() == 1  # failed once: pending
    assert {d["status"] for d in deliveries(factory, project, hook)} == {"delivered", "pending"}
    later = now_ms() + int(worker.ctx.settings.webhook_log_retention_s * 1000) + 1
    assert worker.prune_log(now=later) == 1  # the pending one stays, however old
    assert [d["status"] for d in deliveries(factory, project, hook)] == ["pending"]

