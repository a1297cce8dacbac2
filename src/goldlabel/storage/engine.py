"""Engines for SQLite (embedded default) and PostgreSQL, the two kinds of transaction, and
the one durability rule (Q4) every client's writes follow.

SQLite: WAL so readers never block the writer; every write transaction starts with
``BEGIN IMMEDIATE`` so two writers queue on ``busy_timeout`` instead of one failing with
"database is locked" when a deferred read transaction tries to upgrade.

Durability, once for every caller (docs/deployment.md, "Durability"): a durable ``write_tx``
returns only once its COMMIT is on disk. PostgreSQL: ``synchronous_commit=on`` (the server
flushes its WAL at COMMIT and groups the flushes of concurrent commits itself). SQLite: COMMIT
with ``synchronous=NORMAL``, then an fdatasync of the write-ahead log that covers every COMMIT
made before it started (:func:`sync_wal`), so concurrent writers share one flush (group commit)
and the writer lock is never held while the disk works. A caller on an event loop
(storage.backend) may take the flush over, to run it off the loop, with :func:`deferred_flushes`;
either way it happens before the caller is told the write happened.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from goldlabel.config import Settings


def now_ms() -> int:
    return int(time.time() * 1000)


def _dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()


def create_engine(settings: Settings) -> Engine:
    url = sa.make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        return _create_sqlite_engine(url, settings)
    if url.get_backend_name() == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        # Q4: an acknowledged answer must survive a crash: commit waits for the WAL flush.
        connect_args = {"options": "-c synchronous_commit=on"}
        engine = sa.create_engine(
            url,
            pool_size=settings.pg_pool_size,
            max_overflow=settings.pg_pool_size,
            json_serializer=_dumps,
            json_deserializer=orjson.loads,
            connect_args=connect_args,
        )
        _POOL_CAPACITY[engine] = 2 * settings.pg_pool_size
        _PG_CONNECT_ARGS[engine] = connect_args
        _ping_idle_connections(engine)
        return engine
    raise ValueError(
        f"unsupported database URL {settings.database_url!r}: expected sqlite:///FILE "
        "or postgresql+psycopg://USER@HOST/DB"
    )


PING_AFTER_IDLE_S = 5.0


def pg_connect_kwargs(engine: Engine) -> dict[str, Any]:
    """What the engine passes to ``psycopg.connect`` for a new connection (server, user,
    database, its type adapters with the JSON serializer, and ``connect_args`` such as
    ``synchronous_commit=on``): storage.aio opens its asynchronous connections with the same."""
    _cargs, cparams = engine.dialect.create_connect_args(engine.url)
    return {**cparams, **_PG_CONNECT_ARGS.get(engine, {})}


def _ping_idle_connections(engine: Engine) -> None:
    """Ping a pooled connection at checkout only when it sat idle for a while.

    ``pool_pre_ping=True`` pings on every checkout: one extra round trip per transaction, five
    per annotate cycle (two token checks, the lease, the submit's read and write). A connection
    in steady use has just proven itself; one back from idleness (server restart, idle timeout)
    is pinged, and a dead one is replaced before use, as pre-ping did.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn, record) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn, record, _proxy) -> None:
        last = record.info.get("checked_in_at")
        if last is None or time.monotonic() - last < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # any failure: let the pool reconnect
            raise sa.exc.DisconnectionError(str(exc)) from exc


def _sqlite_loads(value: Any) -> Any:
    # A JSON column has NUMERIC affinity in SQLite: a bare JSON number ("4", a rating's
    # consensus value) comes back as an int or float, not as JSON text.
    return value if isinstance(value, (int, float)) else orjson.loads(value)


_BEGIN = {mode: f"BEGIN {mode}" for mode in ("DEFERRED", "IMMEDIATE", "EXCLUSIVE")}


