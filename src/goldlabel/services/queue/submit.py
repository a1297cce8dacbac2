"""Submit an answer on a lease: the entry points (blocking and async) and the generic path,
one write transaction with the lease and its item locked, for every case on both databases.
On PostgreSQL the merged submit (services/queue/merged_submit.py) decides the common case first.
"""

from __future__ import annotations

from typing import Any

from goldlabel.domain.errors import GoldlabelError, conflict
from goldlabel.services import cold_start
from goldlabel.services import consensus as consensus_service
from goldlabel.services import gold as gold_service
from goldlabel.services.access import Actor, load_project
from goldlabel.services.context import Context
from goldlabel.services.item_refs import item_refs
from goldlabel.services.queue.merged_submit import drive, drive_async, merged_steps
from goldlabel.services.queue.tokens import check_own_lease, hash_token
from goldlabel.services.queue.views import own_answer, status_as_seen
from goldlabel.storage import consensus_events as records
from goldlabel.storage import items as item_store
from goldlabel.storage import queue as queue_store
from goldlabel.storage.engine import now_ms, statement_tx, write_tx
from goldlabel.storage.handles import Connection


def submit_answer(
    ctx: Context,
    actor: Actor,
    project_id: int,
    lease_token: str,
    value: dict[str, Any],
    duration_ms: int | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Record an answer on a lease. A retry (same lease token or Idempotency-Key) returns the
    original result (Q5). A late answer on an expired lease is taken only while the item still
    has a free slot (Q7)."""
    item_refs(ctx)  # read before any transaction (services/item_refs.py)
    now = None
    if _merged_submit(ctx):
        steps = merged_steps(ctx, actor, project_id, lease_token, value, duration_ms, idempotency_key)
        with statement_tx(ctx.engine) as conn:
            result, now, gold_answer = drive(steps, lambda call: call.all(conn))
        if result is not None:
            if gold_answer is not None:
                gold_service.follow_up(ctx, gold_answer)
            return result
    return _submit_generic(ctx, actor, project_id, lease_token, value, duration_ms, idempotency_key, now)


async def submit_answer_async(
    ctx: Context,
    actor: Actor,
    project_id: int,
    lease_token: str,
    value: dict[str, Any],
    duration_ms: int | None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Submit (the server's one use case): on PostgreSQL the common case's statements run on
    the event loop (storage.aio); everything else, and SQLite, in ``Backend.run``, which
    returns once the answer is durable (Q4)."""
    item_refs(ctx)  # read before any transaction (services/item_refs.py)
    backend = ctx.backend
    now = None
    if _merged_submit(ctx):
        steps = merged_steps(ctx, actor, project_id, lease_token, value, duration_ms, idempotency_key)
        result, now, gold_answer = await drive_async(steps, backend.all)
        if result is not None:
            if gold_answer is not None and not gold_service.wake_scorer(ctx):
                await backend.run(gold_service.score_pending, ctx, gold_answer)
            return result
    return await backend.run(_submit_generic, ctx, actor, project_id, lease_token, value, duration_ms,
                             idempotency_key, now)


def _merged_submit(ctx: Context) -> bool:
    return ctx.backend.merged_submit


def _submit_generic(
    ctx: Context,
    actor: Actor,
    project_id: int,
    lease_token: str,
    value: dict[str, Any],
    duration_ms: int | None,
    idempotency_key: str | None,
    now: int | None = None,
) -> dict[str, Any]:
    """submit_answer in one write transaction, the lease and its item locked: every case, both
    databases. ``now``: when the merged path already decided at a time, the same time."""
    # One transaction: validating an answer takes microseconds, a separate read transaction
    # before the write cost two more round trips and a query (PostgreSQL, measured).
    with write_tx(ctx.engine) as conn:
        project = load_project(conn, actor, project_id, "annotate")
        # Locked: a concurrent retry of this very submission, a reaper or a skip waits here
        # and then sees the lease's real status (PostgreSQL; SQLite has one writer at a time).
        lease, item = queue_store.lock_lease_and_item(conn, hash_token(lease_token))
        check_own_lease(lease, actor, project_id)
        clean = ctx.get_schema(project).validate_answer(value, item["data"])
        now = now_ms() if now is None else now
        result, gold_answer = _submit_locked(ctx, conn, actor, project, lease, item, clean, duration_ms,
                                             idempotency_key, now)
    if gold_answer is not None:
        gold_service.follow_up(ctx, gold_answer)  # after COMMIT: the answer is durable, and so its queue entry
    return result


def _submit_locked(ctx: Context, conn: Connection, actor: Actor, project: dict, lease: dict, item: dict,
                   clean: dict, duration_ms: int | None, idempotency_key: str | None, now: int
                   ) -> tuple[dict[str, Any], int | None]:
    """submit_answer once the lease and item are locked and the answer validated; and the
    answer's id when it is a new gold answer, queued for scoring."""
    project_id = project["id"]
    if idempotency_key:
        prior = queue_store.fetch_answer_by_idempotency_key(conn, actor.id, idempotency_key)
        if prior is not None:
            if prior["lease_id"] != lease["id"]:
                raise conflict(
                    "this Idempotency-Key was already used for another submission", "idempotency_key_reused"
                )
            return _submit_result(ctx, conn, project, prior), None
    if lease["status"] == "submitted":
        return _submit_result(ctx, conn, project, queue_store.fetch_answer(conn, lease["answer_id"])), None
    if lease["status"] == "skipped":
        raise conflict("this lease was skipped; lease the item again to answer it", "lease_skipped")
    if item["status"] == "deleted":
        # Not a retry (those are answered above, as acknowledged): a new answer to an item a
        # manager deleted since the lease (the delete cancelled the lease).
        raise GoldlabelError("the item was deleted; lease the next item", code="item_deleted", status=410)
    is_live = lease["status"] == "active" and lease["expires_at"] > now
    if lease["status"] == "active" and not is_live:
        queue_store.unreserve_item(conn, item["id"])
        queue_store.set_lease_status(conn, lease["id"], "expired")
    if not queue_store.count_answer(conn, item["id"], was_reserved=is_live, now=now):
        if is_live:
            raise conflict("the item already has its maximum number of answers", "max_overlap_reached")
        raise conflict(
            "the lease expired and the item no longer needs this answer "
            "(its free slots were leased to others or it is complete)",
            "lease_expired",
        )
    # Q2 is the unique index: nothing inserted means an answer exists (the transaction is
    # rolled back by the raise, count included).
    answer = queue_store.insert_answer_unique(
        conn,
        project_id=project_id,
        item_id=item["id"],
        annotator_id=actor.id,
        lease_id=lease["id"],
        value=clean,
        status="submitted",
        duration_ms=duration_ms,
        idempotency_key=idempotency_key,
        created_at=now,
        updated_at=now,
        schema_version=project["schema_version"],  # the version the answer was validated against
    )
    if answer is None:
        raise conflict("you have already answered this item", "duplicate_answer")
    queue_store.set_lease_status(conn, lease["id"], "submitted", answer["id"])
    events: list[dict] = []
    # The answer enters the pooled knowledge's running sums before the decision, as it is in
    # a sample read now (services/cold_start.py).
    cold_start.observe(ctx, project, item["id"], clean)
    # A gold answer: queued for scoring, and its status as an annotator is shown it.
    status = consensus_service.after_answer(ctx, conn, project, item, answer, now, events=events)
    events.append({"project_id": project_id, "kind": "answer.created",
                   "payload": {"answer_id": answer["id"], "item_id": item["id"], "annotator_id": actor.id},
                   "created_at": now})
    records.insert_events(conn, events)
    return {"answer": own_answer(ctx, answer), "item_status": status}, answer["id"] if item["is_gold"] else None


def _submit_result(ctx: Context, conn: Connection, project: dict, answer: dict) -> dict[str, Any]:
    item = item_store.fetch_item(conn, project["id"], answer["item_id"])
    return {"answer": own_answer(ctx, answer), "item_status": status_as_seen(ctx, conn, project, item)}
