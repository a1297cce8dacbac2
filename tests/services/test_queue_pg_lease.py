"""PostgreSQL: the lease in one statement (storage/queue_pg.py ``lease``) and its way back to
the general path of ``services.queue.lease_next`` for everything it does not decide itself.

Each refusal must leave the database as it was (nothing reaped, nothing claimed), since the
statement commits on its own; each case the statement hands back must end as the general
path ends. Time is simulated by moving ``leases.expires_at``, as in test_queue.py.
"""

from __future__ import annotations

import psycopg
import psycopg._queries
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from test_queue import POS, check_books, code, expire_leases, item_rows, lease, nxt, setup, submit

from goldlabel.storage import aio, queue_pg
from goldlabel.storage.engine import now_ms, statement_tx, write_tx
from goldlabel.storage.tables import annotator_stats, items, leases

pytestmark = pytest.mark.postgres


@pytest.fixture
def backend() -> str:
    return "postgres"


@pytest.fixture
def cursor_calls(monkeypatch):
    """SQL sent on the driver's cursors and as prepared statements on the event loop
    (storage.aio), in order."""
    sent: list[str] = []
    execute, aexecute = psycopg.Cursor.execute, aio._Conn.execute

    def counted(self, query, *a, **k):
        sent.append(str(query))
        return execute(self, query, *a, **k)

    async def acounted(self, native, values):
        sent.append(native.sql.decode())
        return await aexecute(self, native, values)

    monkeypatch.setattr(psycopg.Cursor, "execute", counted)
    monkeypatch.setattr(aio._Conn, "execute", acounted)
    return sent


def _lease_rows(factory, pid: int) -> list[dict]:
    with factory.ctx.engine.connect() as conn:
        q = sa.select(leases).where(leases.c.project_id == pid).order_by(leases.c.id)
        return [dict(r) for r in conn.execute(q).mappings()]


def test_common_lease_is_one_statement_and_lands_as_the_general_path(factory, cursor_calls, monkeypatch):
    _, pid, apis, anns = setup(factory, 1, 3, overlap_min=1, overlap_max=1, lease_ttl_s=60)
    lease(apis[0], pid)  # the first request of a token goes through the app (token check)
    cursor_calls.clear()
    got = lease(apis[0], pid)
    assert [s for s in cursor_calls if "WITH p AS" in s] and len(cursor_calls) == 1, cursor_calls
    # The same request on the general path, in a twin project: the same item view and books.
    monkeypatch.setattr(factory.ctx.backend, "one_statement_lease", False)
    _, pid2, apis2, _ = setup(factory, 1, 3, overlap_min=1, overlap_max=1, lease_ttl_s=60)
    lease(apis2[0], pid2)
    twin = lease(apis2[0], pid2)
    assert got["item"]["data"] == twin["item"]["data"] == {"text": "item 1"}
    assert set(got) == set(twin) and got["item"].keys() == twin["item"].keys()
    assert 59_000 <= got["expires_at"] - now_ms() <= 60_000
    [row] = [r for r in _lease_rows(factory, pid) if r["item_id"] == factory.item_id(anns[0], pid, got["item"]["id"])]
    assert (row["status"], row["annotator_id"], row["expires_at"]) == ("active", anns[0].id, got["expires_at"])
    check_books(factory, pid)
    assert submit(apis[0], pid, got["token"]).status_code == 201
    check_books(factory, pid)


def test_a_non_member_reaps_and_claims_nothing(factory):
    _, pid, apis, _ = setup(factory, 1, 2, overlap_min=1, overlap_max=1, lease_ttl_s=5)
    lease(apis[0], pid)
    expire_leases(factory)
    outsider = factory.api_as(factory.make_user())
    res = nxt(outsider, pid)
    assert res.status_code == 404 and code(res) == "not_found"
    [row] = _lease_rows(factory, pid)
    assert row["status"] == "active"  # not reaped by a caller without access
    assert sum(r["reserved"] for r in item_rows(factory, pid)) == 1
    assert nxt(outsider, 10**12).status_code == 404  # no such project


