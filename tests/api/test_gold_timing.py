"""A security test, not a speed target (issue 17, item 2): an annotator timing their own submits
must not be able to tell gold items from the others.

A real server process (uvicorn, the real app) on SQLite and on PostgreSQL; one annotator with an
API token answers a project of gold and normal items served at random (gold rate 0.5) over
HTTP, as an attacker would, and the latency of every submit is recorded. The two distributions
(a few hundred submits each, interleaved, so that load on the machine falls on both alike) are
compared by the best single-cutoff classifier ("slower than t ms: gold"): its balanced accuracy
is 0.5 + D / 2, where D is the two-sample Kolmogorov-Smirnov statistic. Before gold was scored
off the response path the cutoff told them apart 99.6% of the time on PostgreSQL (issue 17).
The test fails when the accuracy reaches ``MAX_ACCURACY``: under identical distributions, a
sample of this size passes it with probability below 1e-6.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from scipy.stats import ks_2samp

PER_CLASS = 200
WARM_UP = 20
MAX_ACCURACY = 0.65
POS = {"sentiment": "positive"}
SECRET = "gold-timing-test-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(database_url: str, log: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "GOLDLABEL_DATABASE_URL": database_url, "GOLDLABEL_SECRET_KEY": SECRET}
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "goldlabel.app:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            env=env, stdout=subprocess.DEVNULL, stderr=err,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300  # a loaded CI machine took 90 s to start a server
    while True:
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)


def best_cutoff_accuracy(slow: np.ndarray, fast: np.ndarray) -> float:
    """The balanced accuracy of the best rule "latency above t: class ``slow``" (or below)."""
    values = np.concatenate([slow, fast])
    order = np.argsort(values, kind="stable")
    is_slow = np.concatenate([np.ones(len(slow)), np.zeros(len(fast))])[order]
    # Cutting after the k smallest: share of each class at or below the cut.
    slow_below = np.concatenate([[0], np.cumsum(is_slow)]) / len(slow)
    fast_below = np.concatenate([[0], np.cumsum(1 - is_slow)]) / len(fast)
    accuracy = 0.5 * (fast_below + (1 - slow_below))
    # A cut falls between two different values (or outside them all), never inside a tie.
    sorted_values = values[order]
    cuts = np.concatenate([[True], sorted_values[1:] != sorted_values[:-1], [True]])
    accuracy = accuracy[cuts]
    return float(np.max(np.maximum(accuracy, 1 - accuracy)))


def test_best_cutoff_accuracy_is_half_plus_half_the_ks_statistic():
    rng = np.random.default_rng(7)
    a, b = rng.normal(1.0, 0.2, 300), rng.normal(1.1, 0.2, 250)
    assert best_cutoff_accuracy(a, b) == pytest.approx(0.5 + ks_2samp(a, b).statistic / 2)
    assert best_cutoff_accuracy(a + 10, b) == 1.0 and best_cutoff_accuracy(a, a) == 0.5


@pytest.mark.slow
def test_gold_submits_cannot_be_told_apart_by_their_timing(factory, settings, ctx, tmp_path):
    ann = factory.make_user()
    project = factory.make_project(annotators=[ann], overlap_min=1, overlap_max=1, settings={"gold_rate": 0.5})
    pid = project["id"]
    n = PER_CLASS + WARM_UP
    gold = [{"external_id": f"g{i}", "data": {"text": f"item g{i}"}, "gold": POS} for i in range(n + 60)]
    normal = [{"external_id": f"n{i}", "data": {"text": f"item n{i}"}} for i in range(n + 60)]
    manager = factory.api_as(project["manager"])
    for rows in (gold, normal):
        assert manager.post(f"/api/v1/projects/{pid}/items", json=rows).status_code == 201
    token = factory.token_for(ann)
    proc, base = _serve(settings.database_url, tmp_path / "server.log")
    timings: dict[int, float] = {}
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
            while True:
                lease = api.post(f"/api/v1/projects/{pid}/next")
                if lease.status_code == 204:
                    break
                assert lease.status_code == 200, lease.text
                body = {"lease_token": lease.json()["token"], "value": POS, "duration_ms": 1000}
                start = time.perf_counter()
                res = api.post(f"/api/v1/projects/{pid}/answers", json=body)
                elapsed = time.perf_counter() - start
                assert res.status_code == 201, res.text
                timings[res.json()["answer"]["id"]] = elapsed * 1000
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    with ctx.engine.connect() as conn:
        is_gold = dict(conn.execute(sa.text(
            "SELECT answers.id, items.is_gold FROM answers JOIN items ON items.id = answers.item_id "
            "WHERE answers.project_id = :pid"), {"pid": pid}).all())
    ordered = sorted(timings)[WARM_UP:]
    gold_ms = np.array([timings[a] for a in ordered if is_gold[a]])
    normal_ms = np.array([timings[a] for a in ordered if not is_gold[a]])
    assert len(gold_ms) >= PER_CLASS * 0.8 and len(normal_ms) >= PER_CLASS * 0.8, (
        f"{len(timings)} submits before the queue answered 204 ({len(gold_ms)} gold, {len(normal_ms)} normal "
        f"after the warm-up; {sum(is_gold.values())} gold of {len(is_gold)} answers in the database)")
    accuracy = best_cutoff_accuracy(gold_ms, normal_ms)
    ks = ks_2samp(gold_ms, normal_ms)
    report = (f"gold {len(gold_ms)} submits, median {np.median(gold_ms):.2f} ms; normal {len(normal_ms)}, median "
              f"{np.median(normal_ms):.2f} ms; best cutoff accuracy {accuracy:.3f}, KS D {ks.statistic:.3f} "
              f"(p {ks.pvalue:.2g}); load {os.getloadavg()[0]:.1f}")
    print(report)
    assert accuracy < MAX_ACCURACY, report
