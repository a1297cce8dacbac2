"""The annotate loop: lease the next item, submit, skip, release, edit an earlier answer.

Each call is one short write transaction. The response is built only after COMMIT returns,
so an acknowledged answer is durable (Q4, storage.engine).

The server reaches lease, submit, skip and release through one async use case each
(``lease_next_async``, ``submit_answer_async``, ``skip_item_async``, ``release_item_async``),
for browser (session cookie) and API-token clients alike: api/fastlane.py for the plain case,
the routes of api/routes/queue.py for the rest (validation errors, large bodies). They run on
the database's :class:`~goldlabel.storage.backend.Backend`, which decides where the work runs
and makes it durable. Whether the database has the one-statement lease and the merged submit
is the backend's to say (PostgreSQL); the merged submit decides answers to every question kind,
so there the generic submit is only the exception path (retries, expired or late leases, a write
that finds something changed: storage/queue_pg.py says which invariant is enforced where). No
module flag chooses a path. The synchronous functions of the same
names are the same rules for callers off the event loop (the CLI, tests).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable, Generator
from typing import Any, NamedTuple

from goldlabel.domain.errors import GoldlabelError, conflict, not_found
from goldlabel.domain.queue_policy import AnnotatorProgress, QueuePolicy, pick_next
from goldlabel.quality.consensus import KINDS as CONSENSUS_KINDS
from goldlabel.services import cold_start
from goldlabel.services import consensus as posterior
from goldlabel.services import consensus as quality_service
from goldlabel.services import gold as gold_service
from goldlabel.services.access import (
    NEED_RANK,
    ROLE_RANK,
    Actor,
    authorize,
    check_auth_version,
    load_project,
    load_project_to_annotate,
)
from goldlabel.services.context import Context
from goldlabel.services.item_refs import encode_item, item_refs
from goldlabel.storage import consensus_events as records
from goldlabel.storage import items as item_store
from goldlabel.storage import queue as queue_store
from goldlabel.storage import queue_pg
from goldlabel.storage.engine import now_ms, read_tx, statement_tx, write_tx
from goldlabel.storage.handles import Connection
from goldlabel.storage.quality import json_safe

LEASE_TOKEN_PREFIX = "lt_"
# PostgreSQL (Backend.one_statement_lease, Backend.merged_submit): the common lease in one
# statement and the common submit in one (the write, on the lease's reading of the item kept by
# this process) or two (a read, then the write), the write re-checking under lock what the
# decision used; each statement its own transaction on a connection in autocommit mode
# (storage/queue_pg.py), instead of about twelve statements in two transactions.
# Live leases one annotator may hold when the project's settings do not say (schemas.py).
DEFAULT_MAX_LEASES = 4
# Member roles that may annotate (access.py): what the lease statement checks in SQL.
_ANNOTATE_ROLES = [role for role, rank in ROLE_RANK.items() if rank >= NEED_RANK["annotate"]]
_SYSTEM_RANDOM = secrets.SystemRandom()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def public_answer(row: dict) -> dict[str, Any]:
    return {
        k: row[k]
        for k in ("id", "item_id", "annotator_id", "value", "status", "duration_ms", "created_at", "updated_at")
    }


def own_answer(ctx: Context, row: dict) -> dict[str, Any]:
    """An answer as its annotator is shown it: the item by its opaque reference
    (services/item_refs.py), never its id."""
    return {**public_answer(row), "item_id": encode_item(ctx, row["project_id"], row["annotator_id"], row["item_id"])}


def _task_view(ctx: Context, conn: Connection, project: dict, annotator_id: int, item_id: int,
               data: Any = None) -> dict[str, Any]:
    """What an annotator sees of an item: its reference, never its id (services/item_refs.py).
    Never reads gold_answers, never returns is_gold (Q8)."""
    if data is None:
        data = item_store.fetch_item_data(conn, item_id)
    view: dict[str, Any] = {"id": encode_item(ctx, project["id"], annotator_id, item_id), "data": data,
                            "predictions": None}
    if project["settings"].get("show_predictions"):
        view["predictions"] = [
            {"value": p["value"], "score": p["score"], "model_version": p["model_version"]}
            for p in item_store.fetch_predictions(conn, item_id)
        ]
    return view


def _lease_view(ctx: Context, conn: Connection, project: dict, lease: dict, token: str,
                data: Any = None) -> dict[str, Any]:
    return {"token": token, "expires_at": lease["expires_at"],
            "item": _task_view(ctx, conn, project, lease["annotator_id"], lease["item_id"], data)}


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


def _new_lease_token() -> str:
    return LEASE_TOKEN_PREFIX + secrets.token_urlsafe(24)


def _lease_call(actor: Actor, project_id: int) -> tuple[str, Any]:
    """A fresh lease token and the one-statement lease that would hand it out."""
    token = _new_lease_token()
    return token, queue_pg.lease(
        project_id=project_id, user_id=actor.id, is_admin=actor.is_admin, roles=_ANNOTATE_ROLES,
        token_hash=_hash(token), now=now_ms(), default_max_leases=DEFAULT_MAX_LEASES,
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
    quality_service.ensure_not_suspended(got["standing"])
    lease = got["lease"]
    if lease is not None:
        _remember_reading(ctx, project, got, token)
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


def _remember_reading(ctx: Context, project: dict, got: dict, token: str) -> None:
    """Keep the one-statement lease's reading of the claimed item (its state and knowledge:
    what the submit's read returns) for the submit of this lease, when the merged submit could
    use it (choice questions only): the submit is then one statement. Without the item's data,
    which choice answers are not checked against. The write re-checks the lease, the caller's
    membership, the project and the item; the skills and priors stay as read here (a re-fit
    before the submit reaches the item's consensus with its next answer or the re-fit's own
    rewrite)."""
    if not ctx.backend.merged_submit or not _merged_kinds(ctx.get_schema(project)):
        return
    reading = {"project": project, "role": got["role"], "auth_version": got["auth_version"], "lease": got["lease"],
               "item": {**got["item"], "data": None},
               "key_seen": False, "answers": got["answers"], "skills": got["skills"], "priors": got["priors"],
               "model_vote": got["model_vote"]}
    ctx.remember_lease_reading((_hash(token), got["lease"]["annotator_id"], project["id"]), project["lease_ttl_s"],
                               reading)


# The question kinds whose consensus the merged submit decides: every kind whose consensus is
# computed per item in Python (services/consensus.py ``decide_after_answer``: choice questions
# by the posterior, the others by goldlabel.quality.consensus), from what its read holds.
_MERGED_KINDS = frozenset(("choice", *CONSENSUS_KINDS))


def _merged_kinds(schema: Any) -> bool:
    """Whether the merged submit decides answers to this schema (every question of a kind it
    decides: today every kind)."""
    return bool(schema.questions) and all(q.kind in _MERGED_KINDS for q in schema.questions)


def _lease_general(ctx: Context, actor: Actor, project_id: int) -> dict[str, Any] | None:
    """lease_next in a write transaction: every case, both databases."""
    now = now_ms()
    # Not durable: a lease lost in a crash only returns its item to the queue (the lease and
    # its reservation are one transaction), and the flush stays on the answer's COMMIT (Q4).
    with write_tx(ctx.engine, durable=False) as conn:
        project, standing = load_project_to_annotate(conn, actor, project_id)
        settings = project["settings"]
        quality_service.ensure_not_suspended(standing)
        active = queue_store.reap_and_fetch_active_leases(conn, project_id, actor.id, now)
        if len(active) >= _max_leases(settings):
            # Holding the maximum already: hand the oldest back again with a fresh token, so a
            # client that lost its response can carry on without hoarding more items.
            lease = active[0]
            token = _new_lease_token()
            item_store.rotate_lease_token(conn, lease["id"], _hash(token))
            return _lease_view(ctx, conn, project, lease, token)
        policy = _queue_policy(settings)
        has_gold = policy.has_gold
        token = _new_lease_token()
        expires_at = now + project["lease_ttl_s"] * 1000
        if not has_gold and ctx.backend.dialect == "postgresql":
            # No gold stream, so the policy's choice is the head of the normal queue: candidate,
            # reservation and lease in one round trip (same conditions, re-checked by the UPDATE).
            claimed = queue_store.claim_next_pg(
                conn, project_id, actor.id, token_hash=_hash(token), created_at=now, expires_at=expires_at
            )
            if claimed is None:
                return None
            return _lease_view(ctx, conn, project, claimed[0], token, claimed[1])
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
            token_hash=_hash(token),
            status="active",
            created_at=now,
            expires_at=expires_at,
        )
        return _lease_view(ctx, conn, project, lease, token, data)


def _check_own_lease(lease: dict | None, actor: Actor, project_id: int) -> None:
    if lease is None or lease["annotator_id"] != actor.id or lease["project_id"] != project_id:
        raise not_found("lease")


def _fetch_own_lease(conn: Connection, actor: Actor, project_id: int, token: str, *, lock: bool = False) -> dict:
    """The caller's lease in this project, or 404. ``lock=True`` (inside a write transaction)
    re-reads it under a row lock, so its status cannot change until COMMIT."""
    fetch = queue_store.lock_lease_by_token if lock else queue_store.fetch_lease_by_token
    lease = fetch(conn, _hash(token))
    if lease is None or lease["annotator_id"] != actor.id or lease["project_id"] != project_id:
        raise not_found("lease")
    return lease


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
        steps = _merged_steps(ctx, actor, project_id, lease_token, value, duration_ms, idempotency_key)
        with statement_tx(ctx.engine) as conn:
            result, now, gold_answer = _drive(steps, lambda call: call.all(conn))
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
        steps = _merged_steps(ctx, actor, project_id, lease_token, value, duration_ms, idempotency_key)
        result, now, gold_answer = await _drive_async(steps, backend.all)
        if result is not None:
            if gold_answer is not None and not gold_service.wake_scorer(ctx):
                await backend.run(gold_service.score_pending, ctx, gold_answer)
            return result
    return await backend.run(_submit_generic, ctx, actor, project_id, lease_token, value, duration_ms,
                             idempotency_key, now)


async def skip_item_async(ctx: Context, actor: Actor, project_id: int, lease_token: str) -> None:
    """Skip (the server's one use case): :func:`skip_item` in ``Backend.run``."""
    await ctx.backend.run(skip_item, ctx, actor, project_id, lease_token)


async def release_item_async(ctx: Context, actor: Actor, project_id: int, lease_token: str) -> None:
    """Release (the server's one use case): :func:`release_item` in ``Backend.run``."""
    await ctx.backend.run(release_item, ctx, actor, project_id, lease_token)


# The merged submit's statements as a generator that yields each storage.hot Call and is sent its
# rows, so one definition serves the blocking driver (_drive) and the event loop (_drive_async).
Steps = Generator[Any, list[dict], tuple[dict[str, Any] | None, int | None, int | None]]


def _merged_steps(ctx: Context, actor: Actor, project_id: int, lease_token: str, value: dict[str, Any],
                  duration_ms: int | None, idempotency_key: str | None) -> Steps:
    """The merged submit: with the lease's reading of the item, the write alone; without it, or
    when that write finds something changed, the read and the write. Returns (the result, or
    None for the generic path to decide; the time decided at, or None; the answer's id when it
    is a gold answer, queued for scoring: services/gold.py ``follow_up``)."""
    token_hash = _hash(lease_token)
    now = None
    kept = ctx.take_lease_reading((token_hash, actor.id, project_id))
    if kept is not None:
        plan, now = _submit_plan(ctx, actor, project_id, kept, value, duration_ms, idempotency_key)
        if plan is _NEEDS_SAMPLE:
            sample = queue_pg.parse_pooled_sample((yield _pooled_sample(kept)))
            plan, now = _submit_plan(ctx, actor, project_id, kept, value, duration_ms, idempotency_key, now,
                                     sample)
        if plan is not None:
            result, gold_answer = _submit_written(ctx, plan, (yield plan.write))
            if result is not None:
                return result, now, gold_answer
            cold_start.unobserve(plan.observed)  # nothing written: the next decision counts it
    read = queue_pg.submit_read(project_id=project_id, user_id=actor.id, token_hash=token_hash,
                                idempotency_key=idempotency_key)
    got = queue_pg.parse_submit_read((yield read))
    plan, now = _submit_plan(ctx, actor, project_id, got, value, duration_ms, idempotency_key, now)
    if plan is _NEEDS_SAMPLE:
        sample = queue_pg.parse_pooled_sample((yield _pooled_sample(got)))
        plan, now = _submit_plan(ctx, actor, project_id, got, value, duration_ms, idempotency_key, now, sample)
    if plan is None:
        return None, now, None
    result, gold_answer = _submit_written(ctx, plan, (yield plan.write))
    if result is None:
        cold_start.unobserve(plan.observed)  # nothing written: the generic path counts it
    return result, now, gold_answer


def _pooled_sample(got: dict) -> Any:
    """The read of the project's pooled knowledge (services/cold_start.py) for the merged submit."""
    return queue_pg.pooled_sample(project_id=got["project"]["id"], limit=cold_start.SAMPLE_ANSWERS)


def _drive(steps: Steps, run: Callable[[Any], list[dict]]) -> tuple[dict[str, Any] | None, int | None, int | None]:
    try:
        call = next(steps)
        while True:
            call = steps.send(run(call))
    except StopIteration as done:
        return done.value


async def _drive_async(steps: Steps, run: Callable[[Any], Awaitable[list[dict]]]
                       ) -> tuple[dict[str, Any] | None, int | None, int | None]:
    try:
        call = next(steps)
        while True:
            call = steps.send(await run(call))
    except StopIteration as done:
        return done.value


def _merged_submit(ctx: Context) -> bool:
    return ctx.backend.merged_submit


class _SubmitPlan(NamedTuple):
    write: Any  # storage.hot.Call: the write statement
    status: str  # the item's status after the answer, as the annotator is told
    is_gold: bool = False  # a gold answer: queued for scoring by the write
    # the answer in the pooled knowledge's running sums (cold_start.observe): taken out again
    # when the write does not happen
    observed: Any = None


# _submit_plan's answer when the project's pooled knowledge is due: read it, then plan again.
_NEEDS_SAMPLE: Any = _SubmitPlan(None, "")


def _submit_plan(ctx: Context, actor: Actor, project_id: int, got: dict | None, value: dict[str, Any],
                 duration_ms: int | None, idempotency_key: str | None,
                 now: int | None = None, sample: tuple | None = None) -> tuple[_SubmitPlan | None, int]:
    """From the submit's read (storage/queue_pg.py ``parse_submit_read``, or the lease's reading
    of the item: see _remember_reading): the write of the common
    case (a live active lease, no answer yet for the Idempotency-Key nor by the caller on the
    item, an item with a free slot, choice questions only), with the item's consensus
    and state decided as the generic path decides them (``quality.decide_after_answer``) from
    the item's answers plus this one, and the time it was decided at. A gold item takes the
    same statements: its write also queues the answer for scoring, its consensus rows are the
    crowd's on the item's first answers, and the annotator is shown the status a normal item
    would have (consensus.gold_decision). No plan: the generic path decides (at that time). The
    errors the generic path raises before it writes (404 project or lease, 403 role, 422 answer)
    are raised here, in the same order. When the project's pooled
    knowledge (services/cold_start.py) is due, ``_NEEDS_SAMPLE``: the caller reads it
    (queue_pg.pooled_sample) and plans again with it as ``sample``."""
    if got is not None:
        check_auth_version(actor, got["auth_version"])
    project = authorize(actor, got and got["project"], got and got["role"], "annotate")
    lease, item = got["lease"], got["item"]
    _check_own_lease(lease, actor, project_id)
    schema = ctx.get_schema(project)
    clean = schema.validate_answer(value, item["data"])
    now = now_ms() if now is None else now
    if (
        got["key_seen"]
        or lease["status"] != "active"
        or lease["expires_at"] <= now
        or (item["is_gold"] and "overlap_max" not in project)
        or item["answer_count"] >= item["overlap_max"]
        or not _merged_kinds(schema)
        or any(a["annotator_id"] == actor.id for a in got["answers"])
    ):
        return None, now
    if not cold_start.is_fresh(ctx, project):
        if sample is None:
            return _NEEDS_SAMPLE, now  # the knowledge is due: the caller reads it and plans again
        rows, n_gold, n_correct, n_eligible = sample
        cold_start.remember(ctx, project, cold_start.estimate(ctx, project, rows, n_gold, n_correct, n_eligible))
    # As the generic path decides (cold_start.observe): this answer is the newest; taken out
    # again if the write does not happen.
    observed = cold_start.observe(ctx, project, item["id"], clean)
    item_answers = [*got["answers"], {"annotator_id": actor.id, "value": clean}]
    known = {q.name: (got["skills"].get(q.name, {}), {"prior": got["priors"].get(q.name)}) for q in schema.questions}
    if item["is_gold"]:
        # The read held the item's first answers only (queue_pg: as many as the project's
        # maximum overlap), what the crowd's consensus and the shown status are decided on; the
        # consensus rows are written as a normal item's (services/consensus.py _after_gold_answer).
        first = item_answers[:project["overlap_max"]]
        shown, _target, rows = posterior.gold_decision(ctx, None, project, first, now, known)
        if not json_safe(rows):
            return None, now
        write = queue_pg.submit_write(
            project=project, lease=lease, item=item, annotator_id=actor.id, is_admin=actor.is_admin,
            roles=_ANNOTATE_ROLES, value=clean, duration_ms=duration_ms, idempotency_key=idempotency_key,
            now=now, status=item["status"], target=item["target_overlap"], rows=rows, item_events=[],
            auth_version=actor.auth_version, is_gold=True,
        )
        return _SubmitPlan(write, shown, True, observed), now
    status, target, rows = quality_service.decide_after_answer(ctx, None, project, item, item_answers, now, known,
                                                               got["model_vote"])
    if not json_safe(rows):
        cold_start.unobserve(observed)  # the generic path counts it
        return None, now  # a non-finite confidence cannot travel as JSON: the generic path writes it
    item_events = []
    if status != item["status"]:
        item_events.append({"kind": f"item.{status}", "payload": {"item_id": item["id"], "status": status}})
    write = queue_pg.submit_write(
        project=project, lease=lease, item=item, annotator_id=actor.id, is_admin=actor.is_admin,
        roles=_ANNOTATE_ROLES, value=clean,
        duration_ms=duration_ms, idempotency_key=idempotency_key, now=now, status=status, target=target,
        rows=rows, item_events=item_events, auth_version=actor.auth_version,
    )
    return _SubmitPlan(write, status, False, observed), now


def _submit_written(ctx: Context, plan: _SubmitPlan, rows: list[dict]) -> tuple[dict[str, Any] | None, int | None]:
    """The submit's result from its write's rows, None when the write found the lease or the
    item changed since the read (or the answer refused by a unique index) and wrote nothing;
    and the answer's id when it is a gold answer queued for scoring."""
    answer = queue_pg.parse_submit_write(rows)
    if answer is None:
        return None, None
    return {"answer": own_answer(ctx, answer), "item_status": plan.status}, answer["id"] if plan.is_gold else None


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
        lease, item = queue_store.lock_lease_and_item(conn, _hash(lease_token))
        _check_own_lease(lease, actor, project_id)
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
    status = quality_service.after_answer(ctx, conn, project, item, answer, now, events=events)
    events.append({"project_id": project_id, "kind": "answer.created",
                   "payload": {"answer_id": answer["id"], "item_id": item["id"], "annotator_id": actor.id},
                   "created_at": now})
    records.insert_events(conn, events)
    return {"answer": own_answer(ctx, answer), "item_status": status}, answer["id"] if item["is_gold"] else None


def _submit_result(ctx: Context, conn: Connection, project: dict, answer: dict) -> dict[str, Any]:
    item = item_store.fetch_item(conn, project["id"], answer["item_id"])
    return {"answer": own_answer(ctx, answer), "item_status": _status_as_seen(ctx, conn, project, item)}


def _status_as_seen(ctx: Context, conn: Connection, project: dict, item: dict) -> str:
    """The item status an annotator is shown. A deleted item shows the status it had when it
    was deleted, so a retry of an acknowledged answer gets the acknowledgement it got."""
    if item["is_gold"]:
        return _gold_status_as_seen(ctx, conn, project, item["id"], now_ms())
    if item["status"] == "deleted":
        return item["status_before_delete"] or "open"
    return item["status"]


def _gold_status_as_seen(ctx: Context, conn: Connection, project: dict, item_id: int, now: int) -> str:
    """The status an annotator is shown for a gold item (services/consensus.py
    ``gold_status_as_seen``), from its first answers as they are now."""
    first = queue_store.fetch_first_answers(conn, item_id, project["overlap_max"])
    return posterior.gold_status_as_seen(ctx, conn, project, first, now)


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
    ctx.take_lease_reading((_hash(lease_token), actor.id, project_id))  # never submitted now
    with write_tx(ctx.engine) as conn:
        lease, project = _return_lease_of(conn, actor, project_id, lease_token)
        queue_store.set_lease_status(conn, lease["id"], "skipped")
        # The skip may have taken the item's last eligible annotator.
        quality_service.settle_stalled(ctx, conn, project, now_ms(), lease["item_id"])


def release_item(ctx: Context, actor: Actor, project_id: int, lease_token: str) -> None:
    """Give the item back to the queue; it may come back to this annotator later."""
    ctx.take_lease_reading((_hash(lease_token), actor.id, project_id))  # never submitted now
    with write_tx(ctx.engine) as conn:
        lease = _return_lease(conn, actor, project_id, lease_token)
        queue_store.delete_lease(conn, lease["id"])


def list_my_answers(ctx: Context, actor: Actor, project_id: int, after: int, limit: int) -> list[dict]:
    """The caller's own answers in this project, newest first (``after`` = answer id cursor)."""
    item_refs(ctx)  # read before any transaction (services/item_refs.py)
    with read_tx(ctx.engine) as conn:
        project = load_project(conn, actor, project_id, "annotate")
        rows = item_store.list_answers_by_annotator(conn, project_id, actor.id, after, limit)
        out = []
        for r in rows:
            item = item_store.fetch_item(conn, project_id, r["item_id"])
            status = _status_as_seen(ctx, conn, project, item) if item["is_gold"] else r["item_status"]
            out.append({**own_answer(ctx, r), "item": _task_view(ctx, conn, project, actor.id, r["item_id"]),
                        "item_status": status})
        return out


def edit_answer(ctx: Context, actor: Actor, project_id: int, answer_id: int, value: dict[str, Any]) -> dict:
    """Change one's own answer while its item is not final."""
    item_refs(ctx)  # read before any transaction (services/item_refs.py)
    with read_tx(ctx.engine) as conn:
        project = load_project(conn, actor, project_id, "annotate")
        answer = queue_store.fetch_answer(conn, answer_id)
        if answer is None or answer["annotator_id"] != actor.id or answer["project_id"] != project_id:
            raise not_found("answer")
        data = item_store.fetch_item_data(conn, answer["item_id"])
    clean = ctx.get_schema(project).validate_answer(value, data)
    now = now_ms()
    with write_tx(ctx.engine) as conn:
        item = queue_store.fetch_item_for_update(conn, answer["item_id"])
        status = _status_as_seen(ctx, conn, project, item)  # Q8: a gold item closes like any other
        if status != "open":
            raise conflict(f"the item is {status}; answers can no longer change", "item_closed")
        row = item_store.update_answer_value(conn, answer_id, clean, now)
        # A gold item's consensus is rewritten as any item's, but its answer is not queued for
        # scoring again: gold is scored once, on the first answer (re-scoring an edit would
        # count the same gold item twice and let an annotator retry it).
        quality_service.after_answer(ctx, conn, project, item, row, now, is_edit=True)
    return own_answer(ctx, row)

