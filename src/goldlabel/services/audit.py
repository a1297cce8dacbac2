"""The audit log: who exported, downloaded, changed roles, schemas, settings and members, deleted,
issued or revoked tokens, suspended, logged in (or failed to), and changed two-factor login.

Each use case records its entry with one call, ``record(conn, actor, action, ...)``, on the
connection of its own transaction: the entry commits with the action or not at all. Logins and
downloads, which write nothing else, use ``record_now`` (a transaction of its own).

Retention: kept forever unless ``audit_retention_days`` is set; then ``sweep_expired`` (run by
the purge sweeper of every server process) deletes older entries, the only DELETE the table's
triggers let through (migration 0014), and records an ``audit.sweep`` entry in the same
transaction.

Who reads it: admins, everything; managers, the entries of the projects they manage (their own
projects' exports, schema edits, member changes, ...), never account-wide entries (logins,
tokens, suspensions, which carry no project). Everyone else: 403.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson

from goldlabel.domain.errors import GoldlabelError, forbidden
from goldlabel.services.access import Actor
from goldlabel.services.context import Context
from goldlabel.storage import audit as audit_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx
from goldlabel.storage.handles import Connection

# Every action the log holds, with what it means (docs/security.md lists the same).
ACTIONS = {
    "login.success": "a password login (and its second factor) succeeded",
    "login.failure": "a password or two-factor code was refused",
    "totp.enrol": "two-factor enrolment started (a new secret)",
    "totp.enable": "two-factor login confirmed with a first code",
    "totp.disable": "two-factor login turned off",
    "totp.recovery_used": "a recovery code replaced a two-factor code",
    "user.create": "a user was created",
    "user.role": "a user's role changed",
    "user.suspend": "a user was suspended",
    "user.reactivate": "a suspended user was reactivated",
    "user.password": "a user's password was changed",
    "user.sessions_end": "a user's browser sessions were ended",
    "token.issue": "an API token was issued",
    "token.revoke": "an API token was revoked",
    "project.create": "a project was created",
    "project.update": "a project's name, description, overlap, lease or instructions changed",
    "project.settings": "a project's quality settings changed",
    "project.schema": "a project's label schema changed",
    "project.delete": "a project was deleted",
    "project.restore": "a deleted project was restored within its undo window",
    "member.set": "a project member was added or their project role changed",
    "member.remove": "a project member was removed",
    "annotator.status": "an annotator's standing in a project changed (suspended, ...)",
    "item.delete": "items were deleted",
    "item.bulk": "a bulk action (delete, priority, send to review) ran over items",
    "item.restore": "deleted items were restored within their undo window",
    "webhook.create": "a webhook subscription was made (its URL and events)",
    "webhook.update": "a webhook subscription changed (URL, events, paused or resumed)",
    "webhook.delete": "a webhook subscription was deleted",
    "export.download": "an export was downloaded",
    "snapshot.create": "a snapshot was made",
    "snapshot.download": "a snapshot was downloaded",
    "media.download": "a whole media file was sent to a reviewer, manager or admin (annotators' reads are not logged)",
    "audit.sweep": "the retention sweep deleted entries older than audit_retention_days",
}
MAX_DETAIL_BYTES = 4000


def _entry(actor: Actor | None, action: str, project_id: int | None, target: tuple[str, Any] | None,
           detail: dict | None, address: str, actor_name: str | None) -> dict:
    if action not in ACTIONS:  # a typo in a hook must fail its test, not write an unknown action
        raise ValueError(f"unknown audit action {action!r}")
    detail = detail or {}
    if len(orjson.dumps(detail)) > MAX_DETAIL_BYTES:
        detail = {"truncated": True, "keys": sorted(detail)[:50]}
    return {
        "at": now_ms(),
        "actor_id": actor.id if actor else None,
        # None actor: the local operator (CLI), or a login for a name that may not exist.
        "actor_name": (actor.username if actor else actor_name or "local-operator")[:150],
        "action": action,
        "project_id": project_id,
        "target_type": target[0] if target else "",
        "target_id": str(target[1])[:100] if target else "",
        "address": address[:64],
        "detail": detail,
    }


def record(conn: Connection, actor: Actor | None, action: str, *, project_id: int | None = None,
           target: tuple[str, Any] | None = None, detail: dict | None = None, address: str = "",
           actor_name: str | None = None) -> None:
    """Write one entry in the caller's transaction (it commits or rolls back with the action)."""
    audit_store.insert_entry(conn, **_entry(actor, action, project_id, target, detail, address, actor_name))


