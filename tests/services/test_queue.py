"""The work queue's invariants Q1-Q8 (ARCHITECTURE.md), each on SQLite and PostgreSQL.

Time is simulated by moving ``leases.expires_at`` in the database, never by sleeping.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from goldlabel.config import Settings
from goldlabel.storage.engine import create_engine, now_ms
from goldlabel.storage.tables import answers, items, leases

POS = {"sentiment": "positive"}
NEG = {"sentiment": "negative"}


# ---------------------------------------------------------------- helpers


def nxt(api, pid: int):
    return api.post(f"/api/v1/projects/{pid}/next")


def lease(api, pid: int) -> dict:
    res = nxt(api, pid)
    assert res.status_code == 200, res.text
    return res.json()


def submit(api, pid: int, token: str, value: dict = POS, **headers: str):
    return api.post(f"/api/v1/projects/{pid}/answers", json={"lease_token": token, "value": value}, headers=headers)


def item_of(factory, ann, pid: int, lease_body: dict) -> int:
    """The id of the item a lease showed ``ann`` (by its opaque reference: services/item_refs.py)."""
    return factory.item_id(ann, pid, lease_body["item"]["id"])


def code(res) -> str:
    return res.json()["code"]


def setup(factory, n_annotators: int = 2, n_items: int = 1, **spec: Any):
    anns = [factory.make_user() for _ in range(n_annotators)]
    project = factory.make_project(annotators=anns, **spec)
    if n_items:
        factory.add_items(project, n_items)
    return project, project["id"], [factory.api_as(a) for a in anns], anns


def item_rows(factory, pid: int) -> list[dict]:
    with factory.ctx.engine.connect() as conn:
        q = sa.select(items).where(items.c.project_id == pid).order_by(items.c.id)
        return [dict(r) for r in conn.execute(q).mappings()]


def expire_leases(factory, **where: Any) -> None:
    """Simulate the passing of time: leases matching ``where`` expired a second ago."""
    q = leases.update().values(expires_at=now_ms() - 1000)
    for col, val in where.items():
        q = q.where(getattr(leases.c, col) == val)
    with factory.ctx.engine.begin() as conn:
        conn.execute(q)


def check_books(factory, pid: int) -> None:
    """The counters on items match the rows they count (answers, live reservations)."""
    with factory.ctx.engine.connect() as conn:
        for it in conn.execute(sa.select(items).where(items.c.project_id == pid)).mappings():
            n_answers = conn.execute(
                sa.select(sa.func.count()).select_from(answers).where(answers.c.item_id == it["id"])
            ).scalar()
            n_active = conn.execute(
                sa.select(sa.func.count())
                .select_from(leases)
                .where(leases.c.item_id == it["id"], leases.c.status == "active")
            ).scalar()
            assert it["answer_count"] == n_answers, it
            assert it["reserved"] == n_active, it
            assert it["answer_count"] <= it["overlap_max"]
            assert it["answer_count"] + it["reserved"] <= it["overlap_max"]


# ---------------------------------------------------------------- Q1


def test_q1_never_more_than_max_overlap(factory):
    _, pid, apis, _ = setup(factory, 4, 1, overlap_min=2, overlap_max=3)
    # Two disagree: the tie raises the target to 3 (the max); a third breaks it; a fourth gets nothing.
    a, b, c, d = apis
    la, lb = lease(a, pid), lease(b, pid)
    assert nxt(c, pid).status_code == 204  # both needed slots are leased (Q3)
    assert submit(a, pid, la["token"], POS).json()["item_status"] == "open"
    assert submit(b, pid, lb["token"], NEG).json()["item_status"] == "open"
    lc = lease(c, pid)
    assert submit(c, pid, lc["token"], POS).json()["item_status"] != "open"  # final or review: max reached
    assert nxt(d, pid).status_code == 204
    [row] = item_rows(factory, pid)
    assert row["answer_count"] == 3 == row["overlap_max"]
    check_books(factory, pid)


def test_q1_tie_at_max_goes_to_review_and_stops_serving(factory):
    _, pid, apis, _ = setup(factory, 3, 1, overlap_min=2, overlap_max=2)
    la, lb = lease(apis[0], pid), lease(apis[1], pid)
    submit(apis[0], pid, la["token"], POS)
    assert submit(apis[1], pid, lb["token"], NEG).json()["item_status"] == "needs_review"
    assert nxt(apis[2], pid).status_code == 204
    check_books(factory, pid)


def test_q1_database_check_rejects_direct_update(factory):
    _, pid, _, _ = setup(factory, 1, 1, overlap_min=2, overlap_max=3)
    [row] = item_rows(factory, pid)
    with pytest.raises(sa.exc.IntegrityError), factory.ctx.engine.begin() as conn:
        conn.execute(items.update().where(items.c.id == row["id"]).values(answer_count=4))
    with pytest.raises(sa.exc.IntegrityError), factory.ctx.engine.begin() as conn:
        conn.execute(items.update().where(items.c.id == row["id"]).values(answer_count=-1))
    [after] = item_rows(factory, pid)
    assert after["answer_count"] == 0


# ---------------------------------------------------------------- Q2


def _direct_answer(conn, pid: int, item_id: int, annotator_id: int) -> None:
    t = now_ms()
    conn.execute(
        answers.insert().values(
            project_id=pid, item_id=item_id, annotator_id=annotator_id, value=POS, status="submitted",
            created_at=t, updated_at=t,
        )
    )


def test_q2_unique_index_rejects_duplicate_insert(factory):
    _, pid, apis, anns = setup(factory, 1, 1, overlap_min=3, overlap_max=3)
    la = lease(apis[0], pid)
    assert submit(apis[0], pid, la["token"]).status_code == 201
    item_id = item_of(factory, anns[0], pid, la)
    with pytest.raises(sa.exc.IntegrityError), factory.ctx.engine.begin() as conn:
        _direct_answer(conn, pid, item_id, anns[0].id)


def test_q2_api_409_duplicate_answer_and_nothing_half_written(factory):
    _, pid, apis, anns = setup(factory, 1, 1, overlap_min=3, overlap_max=3)
    la = lease(apis[0], pid)
    item_id = item_of(factory, anns[0], pid, la)
    # An answer by the same annotator appears behind the queue's back (another path, a bug...):
    with factory.ctx.engine.begin() as conn:
        _direct_answer(conn, pid, item_id, anns[0].id)
        conn.execute(items.update().where(items.c.id == item_id).values(answer_count=1))
    res = submit(apis[0], pid, la["token"])
    assert res.status_code == 409 and code(res) == "duplicate_answer"
    [row] = item_rows(factory, pid)
    assert row["answer_count"] == 1 and row["reserved"] == 1  # the failed submit rolled back whole


def test_q2_annotator_never_served_an_item_twice(factory):
    _, pid, apis, _ = setup(factory, 1, 3, overlap_min=3, overlap_max=3)
    seen = []
    while (res := nxt(apis[0], pid)).status_code == 200:
        body = res.json()
        seen.append(body["item"]["id"])
        assert submit(apis[0], pid, body["token"]).status_code == 201
    assert len(seen) == len(set(seen)) == 3


# ---------------------------------------------------------------- Q3


def test_q3_leases_plus_answers_never_exceed_needed_overlap(factory):
    _, pid, apis, _ = setup(factory, 4, 1, overlap_min=2, overlap_max=4)
    a, b, c, _d = apis
    la = lease(a, pid)
    lease(b, pid)
    assert nxt(c, pid).status_code == 204  # target 2: one answer-slot each for a and b
    [row] = item_rows(factory, pid)
    assert row["reserved"] == 2 and row["answer_count"] == 0
    assert submit(a, pid, la["token"]).status_code == 201
    assert nxt(c, pid).status_code == 204  # 1 answer + 1 lease = target
    check_books(factory, pid)


def test_q3_one_live_lease_per_item_and_annotator(factory):
    _, pid, apis, anns = setup(factory, 1, 3, overlap_min=2, overlap_max=2)
    got = [item_of(factory, anns[0], pid, lease(apis[0], pid)) for _ in range(3)]
    assert len(set(got)) == 3  # never the same item twice while the lease is live
    assert nxt(apis[0], pid).status_code in (200, 204)
    t = now_ms()
    with pytest.raises(sa.exc.IntegrityError), factory.ctx.engine.begin() as conn:
        conn.execute(
            leases.insert().values(
                project_id=pid, item_id=got[0], annotator_id=anns[0].id, token_hash="x" * 64,
                status="active", created_at=t, expires_at=t + 60_000,
            )
        )
    check_books(factory, pid)


def test_q3_database_check_rejects_over_reservation(factory):
    _, pid, _, _ = setup(factory, 1, 1, overlap_min=2, overlap_max=2)
    [row] = item_rows(factory, pid)
    with pytest.raises(sa.exc.IntegrityError), factory.ctx.engine.begin() as conn:
        conn.execute(items.update().where(items.c.id == row["id"]).values(answer_count=1, reserved=2))


# ---------------------------------------------------------------- Q4


def test_q4_acknowledged_answer_is_committed(factory):
    _, pid, apis, anns = setup(factory, 1, 1)
    la = lease(apis[0], pid)
    res = submit(apis[0], pid, la["token"], NEG)
    assert res.status_code == 201
    answer_id = res.json()["answer"]["id"]
    # A brand-new engine (new connections, nothing shared with the app) sees it.
    engine = create_engine(Settings(database_url=factory.ctx.settings.database_url))
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.select(answers).where(answers.c.id == answer_id)).mappings().one()
            item = conn.execute(sa.select(items).where(items.c.id == row["item_id"])).mappings().one()
    finally:
        engine.dispose()
    assert row["annotator_id"] == anns[0].id and row["value"] == NEG
    assert item["answer_count"] == 1 and item["reserved"] == 0


# ---------------------------------------------------------------- Q5


def test_q5_retry_with_same_lease_token_returns_original(factory):
    _, pid, apis, _ = setup(factory, 1, 1, overlap_min=2, overlap_max=2)
    la = lease(apis[0], pid)
    first = submit(apis[0], pid, la["token"], POS)
    again = submit(apis[0], pid, la["token"], NEG)  # a retry: the original result, not a new answer
    assert first.status_code == 201 and again.status_code == 201
    assert again.json()["answer"] == first.json()["answer"]
    assert again.json()["answer"]["value"] == POS
    [row] = item_rows(factory, pid)
    assert row["answer_count"] == 1
    check_books(factory, pid)


def test_q5_idempotency_key_of_another_submission_is_409(factory):
    _, pid, apis, _ = setup(factory, 1, 2, overlap_min=2, overlap_max=2)
    la, lb = lease(apis[0], pid), lease(apis[0], pid)
    assert submit(apis[0], pid, la["token"], **{"Idempotency-Key": "k"}).status_code == 201
    res = submit(apis[0], pid, lb["token"], **{"Idempotency-Key": "k"})
    assert res.status_code == 409 and code(res) == "idempotency_key_reused"
    assert submit(apis[0], pid, lb["token"], **{"Idempotency-Key": "k2"}).status_code == 201
    check_books(factory, pid)


def test_q5_retry_with_idempotency_key_returns_original(factory):
    _, pid, apis, _ = setup(factory, 1, 2, overlap_min=2, overlap_max=2)
    la = lease(apis[0], pid)
    first = submit(apis[0], pid, la["token"], POS, **{"Idempotency-Key": "req-1"})
    again = submit(apis[0], pid, la["token"], POS, **{"Idempotency-Key": "req-1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    with factory.ctx.engine.connect() as conn:
        assert conn.execute(sa.select(answers.c.idempotency_key)).scalars().all() == ["req-1"]
    check_books(factory, pid)


def test_q5_concurrent_retries_of_one_submission_all_get_the_original(factory):
    """Clients that time out retry while the first request is still running: every one of them
    gets the original answer (the lease is locked, the retries wait and read it as submitted)."""
    import threading

    from goldlabel.services.queue import submit as submit_service

    _, pid, apis, anns = setup(factory, 1, 1, overlap_min=2, overlap_max=2)
    token = lease(apis[0], pid)["token"]
    barrier = threading.Barrier(4)
    results: list[Any] = []

    def go() -> None:
        barrier.wait()
        try:
            results.append(submit_service.submit_answer(factory.ctx, anns[0], pid, token, POS)["answer"]["id"])
        except Exception as exc:  # noqa: BLE001
            results.append(exc)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and isinstance(results[0], int), results
    check_books(factory, pid)


# ---------------------------------------------------------------- Q6


def test_q6_expired_lease_returns_item_to_queue(factory):
    _, pid, apis, anns = setup(factory, 2, 1, overlap_min=1, overlap_max=1, lease_ttl_s=5)
    la = lease(apis[0], pid)
    assert la["expires_at"] - now_ms() <= 5000
    assert nxt(apis[1], pid).status_code == 204
    expire_leases(factory, annotator_id=anns[0].id)
    lb = lease(apis[1], pid)  # the claim reaps the expired lease: no sleeper needed
    assert item_of(factory, anns[1], pid, lb) == item_of(factory, anns[0], pid, la)
    check_books(factory, pid)
    assert submit(apis[1], pid, lb["token"]).status_code == 201
    check_books(factory, pid)


def test_q6_expired_lease_can_come_back_to_the_same_annotator(factory):
    _, pid, apis, _ = setup(factory, 1, 1, overlap_min=1, overlap_max=1, lease_ttl_s=5)
    la = lease(apis[0], pid)
    expire_leases(factory)
    lb = lease(apis[0], pid)
    assert lb["item"]["id"] == la["item"]["id"] and lb["token"] != la["token"]
    assert submit(apis[0], pid, lb["token"]).status_code == 201
    check_books(factory, pid)


# ---------------------------------------------------------------- Q7


def test_q7_late_submission_accepted_while_slot_free(factory):
    _, pid, apis, _ = setup(factory, 1, 1, overlap_min=1, overlap_max=1, lease_ttl_s=5)
    la = lease(apis[0], pid)
    expire_leases(factory)
    res = submit(apis[0], pid, la["token"])  # not reaped yet: its own slot is still free
    assert res.status_code == 201, res.text
    check_books(factory, pid)
    [row] = item_rows(factory, pid)
    assert row["answer_count"] == 1 and row["reserved"] == 0


def test_q7_late_submission_after_reap_accepted_while_slot_free(factory):
    _, pid, apis, anns = setup(factory, 2, 1, overlap_min=2, overlap_max=2, lease_ttl_s=5)
    la = lease(apis[0], pid)
    expire_leases(factory)
    lb = lease(apis[1], pid)  # reaps a's lease and takes one of the two slots; one stays free
    assert item_of(factory, anns[1], pid, lb) == item_of(factory, anns[0], pid, la)
    with factory.ctx.engine.connect() as conn:
        assert conn.execute(sa.select(leases.c.status).where(leases.c.annotator_id == anns[0].id)).scalar() == "expired"
    res = submit(apis[0], pid, la["token"])
    assert res.status_code == 201, res.text
    check_books(factory, pid)
    assert nxt(apis[0], pid).status_code == 204
    assert submit(apis[1], pid, lb["token"]).status_code == 201
    [row] = item_rows(factory, pid)
    assert row["answer_count"] == 2
    check_books(factory, pid)


def test_q7_late_submission_rejected_when_no_slot(factory):
    _, pid, apis, _ = setup(factory, 2, 1, overlap_min=1, overlap_max=1, lease_ttl_s=5)
    la = lease(apis[0], pid)
    expire_leases(factory)
    lb = lease(apis[1], pid)
    res = submit(apis[0], pid, la["token"])
    assert res.status_code == 409 and code(res) == "lease_expired"
    assert submit(apis[1], pid, lb["token"]).status_code == 201
    res = submit(apis[0], pid, la["token"])
    assert res.status_code == 409 and code(res) == "lease_expired"
    [row] = item_rows(factory, pid)
    assert row["answer_count"] == 1
    check_books(factory, pid)


# ---------------------------------------------------------------- Q8

GOLD_IDS = ("GOLDSECRET-a", "GOLDSECRET-b")


def _keys(obj: Any, prefix: str = "") -> set[str]:
    if isinstance(obj, dict):
        out = set()
        for k, v in obj.items():
            out.add(prefix + k)
            if k != "data":  # the item's own data is the customer's, and identical in shape here
                out |= _keys(v, prefix + k + ".")
        return out
    if isinstance(obj, list):
        return set().union(*(_keys(v, prefix + "[].") for v in obj)) if obj else {prefix + "[]"}
    return set()


def _assert_no_gold(text: str) -> None:
    low = text.lower()
    assert "is_gold" not in low and "gold" not in low, text
    assert "goldsecret" not in low


def test_q8_gold_invisible_to_annotators(factory):
    ann = factory.make_user()
    project = factory.make_project(annotators=[ann], overlap_min=1, overlap_max=1,
                                   settings={"qualification_gold": 2, "gold_rate": 0.5, "target_confidence": 0.6})
    pid = project["id"]
    manager = factory.api_as(project["manager"])
    # The annotator agrees with the gold, so their skill stays high and their answers carry weight.
    gold = [{"external_id": g, "data": {"text": f"item {i}"}, "gold": POS} for i, g in enumerate(GOLD_IDS)]
    assert manager.post(f"/api/v1/projects/{pid}/items", json=gold).status_code == 201
    factory.add_items(project, 3)
    api = factory.api_as(ann)
    served: list[tuple[dict, dict]] = []
    while (res := nxt(api, pid)).status_code == 200:
        _assert_no_gold(res.text)
        body = res.json()
        result = submit(api, pid, body["token"], POS)
        assert result.status_code == 201
        _assert_no_gold(result.text)
        served.append((body, result.json()))
    assert len(served) == 5
    gold_db_ids = {r["id"] for r in item_rows(factory, pid) if r["is_gold"]}
    gold_served = [s for s in served if item_of(factory, ann, pid, s[0]) in gold_db_ids]
    normal_served = [s for s in served if item_of(factory, ann, pid, s[0]) not in gold_db_ids]
    assert len(gold_served) == 2 and len(normal_served) == 3
    assert {item_of(factory, ann, pid, s[0]) for s in served[:2]} == gold_db_ids  # qualification gold comes first
    # The item ids shown are references: no integer, none an item's id.
    assert all(isinstance(s[0]["item"]["id"], str) and not s[0]["item"]["id"].isdigit() for s in served)
    # Same shape, key for key, for the lease and for the submit result.
    assert {json.dumps(sorted(_keys(s[0]))) for s in served} == {json.dumps(sorted(_keys(served[0][0])))}
    assert {json.dumps(sorted(_keys(s[1]))) for s in served} == {json.dumps(sorted(_keys(served[0][1])))}
    # Nothing in the item status tells them apart either: one answer of default skill (0.7)
    # passes the target confidence of 0.6, so a normal item is final; so must a gold one look.
    assert {s[1]["item_status"] for s in gold_served} == {s[1]["item_status"] for s in normal_served} == {"final"}
    mine = api.get(f"/api/v1/projects/{pid}/my-answers")
    assert mine.status_code == 200
    _assert_no_gold(mine.text)
    rows = mine.json()["items"]
    assert len(rows) == 5
    assert len({json.dumps(sorted(_keys(r))) for r in rows}) == 1
    assert {r["item_status"] for r in rows} == {"final"}
    # A retry of a gold submission returns the same, gold-free result.
    token = served[0][0]["token"]
    retry = submit(api, pid, token, POS)
    assert retry.status_code == 201 and retry.json() == served[0][1]


# ---------------------------------------------------------------- skip, release, prefetch, edit, scoping


def test_skip_never_reserves_to_that_annotator(factory):
    _, pid, apis, anns = setup(factory, 2, 1, overlap_min=2, overlap_max=2)
    la = lease(apis[0], pid)
    assert apis[0].post(f"/api/v1/projects/{pid}/skip", json={"lease_token": la["token"]}).status_code == 204
    assert nxt(apis[0], pid).status_code == 204
    check_books(factory, pid)
    lb = lease(apis[1], pid)
    assert item_of(factory, anns[1], pid, lb) == item_of(factory, anns[0], pid, la)
    res = submit(apis[0], pid, la["token"])
    assert res.status_code == 409 and code(res) == "lease_skipped"
    expire_leases(factory)
    assert nxt(apis[0], pid).status_code == 204  # not even after time passes
    check_books(factory, pid)


def test_release_gives_item_back_even_to_the_same_annotator(factory):
    _, pid, apis, _ = setup(factory, 2, 1, overlap_min=1, overlap_max=1)
    la = lease(apis[0], pid)
    assert nxt(apis[1], pid).status_code == 204
    assert apis[0].post(f"/api/v1/projects/{pid}/release", json={"lease_token": la["token"]}).status_code == 204
    check_books(factory, pid)
    again = lease(apis[0], pid)
    assert again["item"]["id"] == la["item"]["id"]
    assert submit(apis[0], pid, la["token"]).status_code == 404  # the released token is gone
    assert submit(apis[0], pid, again["token"]).status_code == 201
    res = apis[0].post(f"/api/v1/projects/{pid}/release", json={"lease_token": again["token"]})
    assert res.status_code == 409 and code(res) == "lease_submitted"
    check_books(factory, pid)


def test_max_leases_per_annotator_hands_back_the_oldest(factory):
    _, pid, apis, _ = setup(factory, 1, 5, overlap_min=1, overlap_max=1,
                                  settings={"max_leases_per_annotator": 2})
    first, second = lease(apis[0], pid), lease(apis[0], pid)
    assert first["item"]["id"] != second["item"]["id"]
    third = lease(apis[0], pid)
    assert third["item"]["id"] == first["item"]["id"] and third["token"] != first["token"]
    assert third["item"] == first["item"]
    check_books(factory, pid)
    assert submit(apis[0], pid, first["token"]).status_code == 404  # rotated away
    assert submit(apis[0], pid, third["token"]).status_code == 201
    fourth = lease(apis[0], pid)
    assert fourth["item"]["id"] not in (first["item"]["id"], second["item"]["id"])
    check_books(factory, pid)


def test_edit_answer_while_open_then_409_once_final(factory):
    # two agreeing answers of default skill 0.7: P = 0.845 >= 0.8
    _, pid, apis, _ = setup(factory, 2, 1, overlap_min=2, overlap_max=2, settings={"target_confidence": 0.8})
    la = lease(apis[0], pid)
    answer_id = submit(apis[0], pid, la["token"], NEG).json()["answer"]["id"]
    res = apis[0].put(f"/api/v1/projects/{pid}/my-answers/{answer_id}", json={"value": POS})
    assert res.status_code == 200, res.text
    assert res.json()["value"] == POS
    # someone else cannot edit it
    assert apis[1].put(f"/api/v1/projects/{pid}/my-answers/{answer_id}", json={"value": NEG}).status_code == 404
    lb = lease(apis[1], pid)
    assert submit(apis[1], pid, lb["token"], POS).json()["item_status"] == "final"
    res = apis[0].put(f"/api/v1/projects/{pid}/my-answers/{answer_id}", json={"value": NEG})
    assert res.status_code == 409 and code(res) == "item_closed"
    with factory.ctx.engine.connect() as conn:
        assert conn.execute(sa.select(answers.c.value).where(answers.c.id == answer_id)).scalar() == POS


def test_other_annotators_lease_tokens_are_404(factory):
    _, pid, apis, _ = setup(factory, 2, 1, overlap_min=2, overlap_max=2)
    la = lease(apis[0], pid)
    for path in ("answers", "skip", "release"):
        body = {"lease_token": la["token"]} | ({"value": POS} if path == "answers" else {})
        res = apis[1].post(f"/api/v1/projects/{pid}/{path}", json=body)
        assert res.status_code == 404 and code(res) == "not_found", (path, res.text)
    # and a token of another project is unknown in this one
    other = factory.make_project(annotators=[])
    res = apis[0].post(f"/api/v1/projects/{other['id']}/answers", json={"lease_token": la["token"], "value": POS})
    assert res.status_code == 404
    assert submit(apis[0], pid, la["token"]).status_code == 201


def test_non_member_gets_404_on_next(factory):
    _, pid, _, _ = setup(factory, 1, 1)
    outsider = factory.api_as(factory.make_user())
    res = nxt(outsider, pid)
    assert res.status_code == 404 and code(res) == "not_found"
    assert outsider.get(f"/api/v1/projects/{pid}/my-answers").status_code == 404
    check_books(factory, pid)


def test_priority_then_completion_order_through_the_database(factory):
    project, pid, apis, anns = setup(factory, 3, 0, overlap_min=2, overlap_max=2)
    manager = factory.api_as(project["manager"])
    rows = [{"external_id": f"p{i}", "data": {"text": str(i)}, "priority": p} for i, p in enumerate([0, 5, 0, 1])]
    manager.post(f"/api/v1/projects/{pid}/items", json=rows)
    by_ext = {r["external_id"]: r["id"] for r in item_rows(factory, pid)}
    la = lease(apis[0], pid)
    assert item_of(factory, anns[0], pid, la) == by_ext["p1"]  # priority
    submit(apis[0], pid, la["token"])
    lb = lease(apis[1], pid)
    assert item_of(factory, anns[1], pid, lb) == by_ext["p1"]
    submit(apis[1], pid, lb["token"])
    # p3 (priority 1) next; after one answer on p0 it outranks p2 (closest to completion), FIFO otherwise
    assert [item_of(factory, anns[0], pid, lease(apis[0], pid)) for _ in range(3)] == [
        by_ext["p3"], by_ext["p0"], by_ext["p2"]]
