"""Reads for the manager console: dashboard aggregates and the filtered item browser.

Every query here stays fast on a project with a million items: it seeks an index and reads a
bounded window (recent answers, a capped sample, one keyset page), never ``OFFSET`` and never a
``COUNT`` over the items' data. Time windows are found by a binary search over the id of
append-only tables (answers, events), whose ids grow with their ``created_at``: ~30 index seeks
instead of a scan of the whole history.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldlabel.storage.quality import is_live_item
from goldlabel.storage.tables import (
    answers,
    consensus,
    events,
    items,
    project_models,
    reviews,
    users,
)


def _edge_id(conn: Connection, table: sa.Table, project_id: int, descending: bool) -> int | None:
    order = table.c.id.desc() if descending else table.c.id
    return conn.execute(
        sa.select(table.c.id).where(table.c.project_id == project_id).order_by(order).limit(1)
    ).scalar()


#: the append-only tables whose ids grow with their created_at, by the name callers use
_TIME_ORDERED: dict[str, sa.Table] = {"answers": answers, "events": events}


def first_id_since(conn: Connection, log: str, project_id: int, since_ms: int) -> int | None:
    """The smallest id of ``log`` ("answers" or "events") in the project created at or after
    ``since_ms``; None when nothing is that recent. O(log(id range)) index seeks."""
    table = _TIME_ORDERED[log]
    lo = _edge_id(conn, table, project_id, descending=False)
    hi = _edge_id(conn, table, project_id, descending=True)
    if lo is None or hi is None:
        return None
    probe = (
        sa.select(table.c.id, table.c.created_at)
        .where(table.c.project_id == project_id, table.c.id >= sa.bindparam("at"))
        .order_by(table.c.id)
        .limit(1)
    )

    def at(i: int) -> tuple[int, int]:
        row = conn.execute(probe, {"at": i}).one()
        return int(row[0]), int(row[1])

    _, last_at = at(hi)
    if last_at < since_ms:
        return None
    first_id, first_at = at(lo)
    if first_at >= since_ms:
        return first_id
    # Smallest x in (lo, hi] whose first row at or after x is recent; at(x) grows with x.
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if at(mid)[1] >= since_ms:
            hi = mid
        else:
            lo = mid
    return at(hi)[0]


def answer_counts_by_bucket(conn: Connection, project_id: int, start_id: int, bucket_ms: int) -> dict[int, int]:
    """Answers per time bucket (bucket index = created_at // bucket_ms) from ``start_id`` on."""
    bucket = sa.cast(sa.func.floor(answers.c.created_at / sa.literal(bucket_ms, sa.BigInteger)), sa.BigInteger)
    q = (
        sa.select(bucket, sa.func.count())
        .where(answers.c.project_id == project_id, answers.c.id >= start_id)
        .group_by(bucket)
    )
    return {int(b): int(n) for b, n in conn.execute(q)}


def finalizations_by_bucket(conn: Connection, project_id: int, start_id: int, bucket_ms: int) -> dict[int, int]:
    """Items that became final per time bucket, from the events outbox (``item.final`` from the
    consensus, ``item.reviewed`` accept/fix by a reviewer)."""
    q = sa.select(events.c.kind, events.c.created_at, events.c.payload).where(
        events.c.project_id == project_id, events.c.id >= start_id,
        events.c.kind.in_(("item.final", "item.reviewed")),
    )
    out: dict[int, int] = {}
    for kind, created_at, payload in conn.execute(q):
        if kind == "item.reviewed" and (payload or {}).get("status") != "final":
            continue
        b = int(created_at) // bucket_ms
        out[b] = out.get(b, 0) + 1
    return out


def confidence_sample(
    conn: Connection, project_id: int, cap: int = 20_000, strata: int = 20
) -> tuple[list[float], bool]:
    """Consensus confidences of the project: all of them when there are at most ``cap`` rows,
    else a sample of ``strata`` evenly spaced runs along the item id (index seeks, no scan).
    Returns (confidences, sampled)."""
    base = (
        sa.select(consensus.c.confidence)
        .where(consensus.c.project_id == project_id, consensus.c.confidence.is_not(None))
        .order_by(consensus.c.item_id)
    )
    first = [float(c) for (c,) in conn.execute(base.limit(cap + 1))]
    if len(first) <= cap:
        return first, False
    lo = conn.execute(
        sa.select(consensus.c.item_id).where(consensus.c.project_id == project_id)
        .order_by(consensus.c.item_id).limit(1)
    ).scalar_one()
    hi = conn.execute(
        sa.select(consensus.c.item_id).where(consensus.c.project_id == project_id)
        .order_by(consensus.c.item_id.desc()).limit(1)
    ).scalar_one()
    per = cap // strata
    out: list[float] = []
    for k in range(strata):
        start = lo + (hi - lo) * k // strata
        q = base.where(consensus.c.item_id >= start).limit(per)
        out.extend(float(c) for (c,) in conn.execute(q))
    return out, True


def recent_answers_of(conn: Connection, project_id: int, annotator_id: int, limit: int = 500) -> list[dict[str, Any]]:
    """An annotator's latest answers to live items in the project (value, duration, item)."""
    q = (
        sa.select(answers.c.item_id, answers.c.value, answers.c.duration_ms, answers.c.created_at)
        .where(answers.c.project_id == project_id, answers.c.annotator_id == annotator_id,
               is_live_item(project_id, answers.c.item_id))
        .order_by(answers.c.id.desc())
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def consensus_values(conn: Connection, item_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """item id -> {question: {value, confidence, method, status}} for the given items."""
    ids = list(item_ids)
    out: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        q = sa.select(consensus.c.item_id, consensus.c.question, consensus.c.value, consensus.c.confidence,
                      consensus.c.method, consensus.c.status).where(consensus.c.item_id.in_(ids[start:start + 500]))
        for item_id, question, value, confidence, method, status in conn.execute(q):
            out.setdefault(int(item_id), {})[question] = {
                "value": value, "confidence": confidence, "method": method, "status": status,
            }
    return out


def gold_item_ids(conn: Connection, item_ids: Iterable[int]) -> set[int]:
    ids = list(item_ids)
    if not ids:
        return set()
    q = sa.select(items.c.id).where(items.c.id.in_(ids), items.c.is_gold)
    return {int(i) for (i,) in conn.execute(q)}


def usernames(conn: Connection, user_ids: Iterable[int]) -> dict[int, str]:
    ids = sorted({int(i) for i in user_ids if i is not None})
    if not ids:
        return {}
    q = sa.select(users.c.id, users.c.username).where(users.c.id.in_(ids))
    return {int(i): name for i, name in conn.execute(q)}


def next_item_with_status(conn: Connection, project_id: int, status: str, after: int) -> int | None:
    """The first non-gold item with ``status`` after ``after`` (then from the start): the review
    queue's "next". Uses the queue index (project_id, status, is_gold, ...)."""
    base = sa.select(items.c.id).where(
        items.c.project_id == project_id, items.c.status == status, items.c.is_gold == sa.false()
    ).order_by(items.c.id).limit(1)
    found = conn.execute(base.where(items.c.id > after)).scalar()
    if found is None and after:
        found = conn.execute(base.where(items.c.id < after)).scalar()
    return None if found is None else int(found)


def recent_reviews(conn: Connection, project_id: int, limit: int = 10) -> list[dict[str, Any]]:
    q = (
        sa.select(reviews.c.id, reviews.c.item_id, reviews.c.action, reviews.c.reviewer_id, reviews.c.created_at,
                  users.c.username.label("reviewer"))
        .join(users, users.c.id == reviews.c.reviewer_id)
        .where(reviews.c.project_id == project_id)
        .order_by(reviews.c.id.desc())
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def refit_state(conn: Connection, project_id: int) -> tuple[int | None, int, int | None] | None:
    """(fitted_at, n_answers, busy_until) of the project's last full re-fit (the row with
    question ''), or None before the first one."""

    row = conn.execute(
        sa.select(project_models.c.fitted_at, project_models.c.n_answers, project_models.c.busy_until)
        .where(project_models.c.project_id == project_id, project_models.c.question == "")
    ).first()
    return None if row is None else (row[0], row[1], row[2])
