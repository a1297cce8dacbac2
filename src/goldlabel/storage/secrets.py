"""Install secrets (``tables.install_secrets``): made once, on first use, then read."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from goldlabel.storage.engine import now_ms, read_tx, write_tx
from goldlabel.storage.tables import install_secrets


def install_secret(engine: Engine, name: str, make: Callable[[], str]) -> str:
    """The install's secret ``name``; ``make()`` makes it when there is none yet (the first
    process to store one wins; the others read it)."""
    query = sa.select(install_secrets.c.value).where(install_secrets.c.name == name)
    with read_tx(engine) as conn:
        value = conn.execute(query).scalar()
    if value is not None:
        return cast("str", value)
    try:
        with write_tx(engine) as conn:
            value = conn.execute(query).scalar()
            if value is None:
                value = make()
                conn.execute(install_secrets.insert().values(name=name, value=value, created_at=now_ms()))
    except IntegrityError:  # another process stored it first (PostgreSQL)
        with read_tx(engine) as conn:
            value = conn.execute(query).scalar_one()
    return value
