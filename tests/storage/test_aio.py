"""storage.aio: statements on the event loop give what the blocking path gives, and the pool of
asynchronous connections stays bounded, fair and healthy (errors, cancellation, dead
connections, closing)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import sqlalchemy as sa

from goldlabel.storage import aio
from goldlabel.storage.aio import AsyncPg
from goldlabel.storage.engine import statement_tx
from goldlabel.storage.hot import Call, Hot
from goldlabel.storage.tables import events, items

pytestmark = pytest.mark.postgres

_SLEEP = Hot(sa.text("SELECT pg_sleep(CAST(:s AS DOUBLE PRECISION)) AS slept, pg_backend_pid() AS pid"))
_PID = Hot(sa.text("SELECT pg_backend_pid() AS pid, current_setting('synchronous_commit') AS sync"))


@pytest.fixture
def backend() -> str:
    return "postgres"


def _run(coro):
    """asyncio.run in a thread of its own: the browser tests' Playwright session keeps an event
    loop marked running in the main thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def test_rows_match_the_blocking_path(ctx, factory):
    project = factory.make_project()
    factory.add_items(project, 3)
    stmt = (
        sa.select(items.c.id, items.c.data, items.c.is_gold, items.c.meta)
        .where(items.c.project_id == sa.bindparam("p"))
        .order_by(items.c.id)
    )
    call = Call(Hot(stmt), {"p": project["id"]})
    with statement_tx(ctx.engine) as conn:
        expected = call.all(conn)

    async def main():
        pg = AsyncPg(ctx.engine, 2)
        try:
            return await pg.all(call), await pg.first(call), await pg.all(Call(_PID, {}))
        finally:
            pg.close()

    got, first, [settings] = _run(main())
    assert got == expected and len(got) == 3 and first == expected[0]
    assert got[0]["data"] == {"text": "item 0"} and got[0]["is_gold"] is False
    assert settings["sync"] == "on"  # Q4: the engine's connection settings


def test_each_statement_commits_on_its_own(ctx, factory):
    project = factory.make_project()
    insert = Hot(events.insert().values(project_id=sa.bindparam("p"), kind="x", payload={"a": 1}, created_at=1)
                 .returning(events.c.id))

    async def main():
        pg = AsyncPg(ctx.engine, 1)
        try:
            return await pg.first(Call(insert, {"p": project["id"]}))
        finally:
            pg.close()

    row = _run(main())
    with ctx.engine.connect() as conn:  # another connection sees it at once
        assert conn.execute(sa.select(events.c.payload).where(events.c.id == row["id"])).scalar() == {"a": 1}


def test_the_pool_is_bounded_and_first_come_first_served(ctx):
    async def main():
        pg = AsyncPg(ctx.engine, 2)
        order: list[int] = []

        async def job(i: int, seconds: float) -> int:
            row = await pg.first(Call(_SLEEP, {"s": seconds}))
            order.append(i)
            return row["pid"]

        try:
            # Two long statements hold both connections; the next three wait their turn and,
            # in arrival order, take the connection the shorter one gives back.
            pids = await asyncio.gather(job(0, 0.2), job(1, 0.6), job(2, 0), job(3, 0), job(4, 0))
            return pg.open_connections, order, pids
        finally:
            pg.close()

    opened, order, pids = _run(main())
    assert opened == 2 and len(set(pids)) == 2
    assert order == [0, 2, 3, 4, 1]


def test_an_error_is_wrapped_and_the_connection_reused(ctx, factory):
    project = factory.make_project()
    bad = Hot(sa.text("INSERT INTO events (project_id, kind, payload, created_at) VALUES (:p, NULL, '{}', 1)"))

    async def main():
        pg = AsyncPg(ctx.engine, 1)
        try:
            before = (await pg.first(Call(_PID, {})))["pid"]
            with pytest.raises(sa.exc.IntegrityError) as err:
                await pg.all(Call(bad, {"p": project["id"]}))
            after = (await pg.first(Call(_PID, {})))["pid"]
            return before, after, err.value
        finally:
            pg.close()

    before, after, err = _run(main())
    assert before == after  # the failed statement left the connection idle: kept
    assert isinstance(err.orig, psycopg.errors.NotNullViolation)


