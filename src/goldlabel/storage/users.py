"""Users, API tokens, browser sessions and project membership."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldlabel.storage.tables import api_tokens, project_members, sessions, users


def insert_user(conn: Connection, **values: Any) -> dict[str, Any]:
    row = conn.execute(users.insert().values(**values).returning(*users.c)).mappings().one()
    return dict(row)


def fetch_user(conn: Connection, user_id: int, *, for_update: bool = False) -> dict[str, Any] | None:
    """``for_update``: lock the row until the transaction ends (PostgreSQL; SQLite's write
    transactions are serialized anyway)."""
    q = sa.select(users).where(users.c.id == user_id)
    row = conn.execute(q.with_for_update() if for_update else q).mappings().first()
    return dict(row) if row else None


def fetch_user_by_username(conn: Connection, username: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(users).where(users.c.username == username)).mappings().first()
    return dict(row) if row else None


def list_users(conn: Connection, after: int, limit: int, user_ids: list[int] | None = None) -> list[dict[str, Any]]:
    q = sa.select(users).where(users.c.id > after).order_by(users.c.id).limit(limit)
    if user_ids is not None:
        q = q.where(users.c.id.in_(user_ids))
    return [dict(r) for r in conn.execute(q).mappings()]


def update_user(conn: Connection, user_id: int, **values: Any) -> dict[str, Any] | None:
    row = (
        conn.execute(users.update().where(users.c.id == user_id).values(**values).returning(*users.c))
        .mappings()
        .first()
    )
    return dict(row) if row else None


def bump_auth_version(conn: Connection, user_id: int) -> None:
    """Move the user's auth version on (in the transaction of the change that needs it): every
    process's cached actors of the user turn stale, and the annotate loop's statements, which
    read the version, refuse them (services/access.py ``check_auth_version``)."""
    conn.execute(users.update().where(users.c.id == user_id).values(auth_version=users.c.auth_version + 1))


def list_totp_secrets(conn: Connection) -> list[dict[str, Any]]:
    """``{"id", "totp_secret"}`` of every user with a stored TOTP secret."""
    q = sa.select(users.c.id, users.c.totp_secret).where(users.c.totp_secret.is_not(None)).order_by(users.c.id)
    return [dict(r) for r in conn.execute(q).mappings()]


def replace_totp_secret(conn: Connection, user_id: int, was: str, now: str) -> int:
    """Store ``now`` as the user's TOTP secret if it is still ``was``: 1 if so, else 0."""
    return conn.execute(users.update().where(users.c.id == user_id, users.c.totp_secret == was)
                        .values(totp_secret=now)).rowcount


def claim_totp_step(conn: Connection, user_id: int, step: int) -> bool:
    """Mark TOTP time step ``step`` used, if no later or equal one was: one conditional UPDATE,
    so two concurrent logins with the same code cannot both succeed (PostgreSQL included)."""
    res = conn.execute(
        users.update()
        .where(users.c.id == user_id,
               sa.or_(users.c.totp_last_step.is_(None), users.c.totp_last_step < step))
        .values(totp_last_step=step)
    )
    return res.rowcount == 1


def insert_token(conn: Connection, **values: Any) -> dict[str, Any]:
    cols = [c for c in api_tokens.c if c.name != "token_hash"]
    return dict(conn.execute(api_tokens.insert().values(**values).returning(*cols)).mappings().one())


def fetch_user_by_token_hash(conn: Connection, token_hash: str) -> dict[str, Any] | None:
    q = (
        sa.select(users, api_tokens.c.id.label("token_id"))
        .join(api_tokens, api_tokens.c.user_id == users.c.id)
        .where(api_tokens.c.token_hash == token_hash, api_tokens.c.revoked_at.is_(None))
    )
    row = conn.execute(q).mappings().first()
    return dict(row) if row else None


def list_tokens(conn: Connection, user_id: int) -> list[dict[str, Any]]:
    cols = [c for c in api_tokens.c if c.name != "token_hash"]
    q = sa.select(*cols).where(api_tokens.c.user_id == user_id).order_by(api_tokens.c.id)
    return [dict(r) for r in conn.execute(q).mappings()]


