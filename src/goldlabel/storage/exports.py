"""Reads for exports: keyset batches of items by id, and the batch's answers, consensus,
predictions and gold fetched by item-id range (one indexed range scan each, no IN list).

JSON columns come back as JSON text (``CAST(... AS TEXT)``), never parsed: the writers embed
them as they are. The queries go through the DBAPI cursor and return plain tuples: at a million
items, SQLAlchemy's per-row Result machinery cost more than the database's work.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldlabel.storage.tables import users


def _fetch(conn: Connection, sql: str, params: tuple) -> list[tuple]:
    if conn.dialect.name == "postgresql":
        sql = sql.replace("?", "%s")
    cur = conn.connection.cursor()
    try:
        cur.execute(sql, params)
        return cur.fetchall()
    finally:
        cur.close()


def prefer_indexes(conn: Connection) -> None:
    """PostgreSQL: no sequential scans in this (export) transaction; stale statistics after a
    bulk load would otherwise make every batch scan the table."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")


def fetch_item_batch(
    conn: Connection, project_id: int, after: int, limit: int, *, status: str | None = None
) -> list[tuple]:
    """``(id, external_id, data, meta, priority, status, is_gold)``, ``id > after`` in id order."""
    # Unary + keeps SQLite on the rowid range scan: through an index on project_id it would
    # sort the whole project for every batch; "+ 0" does the same on PostgreSQL.
    project = "+project_id" if conn.dialect.name == "sqlite" else "project_id + 0"
    where = f"{project} = ? AND id > ?"
    params: tuple = (project_id, after)
    if status is not None:
        where += " AND status = ?"
        params += (status,)
    return _fetch(
        conn,
        "SELECT id, external_id, CAST(data AS TEXT), CAST(meta AS TEXT), priority, status, is_gold "
        f"FROM items WHERE {where} ORDER BY id LIMIT ?",
        (*params, limit),
    )


def fetch_answers(conn: Connection, project_id: int, first: int, last: int) -> list[tuple]:
    """``(item_id, annotator_id, value, created_at, duration_ms)`` for items in [first, last]."""
    # The project filter must not steer the planner onto the (project_id, id) index: that scans
    # every answer of the project for each batch (quadratic); the item-id range is the selective part.
    project = "+project_id" if conn.dialect.name == "sqlite" else "project_id + 0"
    return _fetch(
        conn,
        "SELECT item_id, annotator_id, CAST(value AS TEXT), created_at, duration_ms FROM answers "
        f"WHERE item_id BETWEEN ? AND ? AND {project} = ? ORDER BY item_id, id",
        (first, last, project_id),
    )


def fetch_consensus(conn: Connection, project_id: int, first: int, last: int) -> list[tuple]:
    """``(item_id, question, value, confidence)``."""
    return _fetch(
        conn,
        "SELECT item_id, question, CAST(value AS TEXT), confidence FROM consensus "
        "WHERE item_id BETWEEN ? AND ? AND project_id = ? ORDER BY item_id, question",
        (first, last, project_id),
    )


def fetch_predictions(conn: Connection, project_id: int, first: int, last: int) -> list[tuple]:
    """``(item_id, model_version, value, score)``."""
    return _fetch(
        conn,
        "SELECT item_id, model_version, CAST(value AS TEXT), score FROM predictions "
        "WHERE item_id BETWEEN ? AND ? AND project_id = ? ORDER BY item_id, id",
        (first, last, project_id),
    )


def fetch_gold(conn: Connection, project_id: int, first: int, last: int) -> list[tuple]:
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