def test_a_cancelled_statement_costs_its_connection_not_the_pool(ctx):
    async def main():
        pg = AsyncPg(ctx.engine, 1)
        try:
            first = (await pg.first(Call(_PID, {})))["pid"]
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(pg.all(Call(_SLEEP, {"s": 5})), 0.2)
            assert pg.open_connections == 0  # interrupted mid-statement: closed
            second = (await pg.first(Call(_PID, {})))["pid"]
            return first, second, pg.open_connections
        finally:
            pg.close()

    first, second, opened = _run(main())
    assert first != second and opened == 1


def test_a_cancelled_waiter_passes_its_turn_on(ctx):
    async def main():
        pg = AsyncPg(ctx.engine, 1)
        try:
            holder = asyncio.create_task(pg.all(Call(_SLEEP, {"s": 0.3})))
            await asyncio.sleep(0.05)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(pg.all(Call(_PID, {})), 0.05)  # gives up while waiting
            await holder
            return await pg.first(Call(_PID, {})), pg.open_connections
        finally:
            pg.close()

    row, opened = _run(main())
    assert row["sync"] == "on" and opened == 1


def test_a_dead_idle_connection_is_replaced(ctx, monkeypatch):
    monkeypatch.setattr(aio, "PING_AFTER_IDLE_S", 0.0)  # ping at every checkout

    async def main():
        pg = AsyncPg(ctx.engine, 1)
        try:
            first = (await pg.first(Call(_PID, {})))["pid"]
            with ctx.engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            await asyncio.sleep(0.1)
            second = (await pg.first(Call(_PID, {})))["pid"]
            return first, second, pg.open_connections
        finally:
            pg.close()

    first, second, opened = _run(main())
    assert first != second and opened == 1


def test_close_ends_the_connections_and_refuses_more(ctx):
    async def main():
        pg = AsyncPg(ctx.engine, 2)
        await asyncio.gather(pg.all(Call(_SLEEP, {"s": 0.05})), pg.all(Call(_SLEEP, {"s": 0.05})))
        conns = [c.conn for c, _ in pg._idle]
        pg.close()
        with pytest.raises(RuntimeError, match="closed"):
            await pg.all(Call(_PID, {}))
        return conns, pg.open_connections

    conns, opened = _run(main())
    assert len(conns) == 2 and all(c.closed for c in conns) and opened == 0


def test_the_context_keeps_one_per_loop_and_closes_them(ctx):
    async def get():
        return ctx.async_pg(), ctx.async_pg()

    a1, a2 = _run(get())
    b1, _ = _run(get())
    assert a1 is a2 and a1 is not b1

    async def use(pg):
        return await pg.first(Call(_PID, {}))

    def on_a_loop_of_its_own():
        loop = asyncio.new_event_loop()
        try:
            pg = loop.run_until_complete(get())[0]
            loop.run_until_complete(use(pg))
            return pg._idle[0][0].conn
        finally:
            loop.close()

    with ThreadPoolExecutor(1) as pool:
        conn = pool.submit(on_a_loop_of_its_own).result()
    ctx.close()  # after its loop is gone: closed without it
    assert conn.closed


def test_sqlite_has_none(tmp_path):
    from goldlabel.config import Settings
    from goldlabel.storage.engine import create_engine

    engine = create_engine(Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}"))
    with pytest.raises(ValueError, match="PostgreSQL"):
        AsyncPg(engine, 1)
    engine.dispose()


def test_statements_are_prepared_once_per_connection_with_numbered_placeholders():
    native = aio._native("SELECT %(a)s, %(b)s, %(a)s, 'x%%y'")
    assert native.sql == b"SELECT $1, $2, $1, 'x%y'" and native.names == ("a", "b")
    assert aio._native("SELECT %(a)s, %(b)s, %(a)s, 'x%%y'") is native  # made once per SQL text


@pytest.mark.parametrize(("value", "text"), [
    (None, None), (True, b"t"), (False, b"f"), (42, b"42"), (-1.5, b"-1.5"), ("é", "é".encode()),
    (["a", 'q"uote', "back\\slash", None], b'{"a","q\\"uote","back\\\\slash",NULL}'),
])
def test_parameters_travel_as_text(value, text):
    assert aio._text(value) == text


def test_an_array_of_unhashable_elements_still_travels():
    assert aio._text([["a"], None]) == b'{"[\'a\']",NULL}'