def revoke_token(conn: Connection, user_id: int, token_id: int, at: int) -> bool:
    res = conn.execute(
        api_tokens.update()
        .where(api_tokens.c.id == token_id, api_tokens.c.user_id == user_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    return res.rowcount == 1


def insert_session(conn: Connection, nonce_hash: str, user_id: int, created_at: int, expires_at: int) -> None:
    conn.execute(
        sessions.insert().values(
            nonce_hash=nonce_hash, user_id=user_id, created_at=created_at, expires_at=expires_at
        )
    )


def fetch_user_by_session(conn: Connection, nonce_hash: str, user_id: int, now: int) -> dict[str, Any] | None:
    """The user of a live session: one statement, a primary-key lookup on each table."""
    q = (
        sa.select(users)
        .join(sessions, sessions.c.user_id == users.c.id)
        .where(sessions.c.nonce_hash == nonce_hash, sessions.c.user_id == user_id, sessions.c.expires_at > now)
    )
    row = conn.execute(q).mappings().first()
    return dict(row) if row else None


def delete_session(conn: Connection, nonce_hash: str) -> int | None:
    """End one session: the id of its user, None when there was none."""
    return conn.execute(sessions.delete().where(sessions.c.nonce_hash == nonce_hash)
                        .returning(sessions.c.user_id)).scalar()


def delete_user_sessions(conn: Connection, user_id: int, keep: str | None = None) -> int:
    """End every session of a user (ix_sessions_user_id), but ``keep`` (a nonce hash) if given."""
    q = sessions.delete().where(sessions.c.user_id == user_id)
    if keep is not None:
        q = q.where(sessions.c.nonce_hash != keep)
    return conn.execute(q).rowcount


def delete_expired_sessions(conn: Connection, now: int) -> int:
    """Drop sessions past their expiry (ix_sessions_expires_at): a range scan of the dead ones."""
    return conn.execute(sessions.delete().where(sessions.c.expires_at <= now)).rowcount


def upsert_member(conn: Connection, project_id: int, user_id: int, role: str, at: int) -> None:
    existing = conn.execute(
        sa.select(project_members.c.role).where(
            project_members.c.project_id == project_id, project_members.c.user_id == user_id
        )
    ).first()
    if existing:
        conn.execute(
            project_members.update()
            .where(project_members.c.project_id == project_id, project_members.c.user_id == user_id)
            .values(role=role)
        )
    else:
        conn.execute(
            project_members.insert().values(project_id=project_id, user_id=user_id, role=role, created_at=at)
        )


def delete_member(conn: Connection, project_id: int, user_id: int) -> bool:
    res = conn.execute(
        project_members.delete().where(
            project_members.c.project_id == project_id, project_members.c.user_id == user_id
        )
    )
    return res.rowcount == 1


def fetch_member_role(conn: Connection, project_id: int, user_id: int) -> str | None:
    return conn.execute(
        sa.select(project_members.c.role).where(
            project_members.c.project_id == project_id, project_members.c.user_id == user_id
        )
    ).scalar()


def manages_member(conn: Connection, manager_id: int, user_id: int) -> bool:
    """Whether ``user_id`` is a member of a project where ``manager_id`` is a manager, or of no
    project at all (a user just created, nobody's yet)."""
    mine = project_members.alias("mine")
    theirs = project_members.alias("theirs")
    shared = sa.select(sa.literal(1)).select_from(
        mine.join(theirs, theirs.c.project_id == mine.c.project_id)
    ).where(mine.c.user_id == manager_id, mine.c.role == "manager", theirs.c.user_id == user_id)
    anywhere = sa.select(sa.literal(1)).where(project_members.c.user_id == user_id)
    q = sa.select(sa.or_(sa.exists(shared), ~sa.exists(anywhere)))
    return bool(conn.execute(q).scalar())


def list_members(conn: Connection, project_id: int) -> list[dict[str, Any]]:
    q = (
        sa.select(project_members.c.user_id, project_members.c.role, users.c.username, users.c.display_name)
        .join(users, users.c.id == project_members.c.user_id)
        .where(project_members.c.project_id == project_id)
        .order_by(project_members.c.user_id)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def count_users(conn: Connection) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one()
