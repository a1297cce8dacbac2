"""Reads for exports: keyset batches of items by id, and the batch's answers, consensus,
predictions and gold fetched by item-id range (one indexed range scan each, no IN list).

JSON columns come back as JSON text (``CAST(... AS TEXT)``), never parsed: the writers embed
them as they are, which is most of what makes an export fast.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldlabel.storage.tables import answers, consensus, gold_answers, items, predictions, users


def _text(col: sa.ColumnElement) -> sa.ColumnElement:
    return sa.cast(col, sa.Text)


def fetch_item_batch(
    conn: Connection, project_id: int, after: int, limit: int, *, status: str | None = None
) -> list[tuple]:
    """``(id, external_id, data, meta, priority, status, is_gold)``, ``id > after`` in id order."""
    project_col: sa.ColumnElement = items.c.project_id
    if conn.dialect.name == "sqlite":
        # Unary + keeps SQLite on the rowid range scan: with the project_id index it would sort
        # the whole project for every batch.
        project_col = sa.literal_column("+items.project_id")
    q = (
        sa.select(
            items.c.id, items.c.external_id, _text(items.c.data), _text(items.c.meta), items.c.priority,
            items.c.status, items.c.is_gold,
        )
        .where(project_col == project_id, items.c.id > after)
        .order_by(items.c.id)
        .limit(limit)
    )
    if status is not None:
        q = q.where(items.c.status == status)
    return list(conn.execute(q))


def fetch_answers(conn: Connection, project_id: int, first: int, last: int) -> list[tuple]:
    """``(item_id, annotator_id, value, created_at, duration_ms)`` for items in [first, last]."""
    q = (
        sa.select(answers.c.item_id, answers.c.annotator_id, _text(answers.c.value), answers.c.created_at,
                  answers.c.duration_ms)
        .where(answers.c.item_id.between(first, last), answers.c.project_id == project_id)
        .order_by(answers.c.item_id, answers.c.id)
    )
    return list(conn.execute(q))


def fetch_consensus(conn: Connection, project_id: int, first: int, last: int) -> list[tuple]:
    """``(item_id, question, value, confidence)``."""
    q = (
        sa.select(consensus.c.item_id, consensus.c.question, _text(consensus.c.value), consensus.c.confidence)
        .where(consensus.c.item_id.between(first, last), consensus.c.project_id == project_id)
        .order_by(consensus.c.item_id, consensus.c.question)
    )
    return list(conn.execute(q))


def fetch_predictions(conn: Connection, project_id: int, first: int, last: int) -> list[tuple]:
    """``(item_id, model_version, value, score)``."""
    q = (
        sa.select(predictions.c.item_id, predictions.c.model_version, _text(predictions.c.value),
                  predictions.c.score)
        .where(predictions.c.item_id.between(first, last), predictions.c.project_id == project_id)
        .order_by(predictions.c.item_id, predictions.c.id)
    )
    return list(conn.execute(q))


def fetch_gold(conn: Connection, project_id: int, first: int, last: int) -> list[tuple]:
    """``(item_id, value)``. Managers only: the caller checked the manage permission (Q8)."""
    q = sa.select(gold_answers.c.item_id, _text(gold_answers.c.value)).where(
        gold_answers.c.item_id.between(first, last), gold_answers.c.project_id == project_id
    )
    return list(conn.execute(q))


def fetch_usernames(conn: Connection, user_ids: Iterable[int]) -> dict[int, str]:
    ids = list(user_ids)
    if not ids:
        return {}
    return dict(conn.execute(sa.select(users.c.id, users.c.username).where(users.c.id.in_(ids))).all())
