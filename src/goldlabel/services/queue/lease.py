"""Lease the next item to an annotator, and hand a lease back (skip, release).

PostgreSQL's common lease is one statement (storage/queue_pg.py ``lease``); what it does not
decide (a gold stream, the caller's maximum of live leases, a reap that freed the only work),
and every lease on SQLite, takes the general path in one write transaction.
"""

from __future__ import annotations

import secrets
from typing import Any

from goldlabel.domain.errors import conflict, not_found
from goldlabel.domain.queue_policy import AnnotatorProgress, QueuePolicy, pick_next
from goldlabel.services import consensus as consensus_service
from goldlabel.services.access import Actor, authorize, check_auth_version, load_project, load_project_to_annotate
from goldlabel.services.context import Context
from goldlabel.services.item_refs import encode_item, item_refs
from goldlabel.services.queue.merged_submit import remember_reading
from goldlabel.services.queue.tokens import ANNOTATE_ROLES, hash_token, new_lease_token
from goldlabel.services.queue.views import lease_view
from goldlabel.storage import items as item_store
from goldlabel.storage import queue as queue_store
from goldlabel.storage import queue_pg
from goldlabel.storage.engine import now_ms, statement_tx, write_tx
from goldlabel.storage.handles import Connection

# PostgreSQL (Backend.one_statement_lease, Backend.merged_submit): the common lease in one
# statement and the common submit in one (the write, on the lease's reading of the item kept by
# this process) or two (a read, then the write), the write re-checking under lock what the
# decision used; each statement its own transaction on a connection in autocommit mode
# (storage/queue_pg.py), instead of about twelve statements in two transactions.
# Live leases one annotator may hold when the project's settings do not say (schemas.py).
DEFAULT_MAX_LEASES = 4
_SYSTEM_RANDOM = secrets.SystemRandom()


def _queue_policy(settings: dict) -> QueuePolicy:
    return QueuePolicy(
        gold_rate=settings.get("gold_rate", 0.0),
        qualification_gold=settings.get("qualification_gold", 0),
    )


def _max_leases(settings: dict) -> int:
    return settings.get("max_leases_per_annotator", DEFAULT_MAX_LEASES)


def lease_next(ctx: Context, actor: Actor, project_id: int) -> dict[str, Any] | None:
    """Lease the next item to ``actor``; None when there is no work for them now."""
    item_refs(ctx)  # read before any transaction (services/item_refs.py)
    if _one_statement_lease(ctx):
        token, call = _lease_call(actor, project_id)
        with statement_tx(ctx.engine) as conn:
            done, result = _lease_outcome(ctx, actor, call.all(conn), token)
        if done:
            return result
    return _lease_general(ctx, actor, project_id)


async def lease_next_async(ctx: Context, actor: Actor, project_id: int) -> dict[str, Any] | None:
    """Lease (the server's one use case): on PostgreSQL the common case's one statement runs
    on the event loop (storage.aio); everything else, and SQLite, in ``Backend.run``."""
    item_refs(ctx)  # read before any transaction (services/item_refs.py)
    backend = ctx.backend
    if backend.one_statement_lease:
        token, call = _lease_call(actor, project_id)
        done, result = _lease_outcome(ctx, actor, await backend.all(call), token)
        if done:
            return result
    return await backend.run(_lease_general, ctx, actor, project_id)


def _one_statement_lease(ctx: Context) -> bool:
    return ctx.backend.one_statement_lease


def _lease_call(actor: Actor, project_id: int) -> tuple[str, Any]:
    """A fresh lease token and the one-statement lease that would hand it out."""
    token = new_lease_token()
    return token, queue_pg.lease(
        project_id=project_id, user_id=actor.id, is_admin=actor.is_admin, roles=ANNOTATE_ROLES,
        token_hash=hash_token(token), now=now_ms(), default_max_leases=DEFAULT_MAX_LEASES,
        auth_version=actor.auth_version,
    )


def _lease_outcome(ctx: Context, actor: Actor, rows: list[dict], token: str) -> tuple[bool, dict[str, Any] | None]:
    """What the one-statement lease decided: (True, the lease or None) when that decided the
    call, or its error raised; (False, None) when lease_next must go on with its general path:
    a gold stream, the caller's maximum of live leases reached (the oldest is handed back), or
    a reap that freed the only work."""
    got = queue_pg.parse_lease(rows)
    if got is None:
        raise not_found("project")
    check_auth_version(actor, got["auth_version"])
    project = authorize(actor, got["project"], got["role"], "annotate")
    consensus_service.ensure_not_suspended(got["standing"])
    lease = got["lease"]
    if lease is not None:
        remember_reading(ctx, project, got, token)
        item = {"id": encode_item(ctx, project["id"], actor.id, lease["item_id"]), "data": got["item_data"],
                "predictions": got["predictions"]}
        return True, {"token": token, "expires_at": lease["expires_at"], "item": item}
    settings = project["settings"]
    general = (
        _queue_policy(settings).has_gold
        or got["n_active"] >= _max_leases(settings)
        or got["n_reaped"] > 0
    )
    return (False, None) if general else (True, None)


