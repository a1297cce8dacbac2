"""Consensus rows and the events outbox."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldlabel.storage.hot import Hot
from goldlabel.storage.tables import consensus, events

# Every answer replaces its item's consensus: statements built once, with bind parameters.
_DELETE_CONSENSUS = consensus.delete().where(consensus.c.item_id == sa.bindparam("b_item_id"))
_INSERT_CONSENSUS = consensus.insert()
_INSERT_EVENT = events.insert()
_H_DELETE_CONSENSUS = Hot(_DELETE_CONSENSUS)
_H_INSERT_CONSENSUS = Hot(_INSERT_CONSENSUS)
_H_INSERT_EVENT = Hot(_INSERT_EVENT)


def replace_consensus(conn: Connection, item_id: int, project_id: int, rows: list[dict[str, Any]]) -> None:
    """Replace the item's consensus rows (one per question) in place."""
    _H_DELETE_CONSENSUS.rowcount(conn, {"b_item_id": item_id})
    if rows:
        _H_INSERT_CONSENSUS.many(
            conn, [{"agreement": None, **r, "item_id": item_id, "project_id": project_id} for r in rows]
        )


def fetch_consensus(conn: Connection, item_id: int) -> list[dict]:
    q = sa.select(consensus).where(consensus.c.item_id == item_id).order_by(consensus.c.question)
    return [dict(r) for r in conn.execute(q).mappings()]


def insert_event(conn: Connection, project_id: int | None, kind: str, payload: dict, at: int) -> None:
    conn.execute(_INSERT_EVENT, {"project_id": project_id, "kind": kind, "payload": payload, "created_at": at})


def insert_events(conn: Connection, rows: list[dict]) -> None:
    _H_INSERT_EVENT.many(conn, rows)


def list_events(conn: Connection, project_id: int, after: int, limit: int) -> list[dict]:
    q = (
        sa.select(events)
        .where(events.c.project_id == project_id, events.c.id > after)
        .order_by(events.c.id)
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(q).mappings()]
