"""PostgreSQL on the event loop: the annotate loop's statements without blocking it.

A server worker that runs a request's statements on its event loop with the blocking driver
serves one request at a time, whatever else waits: with keep-alive connections spread over the
workers by the kernel, a worker that drew three annotators served them one after another while
another worker idled (8 annotators over 4 workers: 310 to 680 cycles/s from one run to the
next, docs/benchmarks.md). With the asynchronous driver a worker interleaves the database waits
of all its requests.

:class:`AsyncPg` runs :class:`~goldlabel.storage.hot.Call` values (the same compiled SQL, bind
and result processing as the synchronous path) in autocommit mode: each statement is its own
transaction, so there is no BEGIN, COMMIT or rollback to manage and a connection is back in the
pool as soon as its statement returns. Connections are psycopg ``AsyncConnection`` objects
opened with the engine's connection settings and type adapters (JSON through the same
serializer, ``synchronous_commit=on`` for Q4), so a row reads the same on both paths.

The statements run on the connection's libpq object itself, as prepared statements (prepared
once per connection, then only their name and parameters travel), with psycopg's C row loader:
psycopg's asynchronous cursor cost 60-100 µs of CPU a statement on this machine, this path
about 40% less (docs/benchmarks.md), and a statement's length no longer matters (psycopg
re-parses the placeholders of a statement over 4096 characters on every execution).
Parameters travel as text, their types inferred by the server from the statement (the queue's
statements cast what the context does not type).

One :class:`AsyncPg` per event loop (psycopg's asynchronous connections belong to the loop
that opened them); ``services.context.Context`` keeps them.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections import deque
from functools import lru_cache
from typing import Any

import orjson
import psycopg
import sqlalchemy as sa
from psycopg import errors as pg_errors
from psycopg.adapt import Transformer
from psycopg.pq import ExecStatus, TransactionStatus
from psycopg.types.json import Json, Jsonb
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
        self._idle: list[tuple[_Conn, float]] = []
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
        native = _native(compiled.sql)
        values = [_text(bound[name]) for name in native.names]
        conn = await self._acquire()
        reusable = False
        try:
            try:
                if native.name not in conn.prepared:
                    await conn.prepare(native)
                result = await conn.execute(native, values)
            except psycopg.Error as exc:
                reusable = conn.idle()
                raise sa.exc.DBAPIError.instance(compiled.sql, bound, exc, psycopg.Error) from exc
            reusable = True
            return conn.rows(compiled, self.dialect, result)
        finally:
            self._release(conn, reusable)

    async def first(self, call: Call) -> dict[str, Any] | None:
        rows = await self.all(call)
        return rows[0] if rows else None

    async def _acquire(self) -> _Conn:
        if self._closed:
            raise RuntimeError("this AsyncPg is closed")
        while self._idle:
            conn, idle_since = self._idle.pop()
            if time.monotonic() - idle_since < PING_AFTER_IDLE_S:
                return conn
            try:
                await conn.ping()
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
                    self._open -= 1  # a free slot was ours (counted as opening): pass it on
                    self._hand_slot()
                raise
            if handed is not None:
                return handed
            # None: a connection was closed and its slot handed to us; open a new one.
        else:
            self._open += 1
        try:
            return _Conn(await psycopg.AsyncConnection.connect(**self._connect_kwargs))
        except BaseException:
            self._open -= 1
            self._hand_slot()
            raise

    def _release(self, conn: _Conn, reusable: bool) -> None:
        if not reusable or self._closed or not conn.idle():
            self._discard(conn)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append((conn, time.monotonic()))

    def _discard(self, conn: _Conn) -> None:
        conn.close()
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
        """Close the idle connections and refuse new statements; connections in use are closed
        when they come back, and waiters get an error. Call it on the pool's event loop, or
        once that loop has stopped (Context.close)."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn, _since in idle:
            conn.close()
            self._open -= 1
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(RuntimeError("this AsyncPg is closed"))


class _Native:
    """A statement as the server prepares it: ``$n`` placeholders, the parameter names in
    their order, and the name it is prepared under on every connection."""

    __slots__ = ("name", "names", "sql")

    def __init__(self, name: bytes, sql: bytes, names: tuple[str, ...]) -> None:
        self.name, self.sql, self.names = name, sql, names


_PLACEHOLDER = re.compile(r"%\(([^)]+)\)s|%%")
_NATIVE: dict[str, _Native] = {}
_NAMES = itertools.count(1)


def _native(sql: str) -> _Native:
    """The prepared form of a statement compiled for psycopg (``%(name)s`` placeholders, ``%%``
    for a literal %), made once per SQL text."""
    native = _NATIVE.get(sql)
    if native is None:
        order: dict[str, int] = {}

        def number(match: re.Match) -> str:
            if match.group(0) == "%%":
                return "%"
            return f"${order.setdefault(match.group(1), len(order) + 1)}"

        text = _PLACEHOLDER.sub(number, sql)
        native = _NATIVE.setdefault(sql, _Native(f"goldlabel_{next(_NAMES)}".encode(), text.encode(), tuple(order)))
    return native


