"""PostgreSQL on the event loop: the annotate loop's statements without blocking it.

A server worker that runs a request's statements on its event loop with the blocking driver
serves one request at a time, whatever else waits: with keep-alive connections spread over the
workers by the kernel, a worker that drew three annotators served them one after another while
another worker idled (8 annotators over 4 workers: 310 to 680 cycles/s from one run to the
next, docs/benchmarks.md). With the asynchronous driver a worker interleaves the database waits
of all its requests.

:class:`AsyncPg` runs :class:`~goldlabel.storage.hot.Call` values (the same compiled SQL, bind
and result processing as the synchronous path) on psycopg ``AsyncConnection`` objects in
autocommit mode: each statement is its own transaction, so there is no BEGIN, COMMIT or
rollback to manage and a connection is back in the pool as soon as its statement returns. The
connections use the engine's connection settings and type adapters (JSON through the same
serializer, ``synchronous_commit=on`` for Q4), so a row reads the same on both paths.

One :class:`AsyncPg` per event loop (psycopg's asynchronous connections belong to the loop
that opened them); ``services.context.Context`` keeps them.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.pq import TransactionStatus
from sqlalchemy.engine import Engine

from goldlabel.storage.engine import PING_AFTER_IDLE_S, pg_connect_kwargs
from goldlabel.storage.hot import Call, Hot


class AsyncPg:
    """A bounded pool of autocommit ``AsyncConnection`` objects and the statements run on them.

    At most ``size`` connections are open; a statement that finds none free waits its turn
    (first come, first served). A connection whose statement failed is reused when the server
    left it idle (an error in autocommit mode aborts only that statement), and closed when it
    is broken or was interrupted mid-statement (a cancelled request): the next caller opens a
    fresh one. One that sat idle longer than ``PING_AFTER_IDLE_S`` is pinged before use, as the
    synchronous pool does (storage.engine), and replaced when the ping fails.
    """

    def __init__(self, engine: Engine, size: int) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("AsyncPg is for PostgreSQL")
        self.dialect = engine.dialect
        self._connect_kwargs = {**pg_connect_kwargs(engine), "autocommit": True}
        self.size = size
        self._idle: list[tuple[psycopg.AsyncConnection, float]] = []
        self._open = 0  # connections open or being opened
        self._waiters: deque[asyncio.Future] = deque()
        self._closed = False

    @property
    def open_connections(self) -> int:
        return self._open

    async def all(self, call: Call) -> list[dict[str, Any]]:
        """Every row of the statement, as dicts keyed by its column labels (as ``Hot.all``).
        A database error is raised as SQLAlchemy's wrapper of it, as the synchronous path
        raises it."""
        compiled, bound = call.hot.bind(self.dialect, call.params)
        conn = await self._acquire()
        reusable = False
        try:
            cursor = conn.cursor()
            try:
                await cursor.execute(compiled.sql, bound)
                names, _procs = compiled.result_shape(cursor, self.dialect)
                fetched = await cursor.fetchall() if names is not None else None
            except psycopg.Error as exc:
                reusable = _idle(conn)
                raise sa.exc.DBAPIError.instance(compiled.sql, bound, exc, psycopg.Error) from exc
            finally:
                await cursor.close()
            reusable = True
            return Hot.rows(compiled, cursor, self.dialect, fetched)
        finally:
            self._release(conn, reusable)

    async def first(self, call: Call) -> dict[str, Any] | None:
        rows = await self.all(call)
        return rows[0] if rows else None

    async def _acquire(self) -> psycopg.AsyncConnection:
        if self._closed:
            raise RuntimeError("this AsyncPg is closed")
        while self._idle:
            conn, idle_since = self._idle.pop()
            if time.monotonic() - idle_since < PING_AFTER_IDLE_S:
                return conn
            try:
                await conn.execute("SELECT 1")
                return conn
            except psycopg.Error:
                self._discard(conn)
        if self._open >= self.size:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                handed = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                    self._release(waiter.result(), True)  # handed over as we were cancelled
                elif waiter.done() and not waiter.cancelled():
                    self._hand_slot()  # a free slot was ours: pass it on
                raise
            if handed is not None:
                return handed
            # None: a connection was closed and its slot handed to us; open a new one.
        else:
            self._open += 1
        try:
            return await psycopg.AsyncConnection.connect(**self._connect_kwargs)
        except BaseException:
            self._open -= 1
            self._hand_slot()
            raise

    def _release(self, conn: psycopg.AsyncConnection, reusable: bool) -> None:
        if not reusable or self._closed or not _idle(conn):
            self._discard(conn)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append((conn, time.monotonic()))

    def _discard(self, conn: psycopg.AsyncConnection) -> None:
        _close_now(conn)
        self._open -= 1
        self._hand_slot()

    def _hand_slot(self) -> None:
        """A connection slot is free: the first live waiter takes it (and opens a connection)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._open += 1
                waiter.set_result(None)
                return

    def close(self) -> None:
        """Close the idle connections and refuse new statements (from any thread; connections
        in use are closed when they come back). Waiters get an error."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn, _since in idle:
            _close_now(conn)
            self._open -= 1
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(RuntimeError("this AsyncPg is closed"))


def _idle(conn: psycopg.AsyncConnection) -> bool:
    """Whether the connection can run the next statement: open, and not inside a statement or
    a transaction (in autocommit mode a finished statement leaves it idle)."""
    return not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE


def _close_now(conn: psycopg.AsyncConnection) -> None:
    """Close without the event loop: ``AsyncConnection.close`` only ends the libpq connection,
    which is a synchronous call, so this works from any thread and after the loop is gone."""
    if not conn.closed:
        conn.pgconn.finish()
