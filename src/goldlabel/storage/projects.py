"""Projects."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldlabel.storage.hot import Hot
from goldlabel.storage.tables import (
    annotator_stats,
    answers,
    gold_answers,
    items,
    label_schema_versions,
    predictions,
    project_members,
    projects,
    users,
)


def insert_project(conn: Connection, **values: Any) -> dict[str, Any]:
    return dict(conn.execute(projects.insert().values(**values).returning(*projects.c)).mappings().one())


def fetch_project(conn: Connection, project_id: int, *, deleted: bool = False) -> dict[str, Any] | None:
    """The project (a deleted one, in its undo window, only with ``deleted=True``)."""
    q = sa.select(projects).where(projects.c.id == project_id)
    if not deleted:
        q = q.where(projects.c.deleted_at.is_(None))
    row = conn.execute(q).mappings().first()
    return dict(row) if row else None


# Every project-scoped request runs this: the project and the caller's membership role in one
# statement (built once, bind parameters only), instead of a role lookup and then the project.
# With the caller's auth version (users.auth_version), which the service compares with the one
# its actor was verified at: a revocation through another process is seen at once, at no extra
# round trip (services/access.py ``check_auth_version``).
_PROJECT_WITH_ROLE = (
    sa.select(projects, project_members.c.role.label("_member_role"), users.c.auth_version.label("_auth_version"))
    .outerjoin(
        project_members,
        sa.and_(project_members.c.project_id == projects.c.id, project_members.c.user_id == sa.bindparam("b_user_id")),
    )
    .outerjoin(users, users.c.id == sa.bindparam("b_user_id"))
    .where(projects.c.id == sa.bindparam("b_project_id"), projects.c.deleted_at.is_(None))
)


# The annotate loop's lease also needs the caller's standing (suspended? gold answered?).
_PROJECT_WITH_ROLE_AND_STANDING = (
    _PROJECT_WITH_ROLE.add_columns(
        annotator_stats.c.status.label("_standing_status"), annotator_stats.c.n_gold.label("_standing_n_gold")
    ).outerjoin(
        annotator_stats,
        sa.and_(annotator_stats.c.project_id == projects.c.id,
                annotator_stats.c.annotator_id == sa.bindparam("b_user_id")),
    )
)
_H_PROJECT_WITH_ROLE = Hot(_PROJECT_WITH_ROLE)
_H_PROJECT_WITH_ROLE_AND_STANDING = Hot(_PROJECT_WITH_ROLE_AND_STANDING)


def fetch_project_role_standing(
    conn: Connection, project_id: int, user_id: int
) -> tuple[dict[str, Any] | None, str | None, dict[str, Any] | None, int | None]:
    """fetch_project_with_role plus ``user_id``'s annotator standing in the project
    (``{"status", "n_gold"}``, None before their first gold answer), in one statement."""
    params = {"b_project_id": project_id, "b_user_id": user_id}
    project = _H_PROJECT_WITH_ROLE_AND_STANDING.first(conn, params)
    if project is None:
        return None, None, None, None
    status, n_gold = project.pop("_standing_status"), project.pop("_standing_n_gold")
    standing = None if status is None else {"status": status, "n_gold": n_gold}
    return project, project.pop("_member_role"), standing, project.pop("_auth_version")


def fetch_project_with_role(
    conn: Connection, project_id: int, user_id: int
) -> tuple[dict[str, Any] | None, str | None, int | None]:
    """(the project or None, ``user_id``'s membership role in it or None, ``user_id``'s auth
    version or None)."""
    project = _H_PROJECT_WITH_ROLE.first(conn, {"b_project_id": project_id, "b_user_id": user_id})
    if project is None:
        return None, None, None
    return project, project.pop("_member_role"), project.pop("_auth_version")


def update_project(conn: Connection, project_id: int, **values: Any) -> dict[str, Any] | None:
    row = (
        conn.execute(
            projects.update().where(projects.c.id == project_id).values(**values).returning(*projects.c)
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def delete_project(conn: Connection, project_id: int) -> bool:
    return conn.execute(projects.delete().where(projects.c.id == project_id)).rowcount == 1


def soft_delete_project(conn: Connection, project_id: int, now: int) -> bool:
    res = conn.execute(projects.update().where(projects.c.id == project_id, projects.c.deleted_at.is_(None))
                       .values(deleted_at=now, updated_at=now))
    return res.rowcount == 1


def restore_project(conn: Connection, project_id: int, since: int, now: int) -> int | None:
    """Clear the project's delete if it happened at or after ``since``; returns the delete's
    time (its items deleted then come back with it), or None."""
    stamp = conn.execute(
        sa.select(projects.c.deleted_at).where(projects.c.id == project_id).with_for_update()
    ).scalar()
    if stamp is None or stamp < since:
        return None
    conn.execute(projects.update().where(projects.c.id == project_id).values(deleted_at=None, updated_at=now))
    return int(stamp)


def fetch_deleted_at(conn: Connection, project_id: int) -> int | None:
    return conn.execute(sa.select(projects.c.deleted_at).where(projects.c.id == project_id)).scalar()


def list_deleted_projects(conn: Connection, since: int, member_id: int | None) -> list[dict[str, Any]]:
    """Projects deleted at or after ``since`` (restorable), newest first; ``member_id``: only
    those this user belongs to."""
    q = (
        sa.select(projects.c.id, projects.c.name, projects.c.deleted_at)
        .where(projects.c.deleted_at.is_not(None), projects.c.deleted_at >= since)
        .order_by(projects.c.deleted_at.desc())
        .limit(100)
    )
    if member_id is not None:
        q = q.where(projects.c.id.in_(
            sa.select(project_members.c.project_id).where(project_members.c.user_id == member_id)))
    return [dict(r) for r in conn.execute(q).mappings()]


def purge_deleted_projects(conn: Connection, before: int) -> int:
    """Remove projects deleted before ``before`` with all they hold (ON DELETE CASCADE)."""
    return conn.execute(
        projects.delete().where(projects.c.deleted_at.is_not(None), projects.c.deleted_at < before)
    ).rowcount


def list_projects(conn: Connection, after: int, limit: int, member_id: int | None) -> list[dict[str, Any]]:
    """Projects by id; ``member_id`` restricts to projects that user belongs to."""
    q = (
        sa.select(projects)
        .where(projects.c.id > after, projects.c.deleted_at.is_(None))
        .order_by(projects.c.id)
        .limit(limit)
    )
    if member_id is not None:
        q = q.where(
            projects.c.id.in_(
                sa.select(project_members.c.project_id).where(project_members.c.user_id == member_id)
            )
        )
    return [dict(r) for r in conn.execute(q).mappings()]


def count_items_by_status(conn: Connection, project_id: int) -> dict[str, int]:
    """Item counts per status, read from the queue index (no scan of item data)."""
    q = (
        sa.select(items.c.status, sa.func.count())
        .where(items.c.project_id == project_id, items.c.status != "deleted")
        .group_by(items.c.status)
    )
    return {status: n for status, n in conn.execute(q)}


def count_gold_items(conn: Connection, project_id: int) -> int:
    """Gold items of the project, any status (the queue index: no scan of item data)."""
    q = sa.select(sa.func.count()).where(items.c.project_id == project_id, items.c.is_gold == sa.true())
    return int(conn.execute(q).scalar_one())


# ---------------------------------------------------------------- label schema versions


def insert_schema_version(conn: Connection, project_id: int, version: int, label_schema: dict[str, Any],
                          created_by: int | None, created_at: int) -> None:
    conn.execute(label_schema_versions.insert().values(
        project_id=project_id, version=version, label_schema=label_schema, created_by=created_by,
        created_at=created_at))


def list_schema_versions(conn: Connection, project_id: int) -> list[dict[str, Any]]:
    q = (sa.select(label_schema_versions).where(label_schema_versions.c.project_id == project_id)
         .order_by(label_schema_versions.c.version))
    return [dict(r) for r in conn.execute(q).mappings()]


def count_answers_by_schema_version(conn: Connection, project_id: int) -> dict[int | None, int]:
    q = (sa.select(answers.c.schema_version, sa.func.count()).where(answers.c.project_id == project_id)
         .group_by(answers.c.schema_version))
    return {v: n for v, n in conn.execute(q)}


_VALUE_TABLES = {"answers": answers, "gold": gold_answers, "predictions": predictions}


def iter_stored_values(conn: Connection, project_id: int, source: str, page: int = 5000) -> Iterator[Any]:
    """Every stored ``value`` of the project's answers, gold answers or predictions (``source``),
    in keyset pages."""
    table = _VALUE_TABLES[source]
    key = table.c.item_id if source == "gold" else table.c.id
    after = None
    while True:
        q = sa.select(key, table.c.value).where(table.c.project_id == project_id).order_by(key).limit(page)
        if after is not None:
            q = q.where(key > after)
        rows = conn.execute(q).all()
        if not rows:
            return
        after = rows[-1][0]
        for _, value in rows:
            yield value
