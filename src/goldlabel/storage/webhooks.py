"""Webhook subscriptions, the fan-out of outbox events and the delivery log."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldlabel.storage.tables import events, webhook_deliveries, webhook_subscriptions

_SUB = webhook_subscriptions
_DEL = webhook_deliveries


def insert_subscription(conn: Connection, **row: Any) -> dict[str, Any]:
    new = conn.execute(_SUB.insert().values(**row).returning(*_SUB.c)).mappings().one()
    return dict(new)


def list_subscriptions(conn: Connection, project_id: int) -> list[dict[str, Any]]:
    q = sa.select(_SUB).where(_SUB.c.project_id == project_id).order_by(_SUB.c.id)
    return [dict(r) for r in conn.execute(q).mappings()]


def fetch_subscription(conn: Connection, project_id: int, subscription_id: int) -> dict[str, Any] | None:
    q = sa.select(_SUB).where(_SUB.c.project_id == project_id, _SUB.c.id == subscription_id)
    row = conn.execute(q).mappings().first()
    return dict(row) if row else None


def update_subscription(conn: Connection, subscription_id: int, changes: dict[str, Any]) -> None:
    conn.execute(_SUB.update().where(_SUB.c.id == subscription_id).values(**changes))


def delete_subscription(conn: Connection, subscription_id: int) -> None:
    conn.execute(_SUB.delete().where(_SUB.c.id == subscription_id))


def has_active_subscriptions(conn: Connection) -> bool:
    q = sa.select(sa.exists().where(_SUB.c.is_active.is_(True)))
    return bool(conn.execute(q).scalar())


def claim_unrouted_events(conn: Connection, limit: int) -> list[dict[str, Any]]:
    """The oldest events not yet fanned out, locked so that a worker of another process skips
    them (PostgreSQL; on SQLite the write transaction holds the database's one write lock)."""
    q = (
        sa.select(events.c.id, events.c.project_id, events.c.kind, events.c.created_at)
        .where(events.c.delivered_at.is_(None))
        .order_by(events.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def list_active_subscriptions(conn: Connection, project_ids: list[int]) -> list[dict[str, Any]]:
    q = sa.select(_SUB.c.id, _SUB.c.project_id, _SUB.c.event_types, _SUB.c.created_at).where(
        _SUB.c.project_id.in_(project_ids), _SUB.c.is_active.is_(True)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def insert_deliveries(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(_DEL.insert(), rows)


def mark_events_routed(conn: Connection, event_ids: list[int], now: int) -> None:
    conn.execute(events.update().where(events.c.id.in_(event_ids)).values(delivered_at=now))


def claim_due_deliveries(conn: Connection, now: int, limit: int, claim_until: int) -> list[dict[str, Any]]:
    """Pending deliveries whose time has come and that no live claim holds: claimed until
    ``claim_until`` and returned with what sending them needs. A worker that dies holding a
    claim leaves it to expire, and then another worker sends the delivery (at least once)."""
    due = (
        sa.select(_DEL.c.id)
        .join(_SUB, _SUB.c.id == _DEL.c.subscription_id)
        .where(
            _DEL.c.status == "pending",
            _DEL.c.next_attempt_at <= now,
            sa.or_(_DEL.c.claimed_until.is_(None), _DEL.c.claimed_until <= now),
            _SUB.c.is_active.is_(True),
        )
        .order_by(_DEL.c.next_attempt_at, _DEL.c.id)
        .limit(limit)
        .with_for_update(of=_DEL, skip_locked=True)
    )
    ids = [r[0] for r in conn.execute(due)]
    if not ids:
        return []
    conn.execute(_DEL.update().where(_DEL.c.id.in_(ids)).values(claimed_until=claim_until))
    q = (
        sa.select(
            _DEL.c.id, _DEL.c.attempts, _DEL.c.retry_until, _DEL.c.event_id, _DEL.c.project_id,
            _SUB.c.url, _SUB.c.secret, events.c.kind, events.c.payload,
            events.c.created_at.label("event_created_at"),
        )
        .join(_SUB, _SUB.c.id == _DEL.c.subscription_id)
        .join(events, events.c.id == _DEL.c.event_id)
        .where(_DEL.c.id.in_(ids))
        .order_by(_DEL.c.id)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def record_attempt(conn: Connection, delivery_id: int, claim_until: int, changes: dict[str, Any]) -> bool:
    """Write an attempt's outcome, only while this worker's claim still holds (a claim that
    expired may have passed to another worker, whose outcome wins)."""
    res = conn.execute(
        _DEL.update()
        .where(_DEL.c.id == delivery_id, _DEL.c.claimed_until == claim_until)
        .values(claimed_until=None, **changes)
    )
    return res.rowcount == 1


def list_deliveries(conn: Connection, subscription_id: int, after: int, limit: int,
                    status: str | None = None) -> list[dict[str, Any]]:
    q = sa.select(_DEL, events.c.kind).join(events, events.c.id == _DEL.c.event_id).where(
        _DEL.c.subscription_id == subscription_id
    )
    if after:
        q = q.where(_DEL.c.id < after)
    if status:
        q = q.where(_DEL.c.status == status)
    q = q.order_by(_DEL.c.id.desc()).limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


def fetch_delivery(conn: Connection, subscription_id: int, delivery_id: int) -> dict[str, Any] | None:
    q = sa.select(_DEL, events.c.kind).join(events, events.c.id == _DEL.c.event_id).where(
        _DEL.c.subscription_id == subscription_id, _DEL.c.id == delivery_id
    )
    row = conn.execute(q).mappings().first()
    return dict(row) if row else None


def requeue_delivery(conn: Connection, delivery_id: int, now: int, retry_until: int) -> None:
    """Send again now (a manager's re-send), with a fresh retry window."""
    conn.execute(
        _DEL.update()
        .where(_DEL.c.id == delivery_id)
        .values(status="pending", next_attempt_at=now, retry_until=retry_until, claimed_until=None)
    )


def delete_old_deliveries(conn: Connection, before: int, limit: int) -> int:
    """Drop up to ``limit`` finished deliveries created before ``before``; pending ones stay."""
    old = (
        sa.select(_DEL.c.id)
        .where(_DEL.c.status != "pending", _DEL.c.created_at < before)
        .order_by(_DEL.c.id)
        .limit(limit)
    )
    return conn.execute(_DEL.delete().where(_DEL.c.id.in_(old.scalar_subquery()))).rowcount