def record_now(ctx: Context, actor: Actor | None, action: str, **fields: Any) -> None:
    """Write one entry in a transaction of its own: for actions that write nothing else."""
    with write_tx(ctx.engine) as conn:
        record(conn, actor, action, **fields)


def _scope(actor: Actor) -> int | None:
    """None for an admin (every entry), the manager's id (their projects' entries), else 403."""
    if actor.is_admin:
        return None
    if actor.role == "manager":
        return actor.id
    raise forbidden("only admins (and managers, for their projects) read the audit log")


def check_filters(filters: dict[str, Any]) -> dict[str, Any]:
    action = filters.get("action")
    if action and action not in ACTIONS:
        raise GoldlabelError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}",
                             code="unknown_action", status=422)
    return filters


def list_entries(ctx: Context, actor: Actor, filters: dict[str, Any], before: int | None,
                 limit: int) -> list[dict]:
    manager_id = _scope(actor)
    with read_tx(ctx.engine) as conn:
        return audit_store.list_entries(conn, check_filters(filters), before, limit, manager_id)


EXPORT_FIELDS = ("id", "at", "time", "actor_id", "actor_name", "action", "project_id", "target_type",
                 "target_id", "address", "detail")


def _cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (a failed login's username can be
    anything) gets a leading apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def export_entries(ctx: Context, actor: Actor, filters: dict[str, Any], fmt: str) -> Iterator[bytes]:
    """Every matching entry, oldest first, as CSV or JSON Lines, streamed; the access check and
    the filters run before the first byte. Reading the log is not logged: it is no action on the
    data the log protects, and each read would grow the log."""
    if fmt not in ("csv", "jsonl"):
        raise GoldlabelError("format must be csv or jsonl", code="unknown_format", status=422)
    manager_id = _scope(actor)
    check_filters(filters)

    def chunks() -> Iterator[bytes]:
        with read_tx(ctx.engine) as conn:
            if fmt == "csv":
                buffer = io.StringIO()
                writer = csv.writer(buffer)
                writer.writerow(EXPORT_FIELDS)
                for n, row in enumerate(audit_store.iter_entries(conn, filters, manager_id), 1):
                    writer.writerow([_cell(v) for v in (
                        *(row[k] for k in EXPORT_FIELDS[:2]), _iso(row["at"]),
                        *(row[k] for k in EXPORT_FIELDS[3:10]), orjson.dumps(row["detail"]).decode())])
                    if n % 500 == 0:
                        yield buffer.getvalue().encode()
                        buffer.seek(0)
                        buffer.truncate()
                yield buffer.getvalue().encode()
            else:
                for row in audit_store.iter_entries(conn, filters, manager_id):
                    # Plain str keys: the row's are SQLAlchemy's quoted_name, which orjson refuses.
                    yield orjson.dumps({k: _iso(row["at"]) if k == "time" else row[k] for k in EXPORT_FIELDS}) + b"\n"

    return chunks()


DAY_MS = 24 * 3600 * 1000


def sweep_expired(ctx: Context, now: int | None = None) -> int:
    """Delete the entries older than ``audit_retention_days`` (0: none, ever), and record how
    many in an ``audit.sweep`` entry of the same transaction. Returns how many went."""
    days = ctx.settings.audit_retention_days
    if days <= 0:
        return 0
    cutoff = (now_ms() if now is None else now) - days * DAY_MS
    with write_tx(ctx.engine) as conn:
        deleted = audit_store.delete_before(conn, cutoff)
        if deleted:
            record(conn, None, "audit.sweep", actor_name="retention-sweep",
                   detail={"deleted": deleted, "before": cutoff, "retention_days": days})
    return deleted
