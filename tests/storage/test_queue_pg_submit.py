"""PostgreSQL: the merged submit (storage/queue_pg.py: a read, then a write that re-checks it
under lock) against the generic statements.

Each scenario runs twice on the same annotators, in two projects: once with the merged path
(``Backend.merged_submit``, storage.backend) and once without, on the same simulated clock; the
answers, leases, items, consensus and events rows, and the API results, must be the same. The
API runs the merged path on the event loop (storage.aio), direct service calls run it on the
blocking driver: both are compared. Statements are counted on the driver's cursors (the hot
statements bypass SQLAlchemy events).
"""

from __future__ import annotations

import functools
import importlib
import itertools
import math
import pkgutil
import threading
import time
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from goldlabel.domain.errors import GoldlabelError
from goldlabel.domain.label_schema import KINDS as LABEL_SCHEMA_KINDS
from goldlabel.services import cold_start
from goldlabel.services import consensus as consensus_service
from goldlabel.services import queue as queue_package
from goldlabel.services.item_refs import decode_item
from goldlabel.services.queue import lease as lease_service
from goldlabel.services.queue import merged_submit
from goldlabel.services.queue import submit as submit_service
from goldlabel.storage import queue as queue_store
from goldlabel.storage import queue_pg
from goldlabel.storage.engine import now_ms
from goldlabel.storage.tables import (
    annotator_skills,
    answers,
    consensus,
    events,
    items,
    leases,
    project_members,
    project_models,
)

pytestmark = pytest.mark.postgres

POS = {"sentiment": "positive"}
NEG = {"sentiment": "negative"}
TWO_CHOICE = {"questions": [
    {"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"]},
    {"name": "topic", "kind": "choice", "labels": ["a", "b", "c"]},
]}
MIXED = {"questions": [
    {"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"]},
    {"name": "score", "kind": "rating", "min": 1, "max": 5},
]}
# The shape kinds, on the item's image (IMAGE_DATA).
SHAPE_QUESTIONS = [
    {"name": "vehicles", "kind": "boxes", "labels": ["car", "person"]},
    {"name": "roofs", "kind": "polygons", "labels": ["roof"]},
    {"name": "pose", "kind": "keypoints", "labels": ["person"],
     "skeletons": {"person": {"points": ["nose", "left_hip", "right_ankle"]}}},
]
# Two answers that agree within each kind's threshold (a box and a polygon shifted by 2% of the
# image, a skeleton 1% off), and one that agrees with neither.
SHAPE_VALUES = [
    {"vehicles": [{"x": 0.1, "y": 0.2, "w": 0.3, "h": 0.4, "label": "car"}],
     "roofs": [{"points": [[0.1, 0.1], [0.4, 0.1], [0.4, 0.4], [0.1, 0.4]], "label": "roof"}],
     "pose": [{"label": "person", "points": {"nose": {"x": 0.5, "y": 0.1}, "left_hip": {"x": 0.45, "y": 0.5},
                                             "right_ankle": {"x": 0.55, "y": 0.9}}}]},
    {"vehicles": [{"x": 0.12, "y": 0.2, "w": 0.3, "h": 0.4, "label": "car"}],
     "roofs": [{"points": [[0.12, 0.1], [0.42, 0.1], [0.42, 0.4], [0.12, 0.4]], "label": "roof"}],
     "pose": [{"label": "person", "points": {"nose": {"x": 0.505, "y": 0.1}, "left_hip": {"x": 0.45, "y": 0.51},
                                             "right_ankle": {"x": 0.55, "y": 0.9, "v": 1}}}]},
    {"vehicles": [{"x": 0.6, "y": 0.6, "w": 0.3, "h": 0.3, "label": "person"}],
     "roofs": [{"points": [[0.6, 0.6], [0.9, 0.6], [0.9, 0.9]], "label": "roof"}],
     "pose": [{"label": "person", "points": {"nose": {"x": 0.2, "y": 0.8}}}]},
]
SHAPES = {"questions": SHAPE_QUESTIONS}
# Every kind the merged submit decides beside choice (items' text is "item N": spans within it).
EVERY_KIND = {"questions": [
    {"name": "topics", "kind": "multi_choice", "labels": ["sport", "politics", "tech"]},
    {"name": "fluency", "kind": "rating", "min": 1, "max": 5},
    {"name": "summary", "kind": "text"},
    {"name": "preference", "kind": "ranking", "candidates": ["a", "b", "c"]},
    {"name": "entities", "kind": "spans", "labels": ["PER", "ORG"]},
    *SHAPE_QUESTIONS,
]}
EVERY_KIND_VALUES = [{**kinds, **shapes} for kinds, shapes in zip([
    {"topics": ["sport"], "fluency": 4, "summary": "An item.", "preference": ["a", "b", "c"],
     "entities": [{"start": 0, "end": 4, "label": "PER"}]},
    {"topics": ["sport", "tech"], "fluency": 5, "summary": "an item", "preference": ["b", "a", "c"],
     "entities": [{"start": 0, "end": 4, "label": "PER"}]},
    {"topics": ["politics"], "fluency": 2, "summary": "Something else", "preference": ["c", "b", "a"],
     "entities": [{"start": 5, "end": 6, "label": "ORG"}]},
], SHAPE_VALUES, strict=True)]
# The nine kinds in one schema: choice (the posterior) beside every other kind.
ALL_KINDS = {"questions": [{"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"]},
                           *EVERY_KIND["questions"]]}
