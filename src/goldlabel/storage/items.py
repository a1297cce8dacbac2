"""Items, their predictions and gold answers; answer listings."""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldlabel.storage.tables import (
    Json,
    answers,
    consensus,
    gold_answers,
    items,
    leases,
    predictions,
)


def fetch_item(conn: Connection, project_id: int, item_id: int) -> dict[str, Any] | None:
    row = (
        conn.execute(sa.select(items).where(items.c.id == item_id, items.c.project_id == project_id))
        .mappings()
        .first()
    )
    return dict(row) if row else None


def fetch_item_data(conn: Connection, item_id: int) -> dict[str, Any]:
    return cast("dict[str, Any]", conn.execute(sa.select(items.c.data).where(items.c.id == item_id)).scalar_one())


def fetch_item_status(conn: Connection, item_id: int) -> str:
    return cast("str", conn.execute(sa.select(items.c.status).where(items.c.id == item_id)).scalar_one())


def fetch_predictions(conn: Connection, item_id: int) -> list[dict[str, Any]]:
    q = sa.select(predictions).where(predictions.c.item_id == item_id).order_by(predictions.c.id)
    return [dict(r) for r in conn.execute(q).mappings()]


def fetch_gold(conn: Connection, item_id: int) -> dict[str, Any] | None:
    """Managers only: the caller must have checked the manage permission."""
    return conn.execute(sa.select(gold_answers.c.value).where(gold_answers.c.item_id == item_id)).scalar()


def fetch_answers(conn: Connection, item_id: int) -> list[dict[str, Any]]:
    q = sa.select(answers).where(answers.c.item_id == item_id).order_by(answers.c.id)
    return [dict(r) for r in conn.execute(q).mappings()]


def list_items(
    conn: Connection,
    project_id: int,
    after: int,
    limit: int,
    *,
    status: str | None = None,
    is_gold: bool | None = None,
    annotator_id: int | None = None,
    question: str | None = None,
    label: Any = None,
    min_confidence: float | None = None,
    max_confidence: float | None = None,
    disagreement: bool = False,
) -> list[dict[str, Any]]:
    """A keyset page of items (``id > after ORDER BY id LIMIT n``) with the given filters.

    Label and confidence filters test the item's consensus row for ``question`` through its
    primary key (item_id, question); the annotator filter tests the (item_id, annotator_id)
    unique index. No OFFSET, no COUNT: page N costs what page 1 costs.
    """
    q = (
        sa.select(items)
        .where(items.c.project_id == project_id, items.c.id > after)
        .order_by(items.c.id)
        .limit(limit)
    )
    if status is not None:
        q = q.where(items.c.status == status)
    if is_gold is not None:
        q = q.where(items.c.is_gold == is_gold)
    if annotator_id is not None:
        q = q.where(
            sa.exists(
                sa.select(sa.literal(1)).where(answers.c.item_id == items.c.id, answers.c.annotator_id == annotator_id)
            )
        )
    if question is not None and (disagreement or any(f is not None for f in (label, min_confidence, max_confidence))):
        conds = [consensus.c.item_id == items.c.id, consensus.c.question == question]
        if label is not None:
            conds.append(consensus.c.value == sa.type_coerce(label, Json))
        if min_confidence is not None:
            conds.append(consensus.c.confidence >= min_confidence)
        if max_confidence is not None:
            conds.append(consensus.c.confidence <= max_confidence)
        if disagreement:
            # agreement = share of answers matching the consensus; below 1 = not unanimous
            conds.append(consensus.c.agreement < 1 - 1e-9)
        q = q.where(sa.exists(sa.select(sa.literal(1)).where(*conds)))
    return [dict(r) for r in conn.execute(q).mappings()]


def set_reviewed_state(conn: Connection, item_id: int, *, status: str, target_overlap: int,
                       overlap_max: int, now: int) -> None:
    """A review's decision on an item: its status, and for a reject the overlap it now needs
    (which may exceed the project's maximum: one more independent answer)."""
    conn.execute(items.update().where(items.c.id == item_id).values(
        status=status, target_overlap=target_overlap, overlap_max=overlap_max, updated_at=now))


def delete_item(conn: Connection, project_id: int, item_id: int) -> bool:
    res = conn.execute(items.delete().where(items.c.id == item_id, items.c.project_id == project_id))
    return res.rowcount == 1


def rotate_lease_token(conn: Connection, lease_id: int, token_hash: str) -> None:
    conn.execute(leases.update().where(leases.c.id == lease_id).values(token_hash=token_hash))


def list_answers_by_annotator(
    conn: Connection, project_id: int, annotator_id: int, after: int, limit: int
) -> list[dict[str, Any]]:
    q = (
        sa.select(answers, items.c.status.label("item_status"))
        .join(items, items.c.id == answers.c.item_id)
        .where(answers.c.project_id == project_id, answers.c.annotator_id == annotator_id)
        .order_by(answers.c.id.desc())
        .limit(limit)
    )
    if after:
        q = q.where(answers.c.id < after)
    return [dict(r) for r in conn.execute(q).mappings()]


def list_project_answers(conn: Connection, project_id: int, after: int, limit: int) -> list[dict[str, Any]]:
    q = (
        sa.select(answers)
        .where(answers.c.project_id == project_id, answers.c.id > after)
        .order_by(answers.c.id)
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def update_answer_value(conn: Connection, answer_id: int, value: dict[str, Any], now: int) -> dict[str, Any]:
    return dict(
        conn.execute(
            answers.update().where(answers.c.id == answer_id).values(value=value, updated_at=now).returning(*answers.c)
        )
        .mappings()
        .one()
    )
