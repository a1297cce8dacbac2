"""The work queue's SQL: claim, submit, skip, release. Callers hold a write transaction.

SQLite serializes writers (``BEGIN IMMEDIATE``), so a candidate read inside the transaction
cannot be taken by anyone else before COMMIT. PostgreSQL runs claims concurrently: the
candidate is locked with ``FOR UPDATE SKIP LOCKED`` so two claimers never wait on, or take,
the same row. Either way the final ``UPDATE ... WHERE answer_count + reserved < target``
is re-checked by the database, and CHECK constraints on ``items`` back Q1 and Q3.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldlabel.domain.queue_policy import QUEUE_ORDER, Candidate
from goldlabel.storage.tables import answers, items, leases

_ORDER_BY = [
    getattr(items.c, col).desc() if direction == "desc" else getattr(items.c, col).asc()
    for col, direction in QUEUE_ORDER
]


def reap_expired_leases(conn: Connection, project_id: int, now: int) -> int:
    """Q6: expired leases hand their slot back. Runs at claim time; no sleeper needed."""
    expired = conn.execute(
        leases.update()
        .where(leases.c.project_id == project_id, leases.c.status == "active", leases.c.expires_at <= now)
        .values(status="expired")
        .returning(leases.c.item_id)
    ).all()
    if expired:
        conn.execute(
            items.update()
            .where(items.c.id == sa.bindparam("b_item_id"))
            .values(reserved=items.c.reserved - 1),
            [{"b_item_id": row.item_id} for row in expired],
        )
    return len(expired)


def fetch_active_leases(conn: Connection, project_id: int, annotator_id: int, now: int) -> list[dict]:
    q = (
        sa.select(leases)
        .where(
            leases.c.annotator_id == annotator_id,
            leases.c.project_id == project_id,
            leases.c.status == "active",
            leases.c.expires_at > now,
        )
        .order_by(leases.c.id)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def fetch_candidates(
    conn: Connection, project_id: int, annotator_id: int, *, is_gold: bool, limit: int = 1
) -> list[Candidate]:
    """Head of the queue for this annotator, in policy order, skipping items that are full,
    leased to them, answered or skipped by them."""
    mine = sa.select(sa.literal(1)).where(
        leases.c.item_id == items.c.id,
        leases.c.annotator_id == annotator_id,
        leases.c.status != "expired",
    )
    q = (
        sa.select(items.c.id, items.c.priority, items.c.answer_count, items.c.is_gold)
        .where(
            items.c.project_id == project_id,
            items.c.status == "open",
            items.c.is_gold == is_gold,
            items.c.answer_count + items.c.reserved < items.c.target_overlap,
            ~sa.exists(mine),
        )
        .order_by(*_ORDER_BY)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True, of=items)
    return [Candidate(r.id, r.priority, r.answer_count, r.is_gold) for r in conn.execute(q)]


def reserve_item(conn: Connection, item_id: int) -> bool:
    res = conn.execute(
        items.update()
        .where(
            items.c.id == item_id,
            items.c.status == "open",
            items.c.answer_count + items.c.reserved < items.c.target_overlap,
        )
        .values(reserved=items.c.reserved + 1)
    )
    return res.rowcount == 1


def insert_lease(conn: Connection, **values: Any) -> dict:
    # A previous lease of this annotator on this item can only be an expired one (the
    # candidate query excludes the others); the unique (item, annotator) index keeps Q3.
    conn.execute(
        leases.delete().where(
            leases.c.item_id == values["item_id"],
            leases.c.annotator_id == values["annotator_id"],
            leases.c.status == "expired",
        )
    )
    return dict(conn.execute(leases.insert().values(**values).returning(*leases.c)).mappings().one())


def fetch_lease_by_token(conn: Connection, token_hash: str) -> dict | None:
    row = conn.execute(sa.select(leases).where(leases.c.token_hash == token_hash)).mappings().first()
    return dict(row) if row else None


def fetch_item_for_update(conn: Connection, item_id: int) -> dict | None:
    q = sa.select(items).where(items.c.id == item_id)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = conn.execute(q).mappings().first()
    return dict(row) if row else None


def set_lease_status(conn: Connection, lease_id: int, status: str, answer_id: int | None = None) -> None:
    values: dict[str, Any] = {"status": status}
    if answer_id is not None:
        values["answer_id"] = answer_id
    conn.execute(leases.update().where(leases.c.id == lease_id).values(**values))


def delete_lease(conn: Connection, lease_id: int) -> None:
    conn.execute(leases.delete().where(leases.c.id == lease_id))


def unreserve_item(conn: Connection, item_id: int) -> None:
    conn.execute(items.update().where(items.c.id == item_id).values(reserved=items.c.reserved - 1))


def count_answer(conn: Connection, item_id: int, *, was_reserved: bool, now: int) -> bool:
    """Add one answer to the item's count. A live lease turns its reservation into the answer;
    a late one (Q7) needs a free slot. Returns False when Q1/Q3 would break."""
    if was_reserved:
        q = (
            items.update()
            .where(items.c.id == item_id, items.c.answer_count < items.c.overlap_max)
            .values(answer_count=items.c.answer_count + 1, reserved=items.c.reserved - 1, updated_at=now)
        )
    else:
        q = (
            items.update()
            .where(
                items.c.id == item_id,
                items.c.status == "open",
                items.c.answer_count + items.c.reserved < items.c.target_overlap,
                items.c.answer_count < items.c.overlap_max,
            )
            .values(answer_count=items.c.answer_count + 1, updated_at=now)
        )
    return conn.execute(q).rowcount == 1


def insert_answer(conn: Connection, **values: Any) -> dict:
    return dict(conn.execute(answers.insert().values(**values).returning(*answers.c)).mappings().one())


def fetch_answer(conn: Connection, answer_id: int) -> dict | None:
    row = conn.execute(sa.select(answers).where(answers.c.id == answer_id)).mappings().first()
    return dict(row) if row else None


def fetch_answer_by_idempotency_key(conn: Connection, annotator_id: int, key: str) -> dict | None:
    row = (
        conn.execute(
            sa.select(answers).where(answers.c.annotator_id == annotator_id, answers.c.idempotency_key == key)
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def fetch_item_answers(conn: Connection, item_id: int) -> list[dict]:
    q = sa.select(answers).where(answers.c.item_id == item_id).order_by(answers.c.id)
    return [dict(r) for r in conn.execute(q).mappings()]


def update_item_state(conn: Connection, item_id: int, *, status: str, target_overlap: int, now: int) -> None:
    conn.execute(
        items.update()
        .where(items.c.id == item_id)
        .values(status=status, target_overlap=target_overlap, updated_at=now)
    )


def lock_lease_by_token(conn: Connection, token_hash: str) -> dict | None:
    """The lease, re-read under a row lock on PostgreSQL (SQLite's write transaction already
    excludes every other writer). Submit, skip and release decide on the lease's status: read
    without the lock, a concurrent reaper, retry or skip could change it before COMMIT, and the
    item's reservation would be handed back twice."""
    q = sa.select(leases).where(leases.c.token_hash == token_hash)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = conn.execute(q).mappings().first()
    return dict(row) if row else None


def fetch_first_answers(conn: Connection, item_id: int, limit: int) -> list[dict]:
    """The item's first ``limit`` answers, oldest first."""
    q = sa.select(answers).where(answers.c.item_id == item_id).order_by(answers.c.id).limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]