ALL_KINDS_VALUES = [{"sentiment": s, **v} for s, v in zip(["positive", "positive", "negative"], EVERY_KIND_VALUES,
                                                           strict=True)]
# What every item holds: the text spans are within, the image the shapes are on.
IMAGE_DATA = {"text": "item 0", "image": "https://example.test/1.png"}


@pytest.fixture
def backend() -> str:
    return "postgres"


@pytest.fixture
def clock(monkeypatch):
    """A deterministic clock for the services/queue/ modules (reset per run): real time, one ms
    a call."""
    state = {"t": itertools.count(now_ms() + 10_000)}

    def reset() -> None:
        state["t"] = itertools.count(base)

    base = now_ms() + 10_000
    for info in pkgutil.iter_modules(queue_package.__path__):
        module = importlib.import_module(f"{queue_package.__name__}.{info.name}")
        if hasattr(module, "now_ms"):
            monkeypatch.setattr(module, "now_ms", lambda: next(state["t"]))
    return reset


@pytest.fixture
def statements(monkeypatch):
    """Counts statements sent on the driver's cursors (execute and executemany)."""
    count = [0]
    execute, executemany = psycopg.Cursor.execute, psycopg.Cursor.executemany

    def counted_execute(self, *a, **k):
        count[0] += 1
        return execute(self, *a, **k)

    def counted_executemany(self, *a, **k):
        count[0] += 1
        return executemany(self, *a, **k)

    monkeypatch.setattr(psycopg.Cursor, "execute", counted_execute)
    monkeypatch.setattr(psycopg.Cursor, "executemany", counted_executemany)
    return count


def _snapshot(factory, pid: int) -> dict[str, Any]:
    """The project's queue, answer, consensus and event rows with ids made relative (items by
    external_id, answers and leases by rank), timestamps as given by the clock."""
    with factory.ctx.engine.connect() as conn:
        item_rows = [dict(r) for r in conn.execute(
            sa.select(items).where(items.c.project_id == pid).order_by(items.c.id)).mappings()]
        ext = {r["id"]: r["external_id"] for r in item_rows}
        answer_rows = [dict(r) for r in conn.execute(
            sa.select(answers).where(answers.c.project_id == pid).order_by(answers.c.id)).mappings()]
        lease_rows = [dict(r) for r in conn.execute(
            sa.select(leases).where(leases.c.project_id == pid).order_by(leases.c.id)).mappings()]
        consensus_rows = [dict(r) for r in conn.execute(
            sa.select(consensus).where(consensus.c.project_id == pid)
            .order_by(consensus.c.item_id, consensus.c.question)).mappings()]
        event_rows = [dict(r) for r in conn.execute(
            sa.select(events).where(events.c.project_id == pid).order_by(events.c.id)).mappings()]
    answer_rank = {r["id"]: i for i, r in enumerate(answer_rows)}
    lease_rank = {r["id"]: i for i, r in enumerate(lease_rows)}
    for r in item_rows:
        if r["updated_at"] == r["created_at"]:
            r["updated_at"] = None  # untouched since the import (its own clock)
        del r["id"], r["project_id"], r["created_at"]
    for r in answer_rows:
        r.update(id=answer_rank[r["id"]], item_id=ext[r["item_id"]], lease_id=lease_rank.get(r["lease_id"]))
        if r["idempotency_key"]:
            r["idempotency_key"] = r["idempotency_key"].split("-", 1)[1]  # the run's prefix
        del r["project_id"]
    for r in lease_rows:
        r.update(id=lease_rank[r["id"]], item_id=ext[r["item_id"]], answer_id=answer_rank.get(r["answer_id"]))
        del r["project_id"], r["token_hash"]
    for r in consensus_rows:
        r["item_id"] = ext[r["item_id"]]
        del r["project_id"]
    for r in event_rows:
        p = dict(r["payload"])
        if "item_id" in p:
            p["item_id"] = ext[p["item_id"]]
        if "answer_id" in p:
            p["answer_id"] = answer_rank[p["answer_id"]]
        r["payload"] = p
        if not (r["kind"] == "answer.created" or r["kind"].startswith("item.")):
            r["created_at"] = None  # the import's own clock
        del r["id"], r["project_id"]
    return {"items": item_rows, "answers": answer_rows, "leases": lease_rows, "consensus": consensus_rows,
            "events": event_rows}