def test_an_unsupported_parameter_is_refused():
    with pytest.raises(TypeError, match="bytes"):
        aio._text(b"raw")


def test_values_round_trip_as_on_the_blocking_path(ctx):
    stmt = Hot(sa.text(
        "SELECT CAST(:roles AS VARCHAR[]) AS roles, CAST(:doc AS JSONB) AS doc, CAST(:n AS BIGINT) AS n, "
        "CAST(:f AS DOUBLE PRECISION) AS f, CAST(:b AS BOOLEAN) AS b, CAST(:t AS VARCHAR) AS t, "
        "CAST(:missing AS INTEGER) AS missing, ARRAY[CAST(:doc AS JSONB)] AS docs, '100%' AS pct"
    ))
    params = {"roles": ["annotator", 'with "quotes"', "back\\slash", "ünïcödé", None],
              "doc": '{"a": [1, 2.5, "x"], "b": null}', "n": 2**40, "f": 0.1, "b": True, "t": "line\nbreak",
              "missing": None}
    call = Call(stmt, params)
    with statement_tx(ctx.engine) as conn:
        expected = call.all(conn)

    async def main():
        pg = AsyncPg(ctx.engine, 1)
        try:
            return await pg.all(call)
        finally:
            pg.close()

    got = _run(main())
    assert got == expected
    assert got[0]["roles"] == params["roles"] and got[0]["doc"] == {"a": [1, 2.5, "x"], "b": None}
    assert got[0]["f"] == 0.1 and got[0]["pct"] == "100%" and got[0]["missing"] is None


def test_a_statement_the_server_refuses_to_prepare_leaves_the_connection_usable(ctx):
    bad = Hot(sa.text("SELECT FROM WHERE :x"))

    async def main():
        pg = AsyncPg(ctx.engine, 1)
        try:
            before = (await pg.first(Call(_PID, {})))["pid"]
            with pytest.raises(sa.exc.ProgrammingError):
                await pg.all(Call(bad, {"x": 1}))
            return before, (await pg.first(Call(_PID, {})))["pid"]
        finally:
            pg.close()

    before, after = _run(main())
    assert before == after


def test_each_connection_prepares_a_statement_once(ctx, monkeypatch):
    prepared: list[bytes] = []
    real = aio._Conn.prepare

    async def counted(self, native):
        prepared.append(native.name)
        await real(self, native)

    monkeypatch.setattr(aio._Conn, "prepare", counted)

    async def main():
        pg = AsyncPg(ctx.engine, 2)
        try:
            for _ in range(3):
                await pg.all(Call(_PID, {}))
            await asyncio.gather(pg.all(Call(_SLEEP, {"s": 0.05})), pg.all(Call(_SLEEP, {"s": 0.05})))
        finally:
            pg.close()

    _run(main())
    # _PID once on the first connection; _SLEEP once on each of the two connections.
    assert sorted(prepared) == sorted([aio._native(_PID.bind(ctx.engine.dialect, {})[0].sql).name]
                                      + [aio._native(_SLEEP.bind(ctx.engine.dialect, {"s": 0})[0].sql).name] * 2)


def test_a_waiter_cancelled_as_it_was_handed_a_slot_passes_the_slot_on(ctx):
    """The pool's count stays true when a waiter gives up just as a closed connection's slot
    was handed to it: the next waiter gets the slot and nothing is counted twice."""
    async def main():
        pg = AsyncPg(ctx.engine, 1)
        try:
            holder = asyncio.create_task(pg.all(Call(_SLEEP, {"s": 0.2})))
            await asyncio.sleep(0.05)
            first = asyncio.create_task(pg.all(Call(_PID, {})))
            second = asyncio.create_task(pg.all(Call(_PID, {})))
            await asyncio.sleep(0.01)
            # The holder's connection is closed instead of given back (as after an error) and
            # its slot handed to the first waiter, which is cancelled before it runs.
            holder.cancel()
            await asyncio.sleep(0)
            first.cancel()
            rows = await second
            for task in (holder, first):
                with pytest.raises(asyncio.CancelledError):
                    await task
            return rows, pg.open_connections
        finally:
            pg.close()

    rows, opened = _run(main())
    assert rows[0]["sync"] == "on" and opened == 1
