"""Q4, one regime for every caller: a durable write is on disk before anyone is told it happened.

PostgreSQL: ``synchronous_commit=on`` (the flush inside COMMIT). SQLite: COMMIT with
``synchronous=NORMAL``, then ``sync_wal`` (an fdatasync of the log shared by the writers that
committed meanwhile) before ``write_tx`` returns; inside ``deferred_flushes`` (the event loop's
``storage.backend``) the same sync is owed to the caller, which runs it before it answers."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import sqlalchemy as sa

from goldlabel.storage import engine as engine_module
from goldlabel.storage.engine import (
    _LOGS,
    _WAL_PATHS,
    deferred_flushes,
    read_tx,
    sync_wal,
    write_tx,
)

SYNC_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def sync_mode(conn: sa.Connection) -> str:
    if conn.dialect.name == "postgresql":
        return conn.exec_driver_sql("SHOW synchronous_commit").scalar()
    return SYNC_NAMES[conn.exec_driver_sql("PRAGMA synchronous").scalar()]


def counting_flushes(monkeypatch, delay_first_s: float = 0.0) -> list[float]:
    """Record each real fdatasync of the log (its start time); the first may be slowed."""
    real = engine_module.flush_wal
    started: list[float] = []

    def counted(engine) -> None:
        started.append(time.monotonic())
        if len(started) == 1 and delay_first_s:
            time.sleep(delay_first_s)
        real(engine)

    monkeypatch.setattr(engine_module, "flush_wal", counted)
    return started


def test_commit_modes(ctx):
    with write_tx(ctx.engine) as conn:
        mode = sync_mode(conn)
    assert mode == ("on" if ctx.engine.dialect.name == "postgresql" else "NORMAL")
    with write_tx(ctx.engine, durable=False) as conn:
        lax = sync_mode(conn)
    assert lax == ("off" if ctx.engine.dialect.name == "postgresql" else "NORMAL")


def test_a_durable_write_syncs_the_log_before_it_returns(ctx, monkeypatch):
    flushes = counting_flushes(monkeypatch)
    sqlite = ctx.engine.dialect.name == "sqlite"
    with write_tx(ctx.engine, durable=False) as conn:
        conn.exec_driver_sql("SELECT 1")
    assert flushes == []  # not durable: no sync
    with write_tx(ctx.engine) as conn:
        conn.exec_driver_sql("SELECT 1")
    assert len(flushes) == (1 if sqlite else 0)
    if sqlite:
        log = _LOGS[ctx.engine]
        assert log.synced == log.committed  # everything this process committed is on disk


def test_deferred_flushes_owe_only_durable_sqlite_writes(ctx, monkeypatch):
    flushes = counting_flushes(monkeypatch)
    sqlite = ctx.engine.dialect.name == "sqlite"
    with deferred_flushes() as owed:
        with read_tx(ctx.engine):
            pass
        with write_tx(ctx.engine, durable=False) as conn:
            conn.exec_driver_sql("SELECT 1")
        assert owed == []
        with write_tx(ctx.engine) as conn:
            conn.exec_driver_sql("SELECT 1")
        assert [e for e, _seq in owed] == ([ctx.engine] if sqlite else [])
    assert flushes == []  # owed to the caller, not run
    for engine, seq in owed:
        assert sync_wal(engine, seq) is True
        assert sync_wal(engine, seq) is False  # already covered
    assert len(flushes) == (1 if sqlite else 0)


def test_a_failed_write_owes_nothing(ctx):
    with deferred_flushes() as owed:
        try:
            with write_tx(ctx.engine) as conn:
                conn.exec_driver_sql("SELECT 1")
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
    assert owed == []


def test_sync_wal_targets_the_log_sqlite_writes(ctx):
    """The file the sync covers is the one the COMMIT wrote its frames to."""
    if ctx.engine.dialect.name != "sqlite":
        assert sync_wal(ctx.engine, 1) is False  # nothing to sync: PostgreSQL flushes at COMMIT
        return
    wal = Path(_WAL_PATHS[ctx.engine])
    before = wal.stat().st_size if wal.exists() else 0
    with deferred_flushes() as owed, write_tx(ctx.engine) as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS flush_probe (x TEXT)")
        conn.exec_driver_sql("INSERT INTO flush_probe VALUES (?)", ("x" * 20000,))
    assert [e for e, _ in owed] == [ctx.engine]
    assert wal.stat().st_size > before  # the frames are in this file, not yet synced
    for engine, seq in owed:
        sync_wal(engine, seq)


def test_concurrent_writers_share_syncs_and_none_is_covered_by_an_earlier_one(ctx, monkeypatch):
    """Group commit: ten writers that commit while one slow sync runs are all covered by the
    next one (two syncs in all, not eleven), and none returns before a sync that began after
    its COMMIT."""
    if ctx.engine.dialect.name != "sqlite":
        return
    with write_tx(ctx.engine) as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS group_probe (x INTEGER)")
    flushes = counting_flushes(monkeypatch, delay_first_s=0.3)
    committed_at: dict[int, float] = {}
    returned_at: dict[int, float] = {}

    def writer(i: int) -> None:
        with write_tx(ctx.engine) as conn:
            conn.exec_driver_sql("INSERT INTO group_probe VALUES (?)", (i,))
        returned_at[i] = time.monotonic()

    first = threading.Thread(target=writer, args=(0,))
    first.start()
    time.sleep(0.1)  # the first writer is inside its slow sync now
    assert len(flushes) == 1
    rest = [threading.Thread(target=writer, args=(i,)) for i in range(1, 11)]
    for t in rest:
        committed_at[id(t)] = time.monotonic()
        t.start()
    for t in (first, *rest):
        t.join(10)
    assert len(flushes) == 2, flushes
    second_sync = flushes[1]
    assert all(returned_at[i] >= second_sync for i in range(1, 11))
    with read_tx(ctx.engine) as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM group_probe").scalar() == 11


def test_requests_on_the_event_loop_share_one_sync_per_group(ctx, monkeypatch):
    """storage.backend's group commit: requests whose COMMITs come while a (slow) sync runs in
    the sync thread wait on the loop for the next one: two fdatasyncs and two thread hops for
    eleven requests, none answered before a sync that began after its COMMIT."""
    import asyncio

    if ctx.engine.dialect.name != "sqlite":
        return
    with write_tx(ctx.engine) as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS loop_probe (x INTEGER)")
    from goldlabel.storage import backend as backend_module

    flushes = counting_flushes(monkeypatch, delay_first_s=0.3)
    asked: list[int] = []  # the backend's calls of sync_wal: one per thread hop or inline sync
    real_sync = backend_module.sync_wal

    def sync_counted(engine, seq):
        asked.append(seq)
        return real_sync(engine, seq)

    monkeypatch.setattr(backend_module, "sync_wal", sync_counted)
    backend = ctx.backend
    returned_at: dict[int, float] = {}

    def insert(i: int) -> None:
        with write_tx(ctx.engine) as conn:
            conn.exec_driver_sql("INSERT INTO loop_probe VALUES (?)", (i,))

    async def request(i: int) -> None:
        await backend.run(insert, i)
        returned_at[i] = time.monotonic()

    async def main() -> None:
        backend._switched_at = time.monotonic() + 3600  # other annotators share the loop: not alone
        first = asyncio.ensure_future(request(0))
        await asyncio.sleep(0.1)  # its sync is running in the thread now
        assert len(flushes) == 1
        await asyncio.gather(first, *(request(i) for i in range(1, 11)))

    hops = backend.counts["flushed_in_thread"]
    # a loop of its own in a thread of its own: the test process may have one running already
    failures: list[BaseException] = []

    def run_loop() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    runner = threading.Thread(target=run_loop)
    runner.start()
    runner.join(30)
    assert not failures, failures
    assert len(flushes) == 2, flushes
    assert len(asked) == 2, asked  # not one hop per request
    assert backend.counts["flushed_in_thread"] - hops == 2
    assert all(returned_at[i] >= flushes[1] for i in range(1, 11))
    with read_tx(ctx.engine) as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM loop_probe").scalar() == 11