def _normal_result(factory, pid: int, res, ext: dict[int, str], answer_ids: dict[int, int]) -> Any:
    body = res.json()
    if res.status_code >= 400:
        return res.status_code, body.get("code"), body.get("detail")
    answer = dict(body["answer"])
    answer["id"] = answer_ids.setdefault(answer["id"], len(answer_ids))
    # The item as its annotator was shown it (a reference of theirs), by its external id.
    answer["item_id"] = ext[decode_item(factory.ctx, pid, answer["annotator_id"], answer["item_id"])]
    return res.status_code, answer, body["item_status"]


def _run(factory, monkeypatch, clock, anns, *, fast: bool, schema: dict | None, values, n_items: int,
         skills: bool, keys: bool, data: dict | None = None, **spec: Any) -> tuple[list, dict]:
    """Every annotator in turn leases and submits until no one gets work; returns the API
    results and the table snapshot. ``data``: every item's data (else "item N")."""
    monkeypatch.setattr(factory.ctx.backend, "merged_submit", fast)
    clock()
    project = factory.make_project(annotators=anns, schema=schema, **spec)
    pid = project["id"]
    factory.add_items(project, n_items, **({"data": data} if data is not None else {}))
    if skills:
        with factory.ctx.engine.begin() as conn:
            conn.execute(annotator_skills.insert(), [
                {"project_id": pid, "annotator_id": anns[0].id, "question": "sentiment", "accuracy": 0.95,
                 "confusion": [[0.95, 0.05], [0.1, 0.9]], "n_answers": 12, "method": "ds", "updated_at": 1},
                {"project_id": pid, "annotator_id": anns[1].id, "question": "sentiment", "accuracy": 0.6,
                 "confusion": None, "n_answers": 3, "method": "gold", "updated_at": 1},
            ])
            conn.execute(project_models.insert().values(project_id=pid, question="sentiment", prior=[0.3, 0.7],
                                                        method="ds", n_answers=10))
    with factory.ctx.engine.connect() as conn:
        ext = dict(conn.execute(sa.select(items.c.id, items.c.external_id).where(items.c.project_id == pid)).all())
    apis = [factory.api_as(a) for a in anns]
    results: list = []
    answer_ids: dict[int, int] = {}
    value_of = itertools.cycle(values)
    for turn in itertools.count():
        busy = False
        for i, api in enumerate(apis):
            res = api.post(f"/api/v1/projects/{pid}/next")
            if res.status_code == 204:
                continue
            busy = True
            token = res.json()["token"]
            # Keys are per annotator across projects: each run has its own.
            headers = {"Idempotency-Key": f"{fast}-k{turn}-{i}"} if keys and (turn + i) % 2 else {}
            body = {"lease_token": token, "value": next(value_of)}
            res = api.post(f"/api/v1/projects/{pid}/answers", json=body, headers=headers)
            results.append(_normal_result(factory, pid, res, ext, answer_ids))
            if headers and turn % 3 == 0:  # a retry with the key returns the original
                res = api.post(f"/api/v1/projects/{pid}/answers", json=body, headers=headers)
                results.append(_normal_result(factory, pid, res, ext, answer_ids))
        if not busy or turn > 20:
            break
    return results, _snapshot(factory, pid)