def _lease_general(ctx: Context, actor: Actor, project_id: int) -> dict[str, Any] | None:
    """lease_next in a write transaction: every case, both databases."""
    now = now_ms()
    # Not durable: a lease lost in a crash only returns its item to the queue (the lease and
    # its reservation are one transaction), and the flush stays on the answer's COMMIT (Q4).
    with write_tx(ctx.engine, durable=False) as conn:
        project, standing = load_project_to_annotate(conn, actor, project_id)
        settings = project["settings"]
        consensus_service.ensure_not_suspended(standing)
        active = queue_store.reap_and_fetch_active_leases(conn, project_id, actor.id, now)
        if len(active) >= _max_leases(settings):
            # Holding the maximum already: hand the oldest back again with a fresh token, so a
            # client that lost its response can carry on without hoarding more items.
            lease = active[0]
            token = new_lease_token()
            item_store.rotate_lease_token(conn, lease["id"], hash_token(token))
            return lease_view(ctx, conn, project, lease, token)
        policy = _queue_policy(settings)
        has_gold = policy.has_gold
        token = new_lease_token()
        expires_at = now + project["lease_ttl_s"] * 1000
        if not has_gold and ctx.backend.dialect == "postgresql":
            # No gold stream, so the policy's choice is the head of the normal queue: candidate,
            # reservation and lease in one round trip (same conditions, re-checked by the UPDATE).
            claimed = queue_store.claim_next_pg(
                conn, project_id, actor.id, token_hash=hash_token(token), created_at=now, expires_at=expires_at
            )
            if claimed is None:
                return None
            return lease_view(ctx, conn, project, claimed[0], token, claimed[1])
        gold = queue_store.fetch_candidates(conn, project_id, actor.id, is_gold=True) if has_gold else []
        progress = AnnotatorProgress(gold_answered=standing["n_gold"] if standing else 0)
        normal = queue_store.fetch_candidates(conn, project_id, actor.id, is_gold=False)
        # the gold draw must not be predictable from earlier draws (colluding annotators would
        # learn when gold comes): the OS's generator, not random's Mersenne twister
        choice = pick_next(normal, gold, policy, progress, _SYSTEM_RANDOM.random())
        if choice is None:
            return None
        reserved, data = queue_store.reserve_item_data(conn, choice.id)
        if not reserved:
            return None
        lease = queue_store.upsert_lease(
            conn,
            project_id=project_id,
            item_id=choice.id,
            annotator_id=actor.id,
            token_hash=hash_token(token),
            status="active",
            created_at=now,
            expires_at=expires_at,
        )
        return lease_view(ctx, conn, project, lease, token, data)


def _fetch_own_lease(conn: Connection, actor: Actor, project_id: int, token: str, *, lock: bool = False) -> dict:
    """The caller's lease in this project, or 404. ``lock=True`` (inside a write transaction)
    re-reads it under a row lock, so its status cannot change until COMMIT."""
    fetch = queue_store.lock_lease_by_token if lock else queue_store.fetch_lease_by_token
    lease = fetch(conn, hash_token(token))
    if lease is None or lease["annotator_id"] != actor.id or lease["project_id"] != project_id:
        raise not_found("lease")
    return lease


def _return_lease(conn: Connection, actor: Actor, project_id: int, lease_token: str) -> dict:
    """The caller's lease, locked, with its item's reservation handed back (skip and release)."""
    lease = _return_lease_of(conn, actor, project_id, lease_token)[0]
    return lease


def _return_lease_of(conn: Connection, actor: Actor, project_id: int, lease_token: str) -> tuple[dict, dict]:
    """:func:`_return_lease` and the project."""
    project = load_project(conn, actor, project_id, "annotate")
    lease = _fetch_own_lease(conn, actor, project_id, lease_token, lock=True)
    if lease["status"] == "submitted":
        raise conflict("the item was already answered", "lease_submitted")
    if lease["status"] == "active":
        queue_store.unreserve_item(conn, lease["item_id"])
    return lease, project


def skip_item(ctx: Context, actor: Actor, project_id: int, lease_token: str) -> None:
    """Give the item back and never serve it to this annotator again."""
    ctx.take_lease_reading((hash_token(lease_token), actor.id, project_id))  # never submitted now
    with write_tx(ctx.engine) as conn:
        lease, project = _return_lease_of(conn, actor, project_id, lease_token)
        queue_store.set_lease_status(conn, lease["id"], "skipped")
        # The skip may have taken the item's last eligible annotator.
        consensus_service.settle_stalled(ctx, conn, project, now_ms(), lease["item_id"])


def release_item(ctx: Context, actor: Actor, project_id: int, lease_token: str) -> None:
    """Give the item back to the queue; it may come back to this annotator later."""
    ctx.take_lease_reading((hash_token(lease_token), actor.id, project_id))  # never submitted now
    with write_tx(ctx.engine) as conn:
        lease = _return_lease(conn, actor, project_id, lease_token)
        queue_store.delete_lease(conn, lease["id"])


async def skip_item_async(ctx: Context, actor: Actor, project_id: int, lease_token: str) -> None:
    """Skip (the server's one use case): :func:`skip_item` in ``Backend.run``."""
    await ctx.backend.run(skip_item, ctx, actor, project_id, lease_token)


async def release_item_async(ctx: Context, actor: Actor, project_id: int, lease_token: str) -> None:
    """Release (the server's one use case): :func:`release_item` in ``Backend.run``."""
    await ctx.backend.run(release_item, ctx, actor, project_id, lease_token)
