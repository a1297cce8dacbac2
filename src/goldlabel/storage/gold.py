"""Gold answers waiting to be scored (``tables.gold_pending``; services/gold.py scores them).

A gold answer's row is written in its submit's transaction (here on the generic path, in the
merged statement of storage/queue_pg.py on PostgreSQL's common path) and deleted by the
transaction that scores it, so a crash between the two leaves the row for the next scorer.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from goldlabel.storage.hot import Hot
from goldlabel.storage.tables import annotator_stats, answers, gold_pending, items

# A waiting answer to an item deleted since waits on (not claimed): a delete takes only the
# scored answers out of the gold record (services.items), a restore puts them back, and this
# one is scored once its item is back (or goes with the item at the purge).
_WAITING = (
    sa.select(gold_pending.c.answer_id)
    .join(answers, answers.c.id == gold_pending.c.answer_id)
    .join(items, items.c.id == answers.c.item_id)
    .where(items.c.status != "deleted")
)
_OLDEST = _WAITING.order_by(gold_pending.c.answer_id).limit(1)
# On the submit's path (a gold answer's): a storage.hot statement, as the normal answer's writes.
_H_INSERT = Hot(gold_pending.insert())


def insert_pending(conn: Connection, answer_id: int, project_id: int, now: int) -> None:
    _H_INSERT.rowcount(conn, {"answer_id": answer_id, "project_id": project_id, "created_at": now})


def count_pending(conn: Connection, project_id: int | None = None) -> int:
    q = sa.select(sa.func.count()).select_from(gold_pending)
    if project_id is not None:
        q = q.where(gold_pending.c.project_id == project_id)
    return int(conn.execute(q).scalar_one())


def claim_pending(conn: Connection, answer_id: int | None = None) -> dict[str, Any] | None:
    """Take one waiting gold answer (``answer_id``: that one; else the oldest) out of the queue
    and return it with its item's state, or None when there is none. Inside the write
    transaction that scores it: on PostgreSQL the row is locked and skipped by other scorers
    until COMMIT (a rollback puts it back); SQLite's writer is alone."""
    pick = _OLDEST if answer_id is None else _WAITING.where(gold_pending.c.answer_id == answer_id)
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    taken = conn.execute(
        gold_pending.delete().where(gold_pending.c.answer_id.in_(pick.scalar_subquery()))
        .returning(gold_pending.c.answer_id)
    ).scalar()
    if taken is None:
        return None
    row = conn.execute(
        sa.select(answers, items.c.is_gold, items.c.status.label("item_status"))
        .join(items, items.c.id == answers.c.item_id)
        .where(answers.c.id == taken)
    ).mappings().first()
    return dict(row) if row else None


def lock_stats(conn: Connection, project_id: int, annotator_id: int, now: int) -> dict[str, Any]:
    """The annotator's stats row, made (zero counts, active) when missing, and locked until
    COMMIT on PostgreSQL, so that two scorers never count the same annotator's gold at once."""
    values = {"project_id": project_id, "annotator_id": annotator_id, "n_gold": 0, "n_gold_correct": 0,
              "status": "active", "updated_at": now}
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(annotator_stats)
    conn.execute(insert.values(**values).on_conflict_do_nothing())
    q = sa.select(annotator_stats).where(annotator_stats.c.project_id == project_id,
                                         annotator_stats.c.annotator_id == annotator_id)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update()
    return dict(conn.execute(q).mappings().one())