SCENARIOS: dict[str, dict[str, Any]] = {
    "one_question": {"schema": None, "values": [POS, NEG, POS, POS, NEG], "n_items": 4, "skills": False,
                     "keys": False, "overlap_min": 2, "overlap_max": 3},
    "skills_prior_and_keys": {"schema": None, "values": [POS, NEG, NEG, POS], "n_items": 3, "skills": True,
                              "keys": True, "overlap_min": 2, "overlap_max": 4},
    "two_questions": {"schema": TWO_CHOICE, "values": [{"sentiment": "positive", "topic": "a"},
                                                       {"sentiment": "negative", "topic": "a"},
                                                       {"sentiment": "positive", "topic": "c"}],
                      "n_items": 3, "skills": True, "keys": True, "overlap_min": 1, "overlap_max": 3},
    "mixed_kinds": {"schema": MIXED, "values": [{"sentiment": "positive", "score": 4},
                                                {"sentiment": "negative", "score": 2}],
                    "n_items": 2, "skills": False, "keys": False, "overlap_min": 2, "overlap_max": 3},
    "every_kind": {"schema": EVERY_KIND, "values": EVERY_KIND_VALUES, "n_items": 3, "skills": False,
                   "keys": True, "overlap_min": 2, "overlap_max": 3, "data": IMAGE_DATA},
    "shape_kinds": {"schema": SHAPES, "values": SHAPE_VALUES, "n_items": 3, "skills": False,
                    "keys": True, "overlap_min": 2, "overlap_max": 3, "data": IMAGE_DATA},
    "all_kinds": {"schema": ALL_KINDS, "values": ALL_KINDS_VALUES, "n_items": 3, "skills": True,
                  "keys": True, "overlap_min": 2, "overlap_max": 3, "data": IMAGE_DATA},
}
# Every question kind a label schema has is pinned on both paths by one scenario at least.
assert {q["kind"] for spec in SCENARIOS.values() for q in (spec["schema"] or {"questions": [{"kind": "choice"}]})[
    "questions"]} == set(LABEL_SCHEMA_KINDS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_merged_path_writes_what_the_generic_path_writes(factory, monkeypatch, clock, name):
    anns = [factory.make_user() for _ in range(4)]
    spec = SCENARIOS[name]
    fast_results, fast_rows = _run(factory, monkeypatch, clock, anns, fast=True, **spec)
    slow_results, slow_rows = _run(factory, monkeypatch, clock, anns, fast=False, **spec)
    assert fast_results and all(r[0] == 201 for r in fast_results)
    assert fast_results == slow_results
    for table in fast_rows:
        assert fast_rows[table] == slow_rows[table], table
    assert fast_rows["consensus"] and fast_rows["events"]
    assert any(r["status"] != "open" for r in fast_rows["items"])


def _lease(ctx, actor, pid):
    lease = lease_service.lease_next(ctx, actor, pid)
    assert lease is not None
    return lease


def test_common_submit_is_one_statement_after_this_process_leased(factory, statements):
    anns = [factory.make_user() for _ in range(3)]
    project = factory.make_project(annotators=anns, overlap_min=2, overlap_max=3)
    factory.add_items(project, 3)
    ctx, pid = factory.ctx, project["id"]
    # The project's pooled knowledge of unknown annotators (services/cold_start.py) costs one more
    # statement when it is due (the first decision here); held fresh, the counts are the loop's own.
    ctx.pooled[pid] = cold_start.Pooled(due_in=100, schema_key=(pid, project["updated_at"]), read_at=time.monotonic())
    counts = {}
    for case, annotator in zip(("kept", "read", "generic"), anns, strict=True):
        ctx.backend.merged_submit = case != "generic"
        try:
            lease = _lease(ctx, annotator, pid)
            if case == "read":
                ctx._lease_readings.clear()  # leased by another process, or a restart since
            before = statements[0]
            submit_service.submit_answer(ctx, annotator, pid, lease["token"], POS, 10, "key-1")
            counts[case] = statements[0] - before
        finally:
            ctx.backend.merged_submit = True
    # With the lease's reading of the item: the write alone. Without it: the read and the write,
    # each its own transaction (no BEGIN, no COMMIT). The generic path: a transaction of ~10.
    assert counts["kept"] == 1 and counts["read"] == 2
    assert counts["generic"] >= 9


def _items(factory, pid):
    with factory.ctx.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(items).where(items.c.project_id == pid)
                                              .order_by(items.c.id)).mappings()]


def _leases(factory, pid):
    with factory.ctx.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(leases).where(leases.c.project_id == pid)
                                              .order_by(leases.c.id)).mappings()]


def _count(factory, table, pid):
    with factory.ctx.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table).where(table.c.project_id == pid)).scalar()


