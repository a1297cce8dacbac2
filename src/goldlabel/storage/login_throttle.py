"""The login throttle's state (``tables.login_throttle``), shared by every server process:
a token bucket per client address, failures in a row and a lockout per account
(services/login_guard.py). Each function runs in the caller's write transaction; a row is
locked (PostgreSQL: FOR UPDATE; SQLite's write transactions are serialized) from its read to
the end of the transaction, so concurrent attempts through several processes count once each."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from goldlabel.storage.tables import login_throttle


def lock_row(conn: Connection, key: str, *, tokens: float, now: int) -> dict[str, Any]:
    """The row of ``key``, locked; made first (with ``tokens``, no failures, at ``now``) when
    missing."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(insert(login_throttle).values(key=key, tokens=tokens, failures=0, locked_until=0, at=now)
                 .on_conflict_do_nothing(index_elements=["key"]))
    q = sa.select(login_throttle).where(login_throttle.c.key == key).with_for_update()
    return dict(conn.execute(q).mappings().one())


def fetch_row(conn: Connection, key: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(login_throttle).where(login_throttle.c.key == key)).mappings().first()
    return dict(row) if row else None


def update_row(conn: Connection, key: str, **values: Any) -> None:
    conn.execute(login_throttle.update().where(login_throttle.c.key == key).values(**values))


def delete_row(conn: Connection, key: str) -> None:
    conn.execute(login_throttle.delete().where(login_throttle.c.key == key))


def sweep(conn: Connection, before: int, now: int) -> int:
    """Forget rows untouched since ``before`` whose lockout (if any) is over by ``now``."""
    return conn.execute(login_throttle.delete().where(login_throttle.c.at < before,
                                                      login_throttle.c.locked_until <= now)).rowcount
