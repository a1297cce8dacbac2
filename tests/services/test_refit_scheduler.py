"""The background re-fit (services.refit.RefitScheduler) and its batch writes."""

from __future__ import annotations

import math
import os
import sys
import time

import pytest
import sqlalchemy as sa

from goldlabel.services.refit import REFIT_NICE, RefitScheduler
from goldlabel.storage.engine import read_tx, write_tx
from goldlabel.storage.quality import fetch_item_counts, write_consensus_batch
from goldlabel.storage.tables import consensus, project_models

API = "/api/v1/projects"


def answer(factory, project, annotator, n: int) -> None:
    api = factory.api_as(annotator)
    for _ in range(n):
        lease = api.post(f"{API}/{project['id']}/next").json()
        res = api.post(f"{API}/{project['id']}/answers",
                       json={"lease_token": lease["token"], "value": {"sentiment": "positive"}})
        assert res.status_code == 201, res.text


def test_each_project_is_refit_once_per_interval_whatever_the_number_of_schedulers(ctx, factory):
    # Every worker of a server runs a scheduler; the first to find a stale project re-fits it and
    # the others leave it alone until the interval has passed, even if answers arrived meanwhile.
    ann = factory.make_user()
    project = factory.make_project(annotators=[ann], overlap_min=1, overlap_max=1)
    factory.add_items(project, 4)
    answer(factory, project, ann, 2)
    first, second = RefitScheduler(ctx, 60), RefitScheduler(ctx, 60)
    assert first.run_once() == [project["id"]]
    answer(factory, project, ann, 1)
    assert second.run_once() == []
    with write_tx(ctx.engine) as conn:  # the last re-fit is now 61 s old
        conn.execute(project_models.update().where(project_models.c.project_id == project["id"],
                                                   project_models.c.question == "")
                     .values(fitted_at=project_models.c.fitted_at - 61_000))
    assert second.run_once() == [project["id"]]
    assert first.run_once() == []  # nothing new since


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_the_scheduler_thread_runs_nicer_than_the_server(ctx):
    scheduler = RefitScheduler(ctx, 3600)
    scheduler.start()
    try:
        deadline = time.monotonic() + 5
        expected = min(19, os.getpriority(os.PRIO_PROCESS, 0) + REFIT_NICE)
        while time.monotonic() < deadline:
            if scheduler.native_id and os.getpriority(os.PRIO_PROCESS, scheduler.native_id) == expected:
                break
            time.sleep(0.01)
        assert os.getpriority(os.PRIO_PROCESS, scheduler.native_id) == expected
        assert os.getpriority(os.PRIO_PROCESS, 0) == expected - REFIT_NICE or expected == 19
    finally:
        scheduler.stop()


def _consensus(ctx, item_ids):
    with read_tx(ctx.engine) as conn:
        rows = conn.execute(sa.select(consensus).where(consensus.c.item_id.in_(item_ids))
                            .order_by(consensus.c.item_id, consensus.c.question)).mappings().all()
    return [dict(r) for r in rows]


def fetch_item_counts_for(ctx, ids):
    with read_tx(ctx.engine) as conn:
        return fetch_item_counts(conn, ids).items()


def test_consensus_batch_replaces_the_given_pairs_only(ctx, factory):
    project = factory.make_project()
    factory.add_items(project, 3)
    with read_tx(ctx.engine) as conn:
        ids = sorted(fetch_item_counts(conn, list(range(1, 1000))))
    assert len(ids) == 3

    def row(item_id, question, value, confidence, agreement=None):
        return {"item_id": item_id, "question": question, "value": value, "confidence": confidence,
                "method": "ds", "status": "open", "contributions": None, "agreement": agreement,
                "updated_at": 1}

    with write_tx(ctx.engine) as conn:
        write_consensus_batch(conn, project["id"], [row(ids[0], "a", "x", 0.5), row(ids[0], "b", ["p", "q"], 0.6),
                                                    row(ids[1], "a", {"k": 1}, 0.7, 1.0)])
    with write_tx(ctx.engine) as conn:
        write_consensus_batch(conn, project["id"], [row(ids[0], "a", "y", 0.9, 0.5), row(ids[2], "a", 3, 0.8)])
    got = [(r["item_id"], r["question"], r["value"], r["confidence"], r["agreement"], r["project_id"])
           for r in _consensus(ctx, ids)]
    assert got == [
        (ids[0], "a", "y", 0.9, 0.5, project["id"]),
        (ids[0], "b", ["p", "q"], 0.6, None, project["id"]),
        (ids[1], "a", {"k": 1}, 0.7, 1.0, project["id"]),
        (ids[2], "a", 3, 0.8, None, project["id"]),
    ]
    counts = dict(fetch_item_counts_for(ctx, ids))
    assert set(counts) == set(ids) and all(c == (0, 1, "open", False) for c in counts.values())


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_batch_with_a_non_finite_number_takes_the_generic_path(ctx, factory):
    # NaN cannot travel in the JSON array of the PostgreSQL upsert; the row must still be written.
    project = factory.make_project()
    factory.add_items(project, 1)
    with read_tx(ctx.engine) as conn:
        (item_id,) = fetch_item_counts(conn, list(range(1, 100)))
    with write_tx(ctx.engine) as conn:
        write_consensus_batch(conn, project["id"], [{
            "item_id": item_id, "question": "a", "value": "x", "confidence": math.nan, "method": "ds",
            "status": "open", "contributions": None, "updated_at": 1}])
    (stored,) = _consensus(ctx, [item_id])
    assert stored["value"] == "x" and math.isnan(stored["confidence"])