# Answers that only the item's data refuses: a span past the item's text, a pixel box past its
# image, a ranking of candidates the item does not have.
DATA_CHECKED = {
    "spans": ({"kind": "spans", "labels": ["PER"]}, {"text": "item 0"}, [{"start": 0, "end": 50, "label": "PER"}]),
    "boxes": ({"kind": "boxes", "labels": ["car"], "coordinates": "pixel"},
              {"image": "https://example.test/1.png", "width": 100, "height": 80},
              [{"x": 90, "y": 10, "w": 50, "h": 20, "label": "car"}]),
    "ranking": ({"kind": "ranking", "source": "responses"}, {"responses": ["a", "b"]}, ["0", "2"]),
}


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("kind", sorted(DATA_CHECKED))
def test_an_answer_its_item_data_refuses_is_422_on_both_paths(factory, monkeypatch, kind, fast):
    """Submitted by the process that leased (the merged submit then has the lease's reading of
    the item): checked against the item's data as the generic path checks it."""
    monkeypatch.setattr(factory.ctx.backend, "merged_submit", fast)
    question, data, value = DATA_CHECKED[kind]
    anns = [factory.make_user()]
    project = factory.make_project(annotators=anns, schema={"questions": [{"name": "q", **question}]})
    factory.add_items(project, 1, data=data)
    ctx, pid = factory.ctx, project["id"]
    lease = _lease(ctx, anns[0], pid)
    with pytest.raises(GoldlabelError) as err:
        submit_service.submit_answer(ctx, anns[0], pid, lease["token"], {"q": value})
    assert err.value.status == 422 and err.value.code == "validation_failed"
    assert _count(factory, answers, pid) == 0
    assert submit_service.submit_answer(ctx, anns[0], pid, lease["token"], {"q": DATA_CHECKED_OK[kind]})


DATA_CHECKED_OK = {"spans": [{"start": 0, "end": 4, "label": "PER"}],
                   "boxes": [{"x": 10, "y": 10, "w": 50, "h": 20, "label": "car"}], "ranking": ["1", "0"]}


@pytest.mark.parametrize("fast", [True, False])
def test_count_refused_is_409_max_overlap_reached(factory, monkeypatch, fast):
    monkeypatch.setattr(factory.ctx.backend, "merged_submit", fast)
    anns = [factory.make_user()]
    project = factory.make_project(annotators=anns, overlap_min=2, overlap_max=2)
    factory.add_items(project, 1)
    ctx, pid = factory.ctx, project["id"]
    lease = _lease(ctx, anns[0], pid)
    # Behind the queue's back: the item is full although the lease is live.
    with factory.ctx.engine.begin() as conn:
        conn.execute(items.update().where(items.c.project_id == pid).values(reserved=0, answer_count=2))
    before = (_items(factory, pid), _leases(factory, pid), _count(factory, events, pid))
    with pytest.raises(GoldlabelError) as err:
        submit_service.submit_answer(ctx, anns[0], pid, lease["token"], POS)
    assert err.value.code == "max_overlap_reached" and err.value.status == 409
    assert err.value.detail == "the item already has its maximum number of answers"
    assert (_items(factory, pid), _leases(factory, pid), _count(factory, events, pid)) == before
    assert _count(factory, answers, pid) == 0


@pytest.mark.parametrize("path", ["kept", "read", "generic"])
@pytest.mark.parametrize("conflict_on", ["item", "key"])
def test_insert_conflict_is_409_duplicate_answer_and_rolls_back(factory, monkeypatch, path, conflict_on):
    """kept: the write runs on the lease's reading of the item, so the unique index is the
    key's only check; read: the key appears between the submit's read and its write."""
    fast = path != "generic"
    monkeypatch.setattr(factory.ctx.backend, "merged_submit", fast)
    anns = [factory.make_user()]
    project = factory.make_project(annotators=anns, overlap_min=3, overlap_max=3)
    factory.add_items(project, 2)
    ctx, pid = factory.ctx, project["id"]
    lease = _lease(ctx, anns[0], pid)
    if path == "read":
        ctx._lease_readings.clear()
    item_id = factory.item_id(anns[0], pid, lease["item"]["id"])
    other = next(r["id"] for r in _items(factory, pid) if r["id"] != item_id)
    t = now_ms()
    with factory.ctx.engine.begin() as conn:
        # An answer appears behind the queue's back: on the same item (Q2), or on another item
        # with the same Idempotency-Key, committed after this submit's key check.
        conn.execute(answers.insert().values(
            project_id=pid, item_id=item_id if conflict_on == "item" else other, annotator_id=anns[0].id,
            value=POS, status="submitted", created_at=t, updated_at=t, idempotency_key=None))
    key = None
    if conflict_on == "key":
        key = "k1"
        # The key appears on another answer after the submit's key check (as a concurrent
        # commit would), so the INSERT is what refuses: the merged write then writes nothing
        # and the generic path finds the key used by another submission.
        real = queue_pg.parse_submit_read

        def read(*a, **k):
            out = real(*a, **k)
            with factory.ctx.engine.begin() as conn:
                conn.execute(answers.update().where(answers.c.item_id == other).values(idempotency_key="k1"))
            return out

        monkeypatch.setattr(queue_pg, "parse_submit_read", read)
        if path == "kept":
            with factory.ctx.engine.begin() as conn:
                conn.execute(answers.update().where(answers.c.item_id == other).values(idempotency_key="k1"))
        if not fast:
            monkeypatch.setattr(queue_store, "fetch_answer_by_idempotency_key", lambda *a: None)
            with factory.ctx.engine.begin() as conn:
                conn.execute(answers.update().where(answers.c.item_id == other).values(idempotency_key="k1"))
    before = (_items(factory, pid), _leases(factory, pid), _count(factory, events, pid))
    with pytest.raises(GoldlabelError) as err:
        submit_service.submit_answer(ctx, anns[0], pid, lease["token"], POS, None, key)
    if fast and conflict_on == "key":
        assert err.value.code == "idempotency_key_reused" and err.value.status == 409
    else:
        assert err.value.code == "duplicate_answer" and err.value.status == 409
        assert err.value.detail == "you have already answered this item"
    # The count was rolled back (or never taken); nothing else was written.
    assert (_items(factory, pid), _leases(factory, pid), _count(factory, events, pid)) == before
    assert _count(factory, answers, pid) == 1