def _text(value: Any) -> bytes | None:
    """A parameter in PostgreSQL's text format; the server types it from the statement."""
    convert = _TEXT.get(type(value))
    if convert is not None:
        return convert(value)
    if isinstance(value, bool):
        return b"t" if value else b"f"
    if isinstance(value, (int, float, str)):
        return str(value).encode()
    if isinstance(value, (list, tuple)):
        return _sequence(value)
    if isinstance(value, (Json, Jsonb)):  # what a JSON column's bind processor makes of a value
        dumped = value.dumps(value.obj) if value.dumps else orjson.dumps(value.obj)
        return dumped if isinstance(dumped, bytes) else dumped.encode()
    raise TypeError(f"storage.aio cannot send a parameter of type {type(value).__name__}")


def _sequence(value: list | tuple) -> bytes:
    values = tuple(value)
    try:
        return _array(values)
    except TypeError:  # an element that cannot be a cache key
        return _array.__wrapped__(values)


@lru_cache(maxsize=256)
def _array(values: tuple) -> bytes:
    """An array literal (the same few, such as the roles that may annotate, come back often)."""
    return ("{" + ",".join(_array_element(v) for v in values) + "}").encode()


def _array_element(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "t" if value else "f"
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# The parameter types the annotate loop sends, by exact type (a bool is an int: it has its own).
_TEXT: dict[type, Any] = {
    str: str.encode,
    int: lambda v: str(v).encode(),
    type(None): lambda _v: None,
    bool: lambda v: b"t" if v else b"f",
    float: lambda v: str(v).encode(),
    list: _sequence,
    tuple: _sequence,
}


class _Description:
    """What ``storage.hot`` reads of a cursor to learn a statement's result shape: names and
    type oids, from the first result only (the shape is then kept)."""

    def __init__(self, result: Any) -> None:
        self.result = result

    @property
    def description(self) -> list[tuple[str, int]] | None:
        res = self.result
        if res.status != ExecStatus.TUPLES_OK:
            return None
        return [(res.fname(i).decode(), res.ftype(i)) for i in range(res.nfields)]


class _Conn:
    """An autocommit connection run through its libpq object: the statements prepared on it,
    and psycopg's row loader with the connection's adapters."""

    __slots__ = ("conn", "pgconn", "prepared", "transformer")

    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self.conn = conn
        self.pgconn = conn.pgconn
        self.prepared: set[bytes] = set()
        self.transformer = Transformer(conn)

    async def prepare(self, native: _Native) -> None:
        self.pgconn.send_prepare(native.name, native.sql)
        result = await self._result()
        self._check(result)
        self.prepared.add(native.name)

    async def execute(self, native: _Native, values: list[bytes | None]) -> Any:
        self.pgconn.send_query_prepared(native.name, values)
        result = await self._result()
        self._check(result)
        return result

    async def ping(self) -> None:
        self.pgconn.send_query(b"SELECT 1")
        self._check(await self._result())

    def rows(self, compiled: Any, dialect: Any, result: Any) -> list[dict[str, Any]]:
        fetched = None
        if result.status == ExecStatus.TUPLES_OK:
            tx = self.transformer
            tx.set_pgresult(result)
            fetched = tx.load_rows(0, result.ntuples, tuple)
        return Hot.rows(compiled, _Description(result), dialect, fetched)

    async def _result(self) -> Any:
        """Send what is buffered, then wait for the statement's results; the last one (a single
        statement has one)."""
        pgconn = self.pgconn
        loop = asyncio.get_running_loop()
        fd = pgconn.socket
        while pgconn.flush():
            await _ready(loop, fd, loop.add_writer, loop.remove_writer)
        last = None
        while True:
            await _ready(loop, fd, loop.add_reader, loop.remove_reader)
            pgconn.consume_input()
            while not pgconn.is_busy():
                result = pgconn.get_result()
                if result is None:
                    if last is None:
                        raise psycopg.OperationalError("the server sent no result")
                    return last
                last = result

    def _check(self, result: Any) -> None:
        if result.status == ExecStatus.FATAL_ERROR:
            raise pg_errors.error_from_result(result, encoding=self.conn.info.encoding)
        if result.status not in (ExecStatus.TUPLES_OK, ExecStatus.COMMAND_OK):
            raise psycopg.InterfaceError(f"unexpected result status {ExecStatus(result.status).name}")

    def idle(self) -> bool:
        """Whether the connection can run the next statement: open, and not inside a statement
        or a transaction (in autocommit mode a finished statement leaves it idle)."""
        return not self.conn.closed and self.pgconn.transaction_status == TransactionStatus.IDLE

    def close(self) -> None:
        """Close without the event loop: ``AsyncConnection.close`` only ends the libpq
        connection, which is a synchronous call, so this works from any thread and after the
        loop is gone."""
        if not self.conn.closed:
            self.pgconn.finish()


async def _ready(loop: asyncio.AbstractEventLoop, fd: int, add: Any, remove: Any) -> None:
    """Until ``fd`` is readable (``add``/``remove`` the loop's reader methods) or writable."""
    future = loop.create_future()

    def wake() -> None:
        if not future.done():
            future.set_result(None)

    add(fd, wake)
    try:
        await future
    finally:
        remove(fd)
