"""Keyset reads for the scale-out passes (services/model_scaleout.py): a whole project's items,
a batch at a time, however many there are."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldlabel.storage.tables import embeddings, items, predictions


def items_to_embed_after(conn: Connection, project_id: int, after: int, limit: int) -> list[tuple[Any, ...]]:
    """(id, data) of the project's items without an embedding and with an id above ``after``,
    lowest id first (storage.models.items_to_embed, walked by a cursor: the pass reads the next
    batch before the last one's vectors are written)."""
    q = (
        sa.select(items.c.id, items.c.data)
        .select_from(items.outerjoin(embeddings, embeddings.c.item_id == items.c.id))
        .where(items.c.project_id == project_id, embeddings.c.item_id.is_(None), items.c.id > after)
        .order_by(items.c.id)
        .limit(limit)
    )
    return [tuple(r) for r in conn.execute(q)]


def vectors_without_prediction(conn: Connection, project_id: int, model_version: str, after: int,
                               limit: int) -> list[tuple[int, bytes, float]]:
    """(item_id, int8 vector, scale) of the project's embedded items with an id above ``after``
    that have no prediction of ``model_version``, in item-id order."""
    predicted = sa.select(predictions.c.item_id).where(predictions.c.item_id == embeddings.c.item_id,
                                                       predictions.c.model_version == model_version)
    q = (
        sa.select(embeddings.c.item_id, embeddings.c.vector, embeddings.c.scale)
        .where(embeddings.c.project_id == project_id, embeddings.c.item_id > after, ~predicted.exists())
        .order_by(embeddings.c.item_id)
        .limit(limit)
    )
    return [(int(i), bytes(v), float(s)) for i, v, s in conn.execute(q)]