def _submit_outcome(ctx, pid, got, prefix, actor, token, key=None, value=POS) -> None:
    key = key and prefix + key  # Idempotency-Keys are per annotator across projects
    try:
        r = submit_service.submit_answer(ctx, actor, pid, token, value, 5, key)
        got.append(("ok", r["answer"]["value"], r["item_status"], r["answer"]["duration_ms"]))
    except GoldlabelError as exc:
        got.append(("err", exc.code, exc.status, exc.detail))


@pytest.mark.parametrize("case", ["retry_same_token", "retry_same_key", "key_reused", "skipped", "expired_late",
                                  "expired_no_slot", "gold", "wrong_annotator", "not_member"])
def test_rare_paths_answer_as_the_generic_path(factory, monkeypatch, clock, case):
    """The cases the merged path leaves to the generic statements give the same results and rows."""
    anns = [factory.make_user() for _ in range(3)]
    outsider = factory.make_user()
    outcomes = {}
    for fast in (True, False):
        monkeypatch.setattr(factory.ctx.backend, "merged_submit", fast)
        clock()
        settings = {"qualification_gold": 2, "gold_rate": 0.5} if case == "gold" else {}
        project = factory.make_project(annotators=anns, overlap_min=1 if case == "expired_no_slot" else 2,
                                       overlap_max=2, settings=settings)
        pid = project["id"]
        if case == "gold":
            # One gold item: each annotator's gold order is keyed by (project, annotator), so with
            # two the two runs (two projects) could hand ann1 a different gold item than ann0.
            factory.add_items(project, 1, gold=POS)
            factory.add_items(project, 1, start=1)
        else:
            factory.add_items(project, 2)
        ctx = factory.ctx
        got: list = []
        submit = functools.partial(_submit_outcome, ctx, pid, got, f"{fast}-")

        a = _lease(ctx, anns[0], pid)
        if case == "retry_same_token":
            submit(anns[0], a["token"])
            submit(anns[0], a["token"], value=NEG)
        elif case == "retry_same_key":
            submit(anns[0], a["token"], "k")
            submit(anns[0], a["token"], "k")
        elif case == "key_reused":
            b = _lease(ctx, anns[0], pid)
            submit(anns[0], a["token"], "k")
            submit(anns[0], b["token"], "k")
        elif case == "skipped":
            lease_service.skip_item(ctx, anns[0], pid, a["token"])
            submit(anns[0], a["token"])
        elif case in ("expired_late", "expired_no_slot"):
            with ctx.engine.begin() as conn:
                conn.execute(leases.update().where(leases.c.project_id == pid).values(expires_at=1))
            if case == "expired_no_slot":
                b = _lease(ctx, anns[1], pid)  # takes the reaped slot (target 1)
                submit(anns[1], b["token"])
            submit(anns[0], a["token"])
        elif case == "gold":
            submit(anns[0], a["token"])
            b = _lease(ctx, anns[1], pid)
            submit(anns[1], b["token"], value=NEG)
        elif case == "wrong_annotator":
            submit(anns[1], a["token"])
            submit(anns[0], "lt_nonexistent")
        elif case == "not_member":
            submit(outsider, a["token"])
        outcomes[fast] = (got, _snapshot(factory, pid))
    assert outcomes[True][0] == outcomes[False][0]
    for table in outcomes[True][1]:
        assert outcomes[True][1][table] == outcomes[False][1][table], table


def _generic_calls(monkeypatch) -> list[int]:
    """Counts submits that the generic path decided."""
    calls = [0]
    real = submit_service._submit_generic

    def counted(*a, **k):
        calls[0] += 1
        return real(*a, **k)

    monkeypatch.setattr(submit_service, "_submit_generic", counted)
    return calls