def test_a_suspended_annotator_reaps_and_claims_nothing(factory):
    _, pid, apis, anns = setup(factory, 2, 2, overlap_min=1, overlap_max=1, lease_ttl_s=5)
    lease(apis[0], pid)
    expire_leases(factory)
    with factory.ctx.engine.begin() as conn:
        conn.execute(annotator_stats.insert().values(project_id=pid, annotator_id=anns[1].id, status="suspended",
                                                     updated_at=now_ms()))
    res = nxt(apis[1], pid)
    assert res.status_code == 403 and code(res) == "annotator_suspended"
    assert [r["status"] for r in _lease_rows(factory, pid)] == ["active"]
    assert sum(r["reserved"] for r in item_rows(factory, pid)) == 1


def test_the_maximum_of_live_leases_hands_back_the_oldest(factory):
    _, pid, apis, _ = setup(factory, 1, 5, overlap_min=1, overlap_max=1, settings={"max_leases_per_annotator": 2})
    first, second = lease(apis[0], pid), lease(apis[0], pid)
    again = lease(apis[0], pid)
    assert again["item"]["id"] == first["item"]["id"] != second["item"]["id"]
    assert again["token"] != first["token"]
    assert len(_lease_rows(factory, pid)) == 2
    check_books(factory, pid)
    assert submit(apis[0], pid, again["token"]).status_code == 201
    third = lease(apis[0], pid)  # one slot free again: a new item
    assert third["item"]["id"] not in (first["item"]["id"], second["item"]["id"])
    check_books(factory, pid)


def test_a_reap_that_frees_the_only_work_still_leases_it(factory):
    """The statement never claims an item it reaps (one row is not updated twice in one
    statement); the general path then claims it in the same call."""
    _, pid, apis, anns = setup(factory, 2, 1, overlap_min=2, overlap_max=2, lease_ttl_s=5)
    la = lease(apis[0], pid)
    expire_leases(factory)
    lb = lease(apis[1], pid)
    assert factory.item_id(anns[1], pid, lb["item"]["id"]) == factory.item_id(anns[0], pid, la["item"]["id"])
    assert [r["status"] for r in _lease_rows(factory, pid)] == ["expired", "active"]
    check_books(factory, pid)


def test_a_gold_stream_takes_the_general_path(factory):
    ann = factory.make_user()
    project = factory.make_project(annotators=[ann], overlap_min=1, overlap_max=1,
                                   settings={"qualification_gold": 1, "gold_rate": 0.0})
    pid = project["id"]
    manager = factory.api_as(project["manager"])
    gold = [{"external_id": "g1", "data": {"text": "gold item"}, "gold": POS}]
    assert manager.post(f"/api/v1/projects/{pid}/items", json=gold).status_code == 201
    factory.add_items(project, 2)
    got = lease(factory.api_as(ann), pid)
    assert got["item"]["data"] == {"text": "gold item"}  # qualification gold comes first
    check_books(factory, pid)


def test_the_connection_goes_back_to_the_pool_transactional_and_durable(factory):
    _, pid, apis, _ = setup(factory, 1, 2, overlap_min=1, overlap_max=1)
    lease(apis[0], pid)
    lease(apis[0], pid)
    engine = factory.ctx.engine
    for _ in range(engine.pool.size() + 1):
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
            assert conn.connection.dbapi_connection.autocommit is False
    # A write transaction after the lease still rolls back as a whole.
    with pytest.raises(RuntimeError), write_tx(engine) as conn:
        conn.execute(items.update().where(items.c.project_id == pid).values(priority=7))
        raise RuntimeError("roll back")
    assert {r["priority"] for r in item_rows(factory, pid)} == {0}


def test_statement_tx_is_for_postgresql_only(ctx, tmp_path):
    from goldlabel.config import Settings
    from goldlabel.storage.engine import create_engine

    sqlite = create_engine(Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}"))
    with pytest.raises(ValueError, match="PostgreSQL"), statement_tx(sqlite):
        pass
    sqlite.dispose()


def test_the_submit_statements_fit_psycopg_statement_cache():
    """psycopg converts a statement's placeholders once per statement text only up to this
    length; a longer one is parsed on every execution of the blocking path (the routes: cookie
    sessions, the SDK in process). The submit's statements fit. The lease, which carries the
    claimed item's knowledge for the submit, does not: on the event loop it runs as a prepared
    statement (storage.aio), on the blocking path its placeholders cost about 40 µs a lease."""
    dialect = postgresql.psycopg.dialect()
    limit = psycopg._queries.MAX_CACHED_STATEMENT_LENGTH
    for hot in (queue_pg.SUBMIT_READ, queue_pg._submit_write(0), queue_pg._submit_write(1)):
        assert len(hot.stmt.compile(dialect=dialect).string) <= limit
