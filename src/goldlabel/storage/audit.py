"""The audit log: insert and read, and the retention sweep's delete (the table refuses UPDATE,
and DELETE of anything but what the sweep's gate lets through: migration 0014)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldlabel.storage.tables import audit_log, audit_log_sweep_gate, project_members

_INSERT = audit_log.insert()


def insert_entry(conn: Connection, **values: Any) -> None:
    conn.execute(_INSERT, values)


def delete_before(conn: Connection, cutoff: int) -> int:
    """Delete the entries older than ``cutoff`` (ms), in the caller's transaction: the gate is
    opened to the cutoff, the rows deleted, the gate closed again (0) before COMMIT, so no other
    statement ever sees it open (PostgreSQL: the gate's row stays locked until then)."""
    conn.execute(audit_log_sweep_gate.delete())  # its one row, made again (a restore may lack it)
    conn.execute(audit_log_sweep_gate.insert().values(id=1, cutoff=cutoff))
    deleted = conn.execute(audit_log.delete().where(audit_log.c.at < cutoff)).rowcount
    conn.execute(audit_log_sweep_gate.update().values(cutoff=0))
    return deleted


def _filtered(filters: dict[str, Any], manager_id: int | None) -> sa.Select[*tuple[Any, ...]]:
    q = sa.select(audit_log)
    if filters.get("actor_id") is not None:
        q = q.where(audit_log.c.actor_id == filters["actor_id"])
    if filters.get("actor_name"):
        q = q.where(audit_log.c.actor_name == filters["actor_name"])
    if filters.get("action"):
        q = q.where(audit_log.c.action == filters["action"])
    if filters.get("project_id") is not None:
        q = q.where(audit_log.c.project_id == filters["project_id"])
    if filters.get("since") is not None:
        q = q.where(audit_log.c.at >= filters["since"])
    if filters.get("until") is not None:
        q = q.where(audit_log.c.at < filters["until"])
    if manager_id is not None:
        managed = sa.select(project_members.c.project_id).where(
            project_members.c.user_id == manager_id, project_members.c.role == "manager"
        )
        q = q.where(audit_log.c.project_id.in_(managed))
    return q


def list_entries(conn: Connection, filters: dict[str, Any], before: int | None, limit: int,
                 manager_id: int | None = None) -> list[dict[str, Any]]:
    """Newest first, keyset-paged on id (``before``: the last id of the previous page).
    ``manager_id``: only entries of projects that user manages."""
    q = _filtered(filters, manager_id)
    if before is not None:
        q = q.where(audit_log.c.id < before)
    q = q.order_by(audit_log.c.id.desc()).limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


def iter_entries(conn: Connection, filters: dict[str, Any], manager_id: int | None = None,
                 batch: int = 1000) -> Iterator[dict[str, Any]]:
    """Every matching entry, oldest first, read ``batch`` rows at a time (keyset on id)."""
    after = 0
    while True:
        q = _filtered(filters, manager_id).where(audit_log.c.id > after).order_by(audit_log.c.id).limit(batch)
        rows = [dict(r) for r in conn.execute(q).mappings()]
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1]["id"]

