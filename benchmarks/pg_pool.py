"""goldlabel's own async PostgreSQL pool (storage/aio.py) against psycopg_pool and asyncpg.

Issue 13 asks whether the hand-written pool in ``storage/aio.py`` earns its place next to two
well-kept libraries. This runs the same statements, the same concurrency and the same pool size
through the three, in one process, one after another, in the same run:

- ``goldlabel`` -- ``storage.aio.AsyncPg``: prepared statements on the libpq object, rows
  through the SQLAlchemy result processors (what the annotate loop runs today);
- ``psycopg_pool`` -- ``AsyncConnectionPool`` + ``AsyncConnection.execute(..., prepare=True)``,
  dict rows, JSON decoded by psycopg's loader;
- ``asyncpg`` -- ``asyncpg.create_pool`` + ``Connection.fetchrow`` (statements prepared and
  cached by asyncpg), JSON decoded by a codec set to orjson, the per-release session reset
  turned off (it costs a round trip and these connections keep no session state).

The workload is the annotate loop's shape: per cycle one read of an item row with a JSON
column joined to its project (as the lease and submit reads do) and one autocommit
``UPDATE ... RETURNING`` with ``synchronous_commit=on`` (the answer write). Reported per driver
and concurrency: cycles/s, client CPU per cycle (``time.process_time``, the figure the pool's
design is about: the server's event loop is CPU-bound long before PostgreSQL is), p50 / p99.

    .venv/bin/pip install asyncpg psycopg_pool     # or: pip install -e '.[bench]'
    .venv/bin/python benchmarks/pg_pool.py --cycles 3000 --concurrency 1,8,32
    .venv/bin/python benchmarks/pg_pool.py --write-docs

A fresh database is created and dropped here (GOLDLABEL_BENCH_POSTGRES_URL, default
postgres@127.0.0.1:5432). Rounds alternate the drivers (A B C, B C A, ...) so drift in the
machine's load spreads over all three.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs" / "benchmarks.md"
SECTION = "## PostgreSQL async pool"
PG_ADMIN = os.environ.get("GOLDLABEL_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
ROWS = 10_000

READ_SQL = (
    "SELECT i.id, i.status, i.answer_count, i.data, p.settings FROM bench_items i "
    "JOIN bench_projects p ON p.id = i.project_id WHERE i.id = {0}"
)
WRITE_SQL = (
    "UPDATE bench_items SET answer_count = answer_count + 1, data = {1} WHERE id = {0} "
    "RETURNING id, answer_count, status"
)


def _setup(admin_url: str) -> tuple[str, str]:
    name = f"goldlabel_bench_pool_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = sa.make_url(admin_url).set(database=name)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE bench_projects (id int PRIMARY KEY, settings jsonb NOT NULL)"))
        conn.execute(sa.text(
            "CREATE TABLE bench_items (id int PRIMARY KEY, project_id int NOT NULL REFERENCES bench_projects,"
            " status text NOT NULL, answer_count int NOT NULL, data jsonb NOT NULL)"
        ))
        conn.execute(sa.text("INSERT INTO bench_projects VALUES (1, :s)"),
                     {"s": orjson.dumps({"overlap": 3, "gold_rate": 0.05}).decode()})
        conn.execute(sa.text(
            "INSERT INTO bench_items SELECT g, 1, 'open', 0, jsonb_build_object('text', 'item ' || g, 'n', g) "
            "FROM generate_series(1, :n) g"
        ), {"n": ROWS})
    engine.dispose()
    return name, url.render_as_string(hide_password=False)


def _drop(admin_url: str, name: str) -> None:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


class GoldlabelDriver:
    name = "goldlabel (storage/aio.py)"

    def __init__(self, url: str, size: int) -> None:
        from goldlabel.config import Settings
        from goldlabel.storage.aio import AsyncPg
        from goldlabel.storage.engine import create_engine
        from goldlabel.storage.hot import Call, Hot

        self.engine = create_engine(Settings(database_url=url, pg_pool_size=size))
        self.pool = AsyncPg(self.engine, size)
        self.Call = Call
        self.read = Hot(sa.text(READ_SQL.format(":id")).columns(
            sa.column("id", sa.Integer), sa.column("status", sa.String), sa.column("answer_count", sa.Integer),
            sa.column("data", sa.JSON), sa.column("settings", sa.JSON)))
        self.write = Hot(sa.text(WRITE_SQL.format(":id", "CAST(:data AS jsonb)")).columns(
            sa.column("id", sa.Integer), sa.column("answer_count", sa.Integer), sa.column("status", sa.String)))

    async def start(self) -> None:
        pass

    async def cycle(self, item_id: int) -> None:
        row = await self.pool.first(self.Call(self.read, {"id": item_id}))
        data = dict(row["data"], last=item_id)
        await self.pool.first(self.Call(self.write, {"id": item_id, "data": orjson.dumps(data).decode()}))

    async def close(self) -> None:
        self.pool.close()
        self.engine.dispose()


class PsycopgPoolDriver:
    name = "psycopg_pool 3.3"

    def __init__(self, url: str, size: int) -> None:
        self.url = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.size = size

    async def start(self) -> None:
        import psycopg
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool

        async def configure(conn: psycopg.AsyncConnection) -> None:
            await conn.set_autocommit(True)
            conn.row_factory = dict_row

        self.pool = AsyncConnectionPool(self.url, min_size=self.size, max_size=self.size, open=False,
                                        configure=configure, kwargs={"options": "-c synchronous_commit=on"})
        await self.pool.open(wait=True)
        self.read = READ_SQL.format("%(id)s")
        self.write = WRITE_SQL.format("%(id)s", "%(data)s::jsonb")

    async def cycle(self, item_id: int) -> None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(self.read, {"id": item_id}, prepare=True)
            row = await cur.fetchone()
        data = dict(row["data"], last=item_id)
        async with self.pool.connection() as conn:
            cur = await conn.execute(self.write, {"id": item_id, "data": orjson.dumps(data).decode()}, prepare=True)
            await cur.fetchone()

    async def close(self) -> None:
        await self.pool.close()


class AsyncpgDriver:
    name = "asyncpg 0.32"

    def __init__(self, url: str, size: int) -> None:
        self.url = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.size = size

    async def start(self) -> None:
        import asyncpg

        async def init(conn: Any) -> None:
            for typ in ("json", "jsonb"):
                await conn.set_type_codec(typ, encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads,
                                          schema="pg_catalog")

        async def no_reset(conn: Any) -> None:
            # The default reset costs a round trip on every release (RESET ALL, UNLISTEN *, ...);
            # these connections change no session state, so none is needed: asyncpg at its best.
            return None

        self.pool = await asyncpg.create_pool(self.url, min_size=self.size, max_size=self.size, init=init,
                                              reset=no_reset, server_settings={"synchronous_commit": "on"})
        self.read = READ_SQL.format("$1")
        self.write = WRITE_SQL.format("$1", "$2")

    async def cycle(self, item_id: int) -> None:
        async with self.pool.acquire() as conn:
            row = dict(await conn.fetchrow(self.read, item_id))
        data = dict(row["data"], last=item_id)
        async with self.pool.acquire() as conn:
            dict(await conn.fetchrow(self.write, item_id, data))

    async def close(self) -> None:
        await self.pool.close()


DRIVERS = [GoldlabelDriver, PsycopgPoolDriver, AsyncpgDriver]


async def _run(driver: Any, cycles: int, concurrency: int) -> dict[str, float]:
    await driver.start()
    # warm-up: every connection opened and every statement prepared before the clock starts
    await asyncio.gather(*(driver.cycle(1 + i % ROWS) for i in range(4 * concurrency)))
    latencies: list[float] = []
    counter = iter(range(cycles))

    async def client(k: int) -> None:
        for n in counter:
            t0 = time.perf_counter()
            await driver.cycle(1 + (n * 7919 + k) % ROWS)
            latencies.append(time.perf_counter() - t0)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await driver.close()
    latencies.sort()
    return {
        "cycles_s": cycles / wall,
        "cpu_us": 1e6 * cpu / cycles,
        "p50_ms": 1e3 * latencies[len(latencies) // 2],
        "p99_ms": 1e3 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=3000, help="cycles per driver and level")
    ap.add_argument("--concurrency", default="1,8,32", help="concurrent clients per level")
    ap.add_argument("--pool-size", type=int, default=10, help="connections per pool (settings.pg_pool_size)")
    ap.add_argument("--rounds", type=int, default=3, help="repetitions; the median of each figure is reported")
    ap.add_argument("--write-docs", action="store_true", help=f"write the table to {DOCS.relative_to(REPO)}")
    args = ap.parse_args()
    try:
        import asyncpg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        print(f"skipped: {exc.name} is not installed (pip install -e '.[bench]')")
        return 0
    levels = [int(c) for c in args.concurrency.split(",")]
    name, url = _setup(PG_ADMIN)
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    try:
        for r in range(args.rounds):
            order = DRIVERS[r % 3:] + DRIVERS[:r % 3]
            for level in levels:
                for cls in order:
                    driver = cls(url, args.pool_size)
                    res = asyncio.run(_run(driver, args.cycles, level))
                    results.setdefault((cls.name, level), []).append(res)
                    print(f"round {r + 1} {cls.name:28s} c={level:<3d} {res['cycles_s']:8.0f} cycles/s "
                          f"{res['cpu_us']:7.0f} µs CPU/cycle  p99 {res['p99_ms']:.2f} ms", flush=True)
    finally:
        _drop(PG_ADMIN, name)
    load = os.getloadavg()[0]
    lines = [
        ("| clients | driver | cycles/s | client CPU µs / cycle | p50 ms | p99 ms | cycles/s vs goldlabel "
         "| CPU vs goldlabel |"),
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for level in levels:
        first = results[(DRIVERS[0].name, level)]
        base = {k: statistics.median(r[k] for r in first) for k in first[0]}
        for cls in DRIVERS:
            med = {k: statistics.median(r[k] for r in results[(cls.name, level)]) for k in base}
            lines.append(
                f"| {level} | {cls.name} | {med['cycles_s']:.0f} | {med['cpu_us']:.0f} | {med['p50_ms']:.2f} | "
                f"{med['p99_ms']:.2f} | {med['cycles_s'] / base['cycles_s']:.2f}x | "
                f"{med['cpu_us'] / base['cpu_us']:.2f}x |"
            )
    table = "\n".join(lines)
    print()
    print(table)
    print(f"\nload average at the end: {load:.2f}; {args.rounds} rounds, median shown; pool size {args.pool_size}")
    if args.write_docs:
        _write_docs(table, args, load)
    return 0


def _write_docs(table: str, args: argparse.Namespace, load: float) -> None:
    import platform

    import asyncpg
    import psycopg
    import psycopg_pool

    body = (
        f"{SECTION}\n\n"
        "`benchmarks/pg_pool.py` (issue 13): the annotate loop's statement shape (a read of an item row with "
        "JSON joined to its project, then an autocommit `UPDATE ... RETURNING` at `synchronous_commit=on`) "
        "through goldlabel's `storage/aio.py`, psycopg_pool and asyncpg, same pool size, same run, rounds "
        f"alternating the order. {args.cycles} cycles per driver and level, median of {args.rounds} rounds, "
        f"pool size {args.pool_size}; load average {load:.2f} at the end ({platform.python_version()}, "
        f"psycopg {psycopg.__version__}, psycopg_pool {psycopg_pool.__version__}, asyncpg {asyncpg.__version__}).\n\n"
        f"{table}\n"
    )
    text = DOCS.read_text()
    start = text.find(SECTION)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + body
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + body + (text[end + 1:] if end != -1 else "")
    DOCS.write_text(text)
    print(f"wrote {DOCS.relative_to(REPO)}")


if __name__ == "__main__":
    sys.exit(main())