def _create_sqlite_engine(url: sa.URL, settings: Settings) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": settings.sqlite_busy_timeout_ms / 1000},
        pool_size=20,
        max_overflow=20,
        json_serializer=_dumps,
        json_deserializer=_sqlite_loads,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Let SQLAlchemy's "begin" hook (below) emit BEGIN itself instead of pysqlite.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # Q4: COMMIT does not wait for the disk; a durable write_tx then syncs the log itself
        # (sync_wal), shared with the writers that committed meanwhile (group commit).
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={int(settings.sqlite_busy_timeout_ms)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.close()

    _WRITER_LOCKS[engine] = (threading.RLock(), settings.sqlite_busy_timeout_ms / 1000)
    wal = None
    if url.database and url.database != ":memory:":
        wal = _WAL_PATHS[engine] = str(Path(url.database).expanduser().resolve()) + "-wal"
    _LOGS[engine] = _Log(wal)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        mode = options.get("sqlite_begin", "DEFERRED")
        # On the driver's connection: through exec_driver_sql, SQLAlchemy's per-statement work
        # cost the annotate loop more than the BEGIN itself (two per cycle; storage/hot.py).
        # A failure (database locked past busy_timeout) is wrapped as exec_driver_sql would.
        try:
            conn.connection.dbapi_connection.execute(_BEGIN[mode])
        except sqlite3.Error as exc:
            conn._handle_dbapi_exception(exc, _BEGIN[mode], (), None, None)

    return engine


# SQLite engines on a file -> the path of its write-ahead log.
_WAL_PATHS: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()

# PostgreSQL engines -> the connect_args they were created with (see pg_connect_kwargs).
_PG_CONNECT_ARGS: weakref.WeakKeyDictionary[Engine, dict[str, Any]] = weakref.WeakKeyDictionary()

# PostgreSQL engines -> how many connections their pool may hand out (size + overflow).
_POOL_CAPACITY: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()

class _Log:
    """A SQLite database's write-ahead log as this process's writers see it: how many durable
    COMMITs they made (``committed``) and how many of those a finished fdatasync covers
    (``synced``). See :func:`sync_wal`."""

    __slots__ = ("committed", "lock", "path", "synced", "syncing")

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.committed = 0
        self.synced = 0
        self.lock = threading.Lock()  # guards the counters
        self.syncing = threading.Lock()  # one fdatasync at a time; the writers waiting share it


# SQLite engines -> their write-ahead log's commit and sync counters.
_LOGS: weakref.WeakKeyDictionary[Engine, _Log] = weakref.WeakKeyDictionary()

# SQLite engines -> (the lock their writers queue on in this process, how long to wait for it).
_WRITER_LOCKS: weakref.WeakKeyDictionary[Engine, tuple[threading.RLock, float]] = weakref.WeakKeyDictionary()


@contextlib.contextmanager
def write_tx(engine: Engine, *, durable: bool = True) -> Iterator[Connection]:
    """A write transaction: BEGIN IMMEDIATE on SQLite (one writer at a time, by design).

    Durable (the default): on disk when the block returns (see the module's docstring), or,
    inside :func:`deferred_flushes`, owed to that caller. ``durable=False`` skips the flush
    (SQLite: no fdatasync; PostgreSQL ``synchronous_commit=off``): a crash may lose the last
    such transactions whole, never part of one, and never one that a later durable COMMIT
    depends on (the WAL is flushed in order). Only for work that is safe to lose, such as a
    lease (Q4 covers answers).
    """
    # SQLite lets one writer in at a time and makes the others poll: its busy handler sleeps
    # 1, 2, 5, 10, ... up to 100 ms between tries, so a writer that has waited long sleeps
    # long while newcomers take the lock (32 annotators, one process: p50 180 ms, p99 5.7 s).
    # Writers of this process queue on a lock instead, and the next one wakes as soon as the
    # previous one commits. Bounded like busy_timeout: on timeout it goes on to BEGIN
    # IMMEDIATE as before. Re-entrant, so a nested write_tx fails as it did (database locked).
    # Writers in other processes still meet on SQLite's own lock.
    entry = _WRITER_LOCKS.get(engine)
    lock = entry[0] if entry else None
    held = lock is not None and lock.acquire(timeout=entry[1])
    seq = 0
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                if not durable and conn.dialect.name == "postgresql":
                    conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                yield conn
        log = _LOGS.get(engine) if durable else None
        if log is not None:
            with log.lock:
                log.committed += 1
                seq = log.committed
    finally:
        if held:
            lock.release()
    if seq:
        owed = _FLUSH_OWED.get()
        if owed is None:
            sync_wal(engine, seq)
        else:
            owed.append((engine, seq))


@contextlib.contextmanager
def statement_tx(engine: Engine) -> Iterator[Connection]:
    """PostgreSQL: a connection in autocommit mode, for work done in one statement. The
    statement is its own transaction (all of it or nothing, as in ``write_tx``), without the
    BEGIN and COMMIT round trips: two of the lease's three when its work is one statement
    (storage/queue_pg.py). A statement that must not wait for the WAL flush turns
    synchronous_commit off itself (``set_config('synchronous_commit', 'off', true)``), which
    holds for its own transaction only. Not for SQLite, whose writers must BEGIN IMMEDIATE."""
    if engine.dialect.name != "postgresql":
        raise ValueError("statement_tx is for PostgreSQL; use write_tx")
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        # No BEGIN is sent in autocommit mode; the Transaction object only lets storage.hot
        # run statements on the driver's cursor (it runs them through Connection.execute
        # outside one).
        with conn.begin():
            yield conn


# Set by ``deferred_flushes``: the durable SQLite writes of this context owe a WAL flush.
_FLUSH_OWED: contextvars.ContextVar[list[tuple[Engine, int]] | None] = contextvars.ContextVar(
    "goldlabel_flush_owed", default=None)


@contextlib.contextmanager
def deferred_flushes() -> Iterator[list[tuple[Engine, int]]]:
    """Inside this block a durable SQLite write returns without syncing the log and adds
    ``(engine, its commit number)`` to the yielded list: the caller must ``sync_wal`` each
    before it acknowledges the write to anyone (Q4). For storage.backend, which runs the sync
    off the event loop when other requests are waiting; nothing else should need it."""
    owed: list[tuple[Engine, int]] = []
    token = _FLUSH_OWED.set(owed)
    try:
        yield owed
    finally:
        _FLUSH_OWED.reset(token)


def sync_wal(engine: Engine, seq: int) -> bool:
    """Make this process's durable COMMIT number ``seq`` (and every one before it) durable:
    fdatasync the write-ahead log unless a sync that started after that COMMIT has already
    finished. Concurrent callers queue on one lock, and each sync covers every COMMIT made
    before it started, so N writers waiting together cost at most two syncs (group commit).
    True when this call ran the fdatasync itself."""
    log = _LOGS.get(engine)
    if log is None or log.synced >= seq:
        return False
    with log.syncing:
        if log.synced >= seq:
            return False  # a sync that started after our COMMIT finished while we queued
        with log.lock:
            target = log.committed
        flush_wal(engine)
        log.synced = target
    return True


def flush_wal(engine: Engine) -> None:
    """fdatasync the SQLite database's write-ahead log: every transaction committed before the
    call is then on disk, as ``synchronous=FULL`` would have made it at its COMMIT."""
    path = _WAL_PATHS.get(engine)
    if path is None:
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        # No log: the last connection checkpointed it into the database file (synced by the
        # checkpoint) and removed it.
        return
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def uncontended(engine: Engine) -> Iterator[bool]:
    """Whether a short transaction started now can wait on nothing of this process: on SQLite
    the process's writer lock is free (it is then held for the block, so the caller's
    ``write_tx`` re-enters it at once), on PostgreSQL the pool can hand out a connection
    without waiting.

    The server runs the annotate loop's requests on its event loop when this says True (no
    thread hop, no GIL hand-offs) and in the thread pool otherwise, so a request never blocks
    the loop behind an import, a re-fit or a full pool of this process.
    """
    entry = _WRITER_LOCKS.get(engine)
    if entry is not None:
        held = entry[0].acquire(blocking=False)
        try:
            yield held
        finally:
            if held:
                entry[0].release()
        return
    capacity = _POOL_CAPACITY.get(engine)
    yield capacity is None or engine.pool.checkedout() < capacity


@contextlib.contextmanager
def read_tx(engine: Engine) -> Iterator[Connection]:
    """A read-only snapshot (deferred transaction on SQLite, never takes the write lock)."""
    with engine.connect() as conn, conn.begin():
        yield conn


# SQLite's page cache per connection (_on_connect) and, for a scan, while it runs.
SQLITE_CACHE_KIB = 65536
SQLITE_SCAN_CACHE_KIB = 4096


@contextlib.contextmanager
def scan_tx(engine: Engine) -> Iterator[Connection]:
    """:func:`read_tx` for a read that passes over a whole project once (an export): on SQLite
    with a small page cache while it runs, since no page is read twice. With the connection's
    64 MiB cache the pages of a 1M-item export stayed in memory until its end (peak RSS +40 MB,
    benchmarks/media_formats.py)."""
    with read_tx(engine) as conn:
        if conn.dialect.name != "sqlite":
            yield conn
            return
        conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_SCAN_CACHE_KIB}")
        try:
            yield conn
        finally:
            conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
