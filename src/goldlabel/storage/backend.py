"""One database backend per server, built at start-up: how the annotate loop's use cases
(services/queue/) run their work on this database from the event loop.

- :meth:`Backend.run` runs a synchronous storage call (a ``write_tx`` / ``read_tx`` block) from
  the event loop: on the loop itself when nothing of this process can make it wait (a thread
  hop per request, and the GIL passed back and forth between the loop and the pool, cost a
  third of the server's CPU at 8 annotators: docs/benchmarks.md), else in the thread pool. A
  short busy spell (another thread's write) is waited out without blocking the loop; a long one
  (an import, a re-fit) sends the call to the pool, where it waits as any route does.
- It returns only once the call's durable writes are on disk (Q4, storage.engine): on SQLite the
  write-ahead log's fdatasync runs on the loop when one annotator has it to themselves (the
  thread hop cost a lone annotator 11% of the throughput), else in a thread of its own while
  the loop serves the others, shared by every request waiting on it (group commit). The same
  rule as a ``write_tx`` outside the event loop: only where the sync runs differs.
- :meth:`Backend.all` runs one :class:`~goldlabel.storage.hot.Call` on the event loop
  (PostgreSQL: storage.aio), and :attr:`Backend.one_statement_lease` and
  :attr:`Backend.merged_submit` say whether the database has the one-statement lease and the
  merged submit (storage/queue_pg.py) at all: properties of the database, not flags that
  callers set (a test may build a backend without them to compare with the general path).

Browser and API-token clients reach the same Backend through the same use cases; only their
authentication differs (api/fastlane.py).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from goldlabel.storage.aio import AsyncPg
from goldlabel.storage.engine import deferred_flushes, sync_wal, uncontended
from goldlabel.storage.hot import Call

T = TypeVar("T")

# Waits between tries to run a call on the event loop (50 ms in all), then the thread pool.
INLINE_RETRY_PAUSES_S = (0.0, 0.001, 0.002, 0.005, 0.01, 0.01, 0.01, 0.012)
# A request from another connection within this long means other annotators share the loop:
# the log's sync then leaves it. Other annotators' requests are mostly still in their sockets,
# not in run(), when a sync starts: judged by calls in flight alone, 8 annotators synced on the
# loop and stalled it ~0.3 ms per answer (docs/benchmarks.md).
SHARED_WINDOW_S = 0.02


class Backend:
    """The database of one server process, as the event loop's use cases see it."""

    def __init__(self, engine: Engine, pool_size: int) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # PostgreSQL has the one-statement lease and the merged submit (storage/queue_pg.py);
        # SQLite runs the general path, in one BEGIN IMMEDIATE transaction.
        self.one_statement_lease = self.merged_submit = self.dialect == "postgresql"
        self._pool_size = pool_size
        self._lock = threading.Lock()
        self._async_pgs: dict[asyncio.AbstractEventLoop, AsyncPg] = {}
        # How calls were run: on the event loop ("inline") or in the thread pool ("thread"); how
        # many owed a log sync ("flushed") and the syncs run on the loop or in the sync thread.
        self.counts = {"inline": 0, "thread": 0, "flushed": 0, "flushed_inline": 0, "flushed_in_thread": 0}
        self._active = 0  # calls in run() now
        self._last_client: Any = None
        self._switched_at = -SHARED_WINDOW_S
        # One sync runs at a time (storage.engine.sync_wal), so it gets a thread of its own: it
        # never queues behind the shared pool's threads (which exports and imports may hold).
        self._sync_executor: ThreadPoolExecutor | None = None
        # Per (engine, event loop): the requests waiting on the log's sync (_GroupSync).
        self._groups: dict[tuple[Engine, asyncio.AbstractEventLoop], _GroupSync] = {}

    def note_client(self, client: Any) -> None:
        """The connection a request came on: requests of other connections just now mean the
        loop is shared (see SHARED_WINDOW_S)."""
        if client != self._last_client:
            if self._last_client is not None:
                self._switched_at = time.monotonic()
            self._last_client = client

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``, a synchronous storage call, from the event loop; its durable writes
        are on disk when this returns."""
        self._active += 1
        try:
            with deferred_flushes() as owed:
                result = await self._call(fn, *args)
            for engine, seq in owed:
                await self._sync(engine, seq)
            return result
        finally:
            self._active -= 1

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        for pause in INLINE_RETRY_PAUSES_S:
            with uncontended(self.engine) as free:
                if free:
                    self.counts["inline"] += 1
                    return fn(*args)
            await asyncio.sleep(pause)
        self.counts["thread"] += 1
        return await run_in_threadpool(fn, *args)

    async def _sync(self, engine: Engine, seq: int) -> None:
        self.counts["flushed"] += 1
        alone = self._active == 1 and time.monotonic() - self._switched_at > SHARED_WINDOW_S
        loop = asyncio.get_running_loop()
        group = self._groups.get((engine, loop))
        if group is None:
            group = self._groups[(engine, loop)] = _GroupSync(self, engine, loop)
        await group.wait(seq, alone)

    def sync_executor(self) -> ThreadPoolExecutor:
        if self._sync_executor is None:
            self._sync_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="goldlabel-wal-sync")
        return self._sync_executor

    # PostgreSQL on the event loop ------------------------------------------------------------

    def async_pg(self) -> AsyncPg:
        """The statement runner of the running event loop (made on first use, with as many
        connections as the engine's pool size)."""
        loop = asyncio.get_running_loop()
        pg = self._async_pgs.get(loop)
        if pg is None:
            with self._lock:
                pg = self._async_pgs.get(loop)
                if pg is None:
                    pg = self._async_pgs[loop] = AsyncPg(self.engine, self._pool_size)
        return pg

    async def all(self, call: Call) -> list[dict[str, Any]]:
        """Every row of one statement, run on the event loop (PostgreSQL only)."""
        return await self.async_pg().all(call)

    def close_loop(self) -> None:
        """Close the running event loop's statement runner, if it has one (server shutdown)."""
        loop = asyncio.get_running_loop()
        for key in [k for k in self._groups if k[1] is loop]:
            del self._groups[key]
        with self._lock:
            pg = self._async_pgs.pop(loop, None)
        if pg is not None:
            pg.close()

    def close(self) -> None:
        with self._lock:
            pgs, self._async_pgs = list(self._async_pgs.values()), {}
        for pg in pgs:
            pg.close()
        if self._sync_executor is not None:
            self._sync_executor.shutdown(wait=False)


class _GroupSync:
    """Group commit on one event loop: the requests waiting for one database's log sync share
    it. One sync runs at a time, in the backend's sync thread; a request that arrives while one
    runs waits for the next, which starts when the running one ends and covers every COMMIT
    made before it (storage.engine.sync_wal), so however many requests wait, one thread hop and
    one fdatasync serve them all, and the waiters wait on a future of the loop. A hop per
    waiting request (each asking the thread whether its COMMIT was covered yet) cost the server
    0.4-0.9 ms of CPU per annotate cycle at 8 and 32 annotators (docs/benchmarks.md)."""

    def __init__(self, backend: Backend, engine: Engine, loop: asyncio.AbstractEventLoop) -> None:
        self._backend = backend
        self._engine = engine
        self._loop = loop
        self._running: asyncio.Future[Any] | None = None
        self._next: asyncio.Future[Any] | None = None
        self._next_seq = 0

    async def wait(self, seq: int, alone: bool) -> None:
        if self._running is None:
            if alone:
                # Nothing else to serve: the loop may as well wait on the disk itself.
                if sync_wal(self._engine, seq):
                    self._backend.counts["flushed_inline"] += 1
                return
            waiter = self._start(seq)
        else:
            if self._next is None:
                self._next = self._loop.create_future()
            self._next_seq = max(self._next_seq, seq)
            waiter = self._next
        # Shielded: a request cancelled while it waits (client gone) leaves the sync to the others.
        await asyncio.shield(waiter)

    def _start(self, seq: int, into: asyncio.Future[Any] | None = None) -> asyncio.Future[Any]:
        running = self._loop.run_in_executor(self._backend.sync_executor(), sync_wal, self._engine, seq)
        self._running = running
        running.add_done_callback(self._finished)  # first: the next sync starts before waiters wake
        if into is not None:
            running.add_done_callback(lambda done: _settle(into, done))
        return running

    def _finished(self, done: asyncio.Future[Any]) -> None:
        self._running = None
        if not done.cancelled() and done.exception() is None and done.result():
            self._backend.counts["flushed_in_thread"] += 1
        queued, self._next = self._next, None
        seq, self._next_seq = self._next_seq, 0
        if queued is not None:
            self._start(seq, into=queued)


def _settle(target: asyncio.Future[Any], done: asyncio.Future[Any]) -> None:
    if target.done():
        return
    if done.cancelled():
        target.cancel()
        return
    error = done.exception()
    if error is not None:
        target.set_exception(error)
    else:
        target.set_result(None)
