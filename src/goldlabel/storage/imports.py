"""Bulk writes for imports: one indexed lookup and one multi-row INSERT per batch."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldlabel.storage.tables import gold_answers, items, predictions


def fetch_existing_ids(conn: Connection, project_id: int, external_ids: Sequence[str]) -> dict[str, int]:
    q = sa.select(items.c.external_id, items.c.id).where(
        items.c.project_id == project_id, items.c.external_id.in_(list(external_ids))
    )
    return {ext: item_id for ext, item_id in conn.execute(q)}


def insert_items(conn: Connection, rows: list[dict]) -> dict[str, int]:
    """Insert new items; returns external_id -> id."""
    if not rows:
        return {}
    res = conn.execute(items.insert().returning(items.c.external_id, items.c.id), rows)
    return {ext: item_id for ext, item_id in res}


def update_items(conn: Connection, rows: list[dict]) -> None:
    """Update data / meta / priority of existing items (``b_id`` names the row)."""
    if not rows:
        return
    conn.execute(
        items.update()
        .where(items.c.id == sa.bindparam("b_id"))
        .values(
            data=sa.bindparam("data"),
            meta=sa.bindparam("meta"),
            priority=sa.bindparam("priority"),
            updated_at=sa.bindparam("updated_at"),
        ),
        rows,
    )


def mark_gold(conn: Connection, item_ids: list[int], overlap: int) -> None:
    if item_ids:
        conn.execute(
            items.update()
            .where(items.c.id.in_(item_ids))
            .values(is_gold=True, target_overlap=overlap, overlap_max=overlap)
        )


def upsert_gold(conn: Connection, rows: list[dict]) -> None:
    if not rows:
        return
    conn.execute(gold_answers.delete().where(gold_answers.c.item_id.in_([r["item_id"] for r in rows])))
    conn.execute(gold_answers.insert(), rows)


def upsert_predictions(conn: Connection, rows: list[dict]) -> None:
    """One prediction per (item, model_version): a re-import replaces it."""
    if not rows:
        return
    keys = {(r["item_id"], r["model_version"]) for r in rows}
    conn.execute(
        predictions.delete().where(
            sa.tuple_(predictions.c.item_id, predictions.c.model_version).in_(list(keys))
        )
    )
    conn.execute(predictions.insert(), rows)