def _between_decision_and_write(monkeypatch, action) -> None:
    """Runs ``action()`` once, after the merged submit decided (on the lease's reading of the
    item or on its own read) and before its write: a concurrent commit."""
    real = merged_submit._submit_plan

    def plan(*a, **k):
        out = real(*a, **k)
        monkeypatch.setattr(merged_submit, "_submit_plan", real)
        action()
        return out

    monkeypatch.setattr(merged_submit, "_submit_plan", plan)


def _forget_readings(ctx, path: str) -> None:
    """path "read": as when another process leased (no reading of the item kept here)."""
    if path == "read":
        ctx._lease_readings.clear()


def _one_item_leased(factory, monkeypatch, path: str):
    """One annotator holding the lease of a project's only item (overlap 1), the reading kept or
    not (path), and the counter of generic submits."""
    anns = [factory.make_user()]
    project = factory.make_project(annotators=anns, overlap_min=1, overlap_max=1)
    factory.add_items(project, 1)
    ctx, pid = factory.ctx, project["id"]
    lease = _lease(ctx, anns[0], pid)
    _forget_readings(ctx, path)
    return ctx, pid, anns, lease, _generic_calls(monkeypatch)


def test_the_merged_write_builds_on_the_answers_the_read_saw(factory, monkeypatch):
    """The consensus of the merged write comes from the read's answers plus the new one: an
    answer counted before the read is in it, and the write applies (no generic path)."""
    anns = [factory.make_user() for _ in range(2)]
    project = factory.make_project(annotators=anns, overlap_min=2, overlap_max=2)
    factory.add_items(project, 1)
    ctx, pid = factory.ctx, project["id"]
    first, second = _lease(ctx, anns[0], pid), _lease(ctx, anns[1], pid)
    assert factory.item_id(anns[0], pid, first["item"]["id"]) == factory.item_id(anns[1], pid, second["item"]["id"])
    submit_service.submit_answer(ctx, anns[1], pid, second["token"], NEG)
    generic = _generic_calls(monkeypatch)
    got = submit_service.submit_answer(ctx, anns[0], pid, first["token"], POS)
    assert generic[0] == 0
    [item] = _items(factory, pid)
    assert item["answer_count"] == 2 and item["reserved"] == 0 and got["item_status"] == item["status"]
    with ctx.engine.connect() as conn:
        [row] = conn.execute(sa.select(consensus).where(consensus.c.item_id == item["id"])).mappings().all()
    assert row["contributions"] == {str(anns[0].id): "positive", str(anns[1].id): "negative"}


@pytest.mark.parametrize("path", ["kept", "read"])
def test_a_stale_decision_writes_nothing(factory, monkeypatch, path):
    """Another answer counted between the decision and the write: the write refuses. Decided on
    the lease's reading, the submit reads again and writes; decided on its own read, the
    generic path decides under lock. Either way both answers count and the consensus has both."""
    anns = [factory.make_user() for _ in range(2)]
    project = factory.make_project(annotators=anns, overlap_min=2, overlap_max=2)
    factory.add_items(project, 1)
    ctx, pid = factory.ctx, project["id"]
    first, second = _lease(ctx, anns[0], pid), _lease(ctx, anns[1], pid)
    _forget_readings(ctx, path)
    generic = _generic_calls(monkeypatch)
    writes: list[bool] = []
    real_write = queue_pg.parse_submit_write
    monkeypatch.setattr(queue_pg, "parse_submit_write", lambda rows: writes.append(bool(rows)) or real_write(rows))
    _between_decision_and_write(
        monkeypatch, lambda: submit_service.submit_answer(ctx, anns[1], pid, second["token"], NEG))
    got = submit_service.submit_answer(ctx, anns[0], pid, first["token"], POS)
    if path == "kept":
        assert writes == [True, False, True] and generic[0] == 0
    else:
        assert writes == [True, False] and generic[0] == 1
    [item] = _items(factory, pid)
    assert item["answer_count"] == 2 and item["reserved"] == 0 and got["item_status"] == item["status"]
    assert _count(factory, answers, pid) == 2
    with ctx.engine.connect() as conn:
        [row] = conn.execute(sa.select(consensus).where(consensus.c.item_id == item["id"])).mappings().all()
        kinds = [e.kind for e in conn.execute(sa.select(events.c.kind).where(events.c.project_id == pid)
                                              .order_by(events.c.id))]
    assert set(row["contributions"]) == {str(anns[0].id), str(anns[1].id)}
    assert kinds.count("answer.created") == 2


