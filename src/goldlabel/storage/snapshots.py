"""Snapshot rows: written once, read by project."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldlabel.storage.tables import snapshots

_COLUMNS = (snapshots.c.id, snapshots.c.project_id, snapshots.c.name, snapshots.c.format, snapshots.c.options,
            snapshots.c.item_count, snapshots.c.size_bytes, snapshots.c.sha256, snapshots.c.object_key,
            snapshots.c.created_by, snapshots.c.created_at)


def insert_snapshot(conn: Connection, row: dict[str, Any]) -> dict[str, Any]:
    new_id = conn.execute(sa.insert(snapshots).values(**row).returning(snapshots.c.id)).scalar_one()
    return {**row, "id": new_id}


def fetch_snapshot_by_name(conn: Connection, project_id: int, name: str) -> dict[str, Any] | None:
    found = conn.execute(sa.select(*_COLUMNS).where(snapshots.c.project_id == project_id,
                                                    snapshots.c.name == name)).mappings().first()
    return dict(found) if found else None


def fetch_snapshot(conn: Connection, project_id: int, snapshot_id: int) -> dict[str, Any] | None:
    found = conn.execute(sa.select(*_COLUMNS).where(snapshots.c.project_id == project_id,
                                                    snapshots.c.id == snapshot_id)).mappings().first()
    return dict(found) if found else None


def fetch_snapshots(conn: Connection, project_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(*_COLUMNS).where(snapshots.c.project_id == project_id)
                        .order_by(snapshots.c.id.desc())).mappings().all()
    return [dict(r) for r in rows]
