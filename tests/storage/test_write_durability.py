"""Q4 on SQLite: a durable write is on disk before anyone is told it happened.

Plain ``write_tx`` commits with ``synchronous=FULL`` (the fsync inside COMMIT). Inside
``flush_after`` it commits with NORMAL and owes a ``flush_wal``, which the server's fast lane
runs before it answers; PostgreSQL is never affected (``synchronous_commit`` stays on)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from goldlabel.storage.engine import _WAL_PATHS, flush_after, flush_wal, read_tx, write_tx

SYNC_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def sync_mode(conn: sa.Connection) -> str:
    if conn.dialect.name == "postgresql":
        return conn.exec_driver_sql("SHOW synchronous_commit").scalar()
    return SYNC_NAMES[conn.exec_driver_sql("PRAGMA synchronous").scalar()]


def test_durable_write_flushes_at_commit_by_default(ctx):
    with write_tx(ctx.engine) as conn:
        mode = sync_mode(conn)
    assert mode == ("on" if ctx.engine.dialect.name == "postgresql" else "FULL")
    with write_tx(ctx.engine, durable=False) as conn:
        lax = sync_mode(conn)
    assert lax == ("off" if ctx.engine.dialect.name == "postgresql" else "NORMAL")


def test_flush_after_defers_only_durable_sqlite_writes(ctx):
    sqlite = ctx.engine.dialect.name == "sqlite"
    with flush_after() as owed:
        with read_tx(ctx.engine):
            pass
        with write_tx(ctx.engine, durable=False) as conn:
            conn.exec_driver_sql("SELECT 1")
        assert owed == []
        with write_tx(ctx.engine) as conn:
            mode = sync_mode(conn)
        assert owed == ([ctx.engine] if sqlite else [])
    assert mode == ("NORMAL" if sqlite else "on")
    # Outside the block again: back to the flush inside COMMIT.
    with write_tx(ctx.engine) as conn:
        assert sync_mode(conn) == ("FULL" if sqlite else "on")


def test_a_failed_write_owes_nothing(ctx):
    with flush_after() as owed:
        try:
            with write_tx(ctx.engine) as conn:
                conn.exec_driver_sql("SELECT 1")
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
    assert owed == []


def test_flush_wal_targets_the_log_sqlite_writes(ctx):
    """The file flush_wal syncs is the one the deferred COMMIT wrote its frames to."""
    if ctx.engine.dialect.name != "sqlite":
        flush_wal(ctx.engine)  # nothing to flush: PostgreSQL flushes at COMMIT
        return
    wal = Path(_WAL_PATHS[ctx.engine])
    before = wal.stat().st_size if wal.exists() else 0
    with flush_after() as owed, write_tx(ctx.engine) as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS flush_probe (x TEXT)")
        conn.exec_driver_sql("INSERT INTO flush_probe VALUES (?)", ("x" * 20000,))
    assert owed == [ctx.engine]
    assert wal.stat().st_size > before  # the frames are in this file, not yet synced
    for engine in owed:
        flush_wal(engine)
