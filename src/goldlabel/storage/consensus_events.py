"""Consensus rows (what the answers or a reviewer say each item's label is) and the events
outbox (item and annotator events, delivered by services/webhooks.py)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from goldlabel.storage.hot import Hot
from goldlabel.storage.tables import consensus, events

# Every answer replaces its item's consensus: statements built once, with bind parameters.
# Only rows whose label came from the answers (source "consensus") are replaced: a label a
# reviewer accepted or fixed is final and no later answer or re-fit rewrites it, so the
# insert skips the questions such a row holds (one statement either way).
_DELETE_CONSENSUS = consensus.delete().where(
    consensus.c.item_id == sa.bindparam("b_item_id"), consensus.c.source == "consensus"
)
_DELETE_ALL_CONSENSUS = consensus.delete().where(consensus.c.item_id == sa.bindparam("b_item_id"))
_INSERT_CONSENSUS = consensus.insert()
_INSERT_EVENT = events.insert()
_H_DELETE_CONSENSUS = Hot(_DELETE_CONSENSUS)
_H_INSERT_CONSENSUS = {
    name: Hot(d.insert(consensus).on_conflict_do_nothing())
    for name, d in (("sqlite", sqlite), ("postgresql", postgresql))
}
_H_INSERT_EVENT = Hot(_INSERT_EVENT)


def replace_consensus(conn: Connection, item_id: int, project_id: int, rows: list[dict[str, Any]]) -> None:
    """Replace the item's consensus rows (one per question) in place, except reviewed ones
    (source other than "consensus"), which stay as they are."""
    _H_DELETE_CONSENSUS.rowcount(conn, {"b_item_id": item_id})
    if rows:
        _H_INSERT_CONSENSUS[conn.dialect.name].many(
            conn, [{"agreement": None, **r, "item_id": item_id, "project_id": project_id} for r in rows]
        )


def set_reviewed_consensus(conn: Connection, item_id: int, project_id: int, rows: list[dict[str, Any]]) -> None:
    """Replace all of the item's consensus rows, reviewed ones included (a review's own write:
    each row carries its ``source``, ``reviewer_id`` and ``reviewed_at``)."""
    conn.execute(_DELETE_ALL_CONSENSUS, {"b_item_id": item_id})
    if rows:
        conn.execute(_INSERT_CONSENSUS, [{"agreement": None, **r, "item_id": item_id, "project_id": project_id}
                                         for r in rows])


def fetch_consensus(conn: Connection, item_id: int) -> list[dict[str, Any]]:
    q = sa.select(consensus).where(consensus.c.item_id == item_id).order_by(consensus.c.question)
    return [dict(r) for r in conn.execute(q).mappings()]


def insert_event(conn: Connection, project_id: int | None, kind: str, payload: dict[str, Any], at: int) -> None:
    conn.execute(_INSERT_EVENT, {"project_id": project_id, "kind": kind, "payload": payload, "created_at": at})


def insert_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    _H_INSERT_EVENT.many(conn, rows)


def list_events(conn: Connection, project_id: int, after: int, limit: int) -> list[dict[str, Any]]:
    q = (
        sa.select(events)
        .where(events.c.project_id == project_id, events.c.id > after)
        .order_by(events.c.id)
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(q).mappings()]