@pytest.mark.parametrize("path", ["kept", "read"])
def test_a_lease_expired_between_decision_and_write_is_a_late_submission(factory, monkeypatch, path):
    """Q7 decided by the generic path: the write refuses an expired lease."""
    ctx, pid, anns, lease, generic = _one_item_leased(factory, monkeypatch, path)

    def expire() -> None:
        with ctx.engine.begin() as conn:
            conn.execute(leases.update().where(leases.c.project_id == pid).values(expires_at=1))

    _between_decision_and_write(monkeypatch, expire)
    got = submit_service.submit_answer(ctx, anns[0], pid, lease["token"], POS)
    assert generic[0] == 1 and got["answer"]["value"] == POS  # the slot was still free: taken
    [item] = _items(factory, pid)
    assert item["answer_count"] == 1 and item["reserved"] == 0
    assert [r["status"] for r in _leases(factory, pid)] == ["submitted"]


@pytest.mark.parametrize("path", ["kept", "read"])
@pytest.mark.parametrize("change", ["priority", "updated_at", "membership"])
def test_the_write_waits_for_the_item_lock_and_rechecks(factory, monkeypatch, change, path):
    """The write locks the lease and the item: a transaction holding the item row delays it
    until COMMIT, and a change of what the decision was made on (the item's last change, the
    caller's membership) makes it refuse; the submit then reads again or goes generic."""
    ctx, pid, anns, lease, generic = _one_item_leased(factory, monkeypatch, path)
    holding, release = threading.Event(), threading.Event()

    if change == "membership":
        # Removed before the write began (the write's snapshot): it refuses, and the submit's
        # own read or the generic path answers 404.
        def remove() -> None:
            with ctx.engine.begin() as conn:
                conn.execute(project_members.delete().where(project_members.c.project_id == pid))

        _between_decision_and_write(monkeypatch, remove)
        with pytest.raises(GoldlabelError) as err:
            submit_service.submit_answer(ctx, anns[0], pid, lease["token"], POS)
        assert err.value.status == 404 and err.value.code == "not_found"
        assert _count(factory, answers, pid) == 0 and _items(factory, pid)[0]["reserved"] == 1
        return

    def hold() -> None:
        with ctx.engine.begin() as conn:
            conn.execute(items.update().where(items.c.project_id == pid).values(
                **({"updated_at": items.c.updated_at + 1} if change == "updated_at" else {"priority": 5})))
            holding.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    _between_decision_and_write(monkeypatch, lambda: (holder.start(), holding.wait(5)))
    threading.Timer(0.3, release.set).start()
    started = time.monotonic()
    got = submit_service.submit_answer(ctx, anns[0], pid, lease["token"], POS)
    holder.join()
    assert time.monotonic() - started >= 0.25  # it waited for the lock
    # A changed item: decided on the lease's reading, read again and written; decided on the
    # submit's own read, decided by the generic path.
    assert generic[0] == (1 if change == "updated_at" and path == "read" else 0)
    [item] = _items(factory, pid)
    assert item["answer_count"] == 1 and got["item_status"] == item["status"]
    assert _count(factory, answers, pid) == 1


def test_a_non_finite_consensus_is_written_by_the_generic_path(factory, monkeypatch):
    anns = [factory.make_user()]
    project = factory.make_project(annotators=anns)
    factory.add_items(project, 1)
    ctx, pid = factory.ctx, project["id"]
    real = consensus_service.decide_after_answer

    def nan_confidence(*a, **k):
        status, target, rows = real(*a, **k)
        return status, target, [{**r, "confidence": math.nan} for r in rows]

    monkeypatch.setattr(consensus_service, "decide_after_answer", nan_confidence)
    generic = _generic_calls(monkeypatch)
    lease = _lease(ctx, anns[0], pid)
    submit_service.submit_answer(ctx, anns[0], pid, lease["token"], POS)
    assert generic[0] == 1
    with ctx.engine.connect() as conn:
        [row] = conn.execute(sa.select(consensus).where(consensus.c.project_id == pid)).mappings().all()
    assert math.isnan(row["confidence"])


@pytest.mark.parametrize("name", ["mixed_kinds", "every_kind", "shape_kinds", "all_kinds"])
def test_every_question_kind_takes_the_merged_path(factory, monkeypatch, clock, name):
    """Answers to any kind of question are decided by the merged submit: the generic path runs
    only for the exceptions (here none: no retries, no expired leases)."""
    anns = [factory.make_user() for _ in range(3)]
    generic = _generic_calls(monkeypatch)
    results, rows = _run(factory, monkeypatch, clock, anns, fast=True, **{**SCENARIOS[name], "keys": False})
    assert results and all(r[0] == 201 for r in results)
    assert generic == [0]
    assert rows["consensus"] and any(r["status"] != "open" for r in rows["items"])
