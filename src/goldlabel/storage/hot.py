"""The annotate loop's statements, compiled once and run on the driver's cursor.

A lease + submit cycle runs 14 short statements on SQLite. Through ``Connection.execute``
each paid 15-25 µs of SQLAlchemy's per-call work (cache-key lookup, execution context, event
dispatch, result wrapper) around SQLite's own 5-15 µs: the largest single share of the server's
CPU per cycle (profile in docs/benchmarks.md, "Annotate loop"). :class:`Hot` keeps SQLAlchemy
for what it is good at here (one Core definition of the statement for both databases, the
dialect's SQL, its bind and result processing for JSON and booleans, its error wrapping) and
skips the per-call machinery: the statement is compiled once per dialect (and, for INSERT and
UPDATE, per set of parameter names), and each call binds values and runs the driver's cursor.

Only for statements without expanding (``IN``) or post-compile parameters; anything else is
refused when first compiled. The compiled form is kept per dialect name, with the bind and
result processors of the first engine that ran it: the engines of one backend must agree on
their JSON serializer (``storage.engine`` builds them all with the same one). Outside a
transaction the statement goes through ``Connection.execute`` as usual, so autobegin and
SQLite's ``BEGIN`` hook still apply.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase

_Proc = Callable[[Any], Any] | None


def _getter(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """The values of ``names`` from a dict, as a tuple (itemgetter returns a bare value for one name)."""
    if not names:
        return lambda _values: ()
    if len(names) == 1:
        name = names[0]
        return lambda values: (values[name],)
    return operator.itemgetter(*names)


class _Compiled:
    __slots__ = ("binds", "defaults", "names", "order", "positional", "result_types", "results", "sql")

    def __init__(self, stmt: sa.Executable, dialect: Dialect, keys: tuple[str, ...] | None) -> None:
        compiled: SQLCompiler = stmt.compile(dialect=dialect, column_keys=list(keys) if keys is not None else None)
        sql = compiled.string
        if "POSTCOMPILE" in sql or compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError(f"Hot cannot run a statement with expanding or post-compile parameters: {sql}")
        self.sql = sql
        self.positional = bool(compiled.positional)
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ()) if self.positional else ()
        # Values bound in the statement itself (literals such as status = 'active').
        self.defaults: dict[str, Any] = dict(compiled.construct_params(_check=False))
        if not self.positional:
            self.names = tuple(self.defaults)
        self.order = _getter(self.names)
        processors = compiled._bind_processors
        escaped = compiled.escaped_bind_names or {}
        if escaped:
            raise ValueError(f"Hot cannot run a statement with escaped bind names: {sql}")
        self.binds: tuple[tuple[str, Callable[[Any], Any]], ...] = tuple(
            (name, proc) for name, proc in processors.items() if proc is not None
        )
        # Result types by position (compiled SELECT / RETURNING) or by name (text().columns()).
        columns = compiled._result_columns
        self.result_types: tuple[list[Any], dict[str, Any]] = (
            [c.type for c in columns],
            {c.keyname: c.type for c in columns},
        )
        self.results: tuple[tuple[str, ...] | None, tuple[_Proc, ...]] | None = None

    def params(self, given: Mapping[str, Any]) -> Any:
        values = {**self.defaults, **given}
        for name, proc in self.binds:
            if name in values:
                values[name] = proc(values[name])
        if self.positional:
            return self.order(values)
        return values

    def result_shape(self, cursor: Any, dialect: Dialect) -> tuple[tuple[str, ...] | None, tuple[_Proc, ...]]:
        """(column names, result processors) of the statement's rows; names None for a
        statement without a result set. Worked out from the first run's ``cursor.description``
        and kept: the same SQL always returns the same columns, and psycopg builds
        ``description`` afresh on every access, a Column object per column (a sixth of the
        server's CPU in the PostgreSQL annotate loop, with 180 columns a cycle)."""
        if self.results is None:
            description = cursor.description
            if description is None:
                self.results = (None, ())
                return self.results
            by_position, by_name = self.result_types
            names = tuple(d[0] for d in description)
            procs: list[_Proc] = []
            for i, d in enumerate(description):
                type_ = by_position[i] if len(by_position) == len(description) else by_name.get(d[0])
                procs.append(type_._cached_result_processor(dialect, d[1]) if type_ is not None else None)
            self.results = (names, tuple(procs))
        return self.results


class Hot:
    """A Core statement run on the DB-API cursor of the connection's open transaction."""

    __slots__ = ("_by_keys", "_cache", "stmt")

    def __init__(self, stmt: sa.Executable) -> None:
        self.stmt = stmt
        self._cache: dict[Any, _Compiled] = {}
        # The SQL of INSERT and UPDATE depends on which parameters are given (column_keys).
        self._by_keys = isinstance(stmt, UpdateBase) and not isinstance(stmt, sa.Delete)

    def _compiled(self, dialect: Dialect, params: Mapping[str, Any]) -> _Compiled:
        keys = tuple(sorted(params)) if self._by_keys else None
        key = (dialect.name, keys)
        compiled = self._cache.get(key)
        if compiled is None:
            compiled = self._cache[key] = _Compiled(self.stmt, dialect, keys)
        return compiled

    def bind(self, dialect: Dialect, params: Mapping[str, Any]) -> tuple[_Compiled, Any]:
        """The compiled statement for ``dialect`` and ``params`` bound for its driver: what a
        caller with a cursor of its own (storage.aio) executes."""
        compiled = self._compiled(dialect, params)
        return compiled, compiled.params(params)

    def _run(self, conn: Connection, params: Mapping[str, Any]) -> tuple[Any, _Compiled]:
        dialect = conn.dialect
        compiled, bound = self.bind(dialect, params)
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.execute(compiled.sql, bound)
        except dialect.loaded_dbapi.Error as exc:
            cursor.close()
            conn._handle_dbapi_exception(exc, compiled.sql, bound, cursor, None)
            raise  # _handle_dbapi_exception always raises; this keeps type checkers informed
        return cursor, compiled

    @staticmethod
    def rows(compiled: _Compiled, cursor: Any, dialect: Dialect, fetched: list[Any] | None) -> list[dict[str, Any]]:
        """``fetched`` (the cursor's rows, None for a statement without a result set) as dicts
        keyed by the statement's column labels, through the dialect's result processors. The
        result shape is read from ``cursor`` on the statement's first run only."""
        names, procs = compiled.result_shape(cursor, dialect)
        if names is None or fetched is None:
            return []
        if not any(procs):
            return [dict(zip(names, row)) for row in fetched]
        return [
            {name: (proc(v) if proc is not None else v) for name, proc, v in zip(names, procs, row)}
            for row in fetched
        ]

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every row, as dicts keyed by the statement's column labels."""
        if not conn.in_transaction():
            return [dict(r) for r in conn.execute(self.stmt, dict(params)).mappings()]
        cursor, compiled = self._run(conn, params)
        try:
            names, _procs = compiled.result_shape(cursor, conn.dialect)
            fetched = cursor.fetchall() if names is not None else None
        finally:
            cursor.close()
        return self.rows(compiled, cursor, conn.dialect, fetched)

    def first(self, conn: Connection, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The first row or None (the statement runs to completion, as for RETURNING)."""
        rows = self.all(conn, params)
        return rows[0] if rows else None

    def rowcount(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Rows matched by an UPDATE or DELETE (no RETURNING)."""
        if not conn.in_transaction():
            return conn.execute(self.stmt, dict(params)).rowcount
        cursor, _ = self._run(conn, params)
        try:
            return cursor.rowcount
        finally:
            cursor.close()

    def many(self, conn: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
        """executemany: the same statement for each parameter set (no RETURNING)."""
        rows = list(rows)
        if not rows:
            return
        if not conn.in_transaction():
            conn.execute(self.stmt, [dict(r) for r in rows])
            return
        dialect = conn.dialect
        compiled = self._compiled(dialect, rows[0])
        bound = [compiled.params(r) for r in rows]
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.executemany(compiled.sql, bound)
        except dialect.loaded_dbapi.Error as exc:
            conn._handle_dbapi_exception(exc, compiled.sql, bound, cursor, None)
            raise
        finally:
            cursor.close()


class Call(NamedTuple):
    """A hot statement with its parameters: built by a storage function, run by the caller on a
    connection (:meth:`all`) or on the event loop (storage.aio), so the same SQL serves both."""

    hot: Hot
    params: Mapping[str, Any]

    def all(self, conn: Connection) -> list[dict[str, Any]]:
        return self.hot.all(conn, self.params)
