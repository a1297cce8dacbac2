"""Reads for exports: keyset batches of items by id, and the batch's answers, consensus,
predictions and gold fetched by item-id range (one indexed range scan each, no IN list).

JSON columns come back as JSON text (``CAST(... AS TEXT)``), never parsed: the writers embed
them as they are. The queries go through the DBAPI cursor and return plain tuples: at a million
items, SQLAlchemy's per-row Result machinery cost more than the database's work.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldlabel.storage.tables import users


def _fetch(conn: Connection, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    if conn.dialect.name == "postgresql":
        sql = sql.replace("?", "%s")
    cur = conn.connection.cursor()
    try:
        cur.execute(sql, params)
        return cast("list[tuple[Any, ...]]", cur.fetchall())
    finally:
        cur.close()


def prefer_indexes(conn: Connection) -> None:
    """PostgreSQL: plain index scans only in this (export) transaction. Statistics are stale
    after a bulk load (and absent until ANALYZE or autovacuum runs), and with them the planner
    took a batch query for a few hundred rows: a sequential scan, or a bitmap scan of every item
    above ``after`` followed by a sort, for each batch. Both grow with the project, so an export
    turned quadratic; the primary-key scan stays flat (measured: docs/benchmarks.md, "Numbers behind the code")."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        conn.exec_driver_sql("SET LOCAL enable_bitmapscan = off")


def item_batch_sql(dialect: str, *, with_status: bool) -> str:
    """The keyset batch query; parameters ``(project_id, after[, status], limit)``."""
    # Unary + keeps SQLite on the rowid range scan: through an index on project_id it would
    # sort the whole project for every batch; "+ 0" does the same on PostgreSQL.
    project = "+project_id" if dialect == "sqlite" else "project_id + 0"
    # A deleted item (in its undo window) is never exported.
    status = " AND status = ?" if with_status else " AND status <> 'deleted'"
    return (
        "SELECT id, external_id, CAST(data AS TEXT), CAST(meta AS TEXT), priority, status, is_gold "  # nosec B608  # constant fragments; the values are bound parameters
        f"FROM items WHERE {project} = ? AND id > ?{status} ORDER BY id LIMIT ?"
    )


def fetch_item_batch(
    conn: Connection, project_id: int, after: int, limit: int, *, status: str | None = None
) -> list[tuple[Any, ...]]:
    """``(id, external_id, data, meta, priority, status, is_gold)``, ``id > after`` in id order."""
    params = (project_id, after, limit) if status is None else (project_id, after, status, limit)
    return _fetch(conn, item_batch_sql(conn.dialect.name, with_status=status is not None), params)


def fetch_answers(conn: Connection, project_id: int, first: int, last: int) -> list[tuple[Any, ...]]:
    """``(item_id, annotator_id, value, created_at, duration_ms)`` for items in [first, last]."""
    # The project filter must not steer the planner onto the (project_id, id) index: that scans
    # every answer of the project for each batch (quadratic); the item-id range is the selective part.
    project = "+project_id" if conn.dialect.name == "sqlite" else "project_id + 0"
    return _fetch(
        conn,
        "SELECT item_id, annotator_id, CAST(value AS TEXT), created_at, duration_ms FROM answers "  # nosec B608  # constant fragments; the values are bound parameters
        f"WHERE item_id BETWEEN ? AND ? AND {project} = ? ORDER BY item_id, id",
        (first, last, project_id),
    )


def fetch_consensus(conn: Connection, project_id: int, first: int, last: int) -> list[tuple[Any, ...]]:
    """``(item_id, question, value, confidence, source, reviewer_id, reviewed_at)``; ``source``
    is ``consensus+model`` for a consensus the project model voted in as an annotator (its
    ``method`` ends in ``+model``)."""
    return _fetch(
        conn,
        "SELECT item_id, question, CAST(value AS TEXT), confidence, "
        "CASE WHEN source = 'consensus' AND substr(method, length(method) - 5) = '+model' "
        "THEN 'consensus+model' ELSE source END, reviewer_id, reviewed_at FROM consensus "
        "WHERE item_id BETWEEN ? AND ? AND project_id = ? ORDER BY item_id, question",
        (first, last, project_id),
    )


def fetch_predictions(conn: Connection, project_id: int, first: int, last: int) -> list[tuple[Any, ...]]:
    """``(item_id, model_version, value, score)``."""
    return _fetch(
        conn,
        "SELECT item_id, model_version, CAST(value AS TEXT), score FROM predictions "
        "WHERE item_id BETWEEN ? AND ? AND project_id = ? ORDER BY item_id, id",
        (first, last, project_id),
    )


def fetch_gold(conn: Connection, project_id: int, first: int, last: int) -> list[tuple[Any, ...]]:
    """``(item_id, value)``. Managers only: the caller checked the manage permission (Q8)."""
    return _fetch(
        conn,
        "SELECT item_id, CAST(value AS TEXT) FROM gold_answers WHERE item_id BETWEEN ? AND ? AND project_id = ?",
        (first, last, project_id),
    )


def fetch_usernames(conn: Connection, user_ids: Iterable[int]) -> dict[int, str]:
    ids = list(user_ids)
    if not ids:
        return {}
    return dict(conn.execute(sa.select(users.c.id, users.c.username).where(users.c.id.in_(ids))).all())
