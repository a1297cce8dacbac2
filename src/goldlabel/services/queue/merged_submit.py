"""PostgreSQL's merged submit: the common submit in one statement (the write, on the lease's
reading of the item this process kept) or two (a read, then the write), the write re-checking
under lock what the decision used (storage/queue_pg.py says which invariant is enforced where).

The steps are sans-I/O: a generator that yields each statement and is sent its rows, driven by
:func:`drive` (blocking) or :func:`drive_async` (the event loop). What they leave undecided
(retries, expired or late leases, a write that finds something changed) the generic submit
decides (services/queue/submit.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, NamedTuple

from goldlabel.quality.consensus import KINDS as CONSENSUS_KINDS
from goldlabel.services import cold_start
from goldlabel.services import consensus as consensus_service
from goldlabel.services.access import Actor, authorize, check_auth_version
from goldlabel.services.context import Context
from goldlabel.services.queue.tokens import ANNOTATE_ROLES, check_own_lease, hash_token
from goldlabel.services.queue.views import own_answer
from goldlabel.storage import queue_pg
from goldlabel.storage.engine import now_ms
from goldlabel.storage.quality import json_safe

# The question kinds whose consensus the merged submit decides: every kind whose consensus is
# computed per item in Python (services/consensus.py ``decide_after_answer``: choice questions
# by the posterior, the others by goldlabel.quality.consensus), from what its read holds.
MERGED_KINDS = frozenset(("choice", *CONSENSUS_KINDS))


def merged_kinds(schema: Any) -> bool:
    """Whether the merged submit decides answers to this schema (every question of a kind it
    decides: today every kind)."""
    return bool(schema.questions) and all(q.kind in MERGED_KINDS for q in schema.questions)


# The question kinds whose answers are checked without the item's data. The others are checked
# against it (a span against the text, a pixel shape against the image's size, a ranking against
# the item's own candidates), which a kept reading does not hold.
DATA_FREE_KINDS = frozenset(("choice", "multi_choice", "rating", "text"))


def remember_reading(ctx: Context, project: dict, got: dict, token: str) -> None:
    """Keep the one-statement lease's reading of the claimed item (its state and knowledge:
    what the submit's read returns) for the submit of this lease, when the merged submit could
    use it: the submit is then one statement. Without the item's data (up to max_item_bytes an
    item, for as many leases as LEASE_READINGS_MAX), so only for schemas whose answers are
    checked without it (DATA_FREE_KINDS); for the others the submit's own read brings the data.
    The write re-checks the lease, the caller's membership, the project and the item; the skills
    and priors stay as read here (a re-fit before the submit reaches the item's consensus with
    its next answer or the re-fit's own rewrite)."""
    if not ctx.backend.merged_submit:
        return
    schema = ctx.get_schema(project)
    if not merged_kinds(schema) or any(q.kind not in DATA_FREE_KINDS for q in schema.questions):
        return
    reading = {"project": project, "role": got["role"], "auth_version": got["auth_version"], "lease": got["lease"],
               "item": {**got["item"], "data": None},
               "key_seen": False, "answers": got["answers"], "skills": got["skills"], "priors": got["priors"],
               "model_vote": got["model_vote"]}
    ctx.remember_lease_reading((hash_token(token), got["lease"]["annotator_id"], project["id"]),
                               project["lease_ttl_s"], reading)


# The merged submit's statements as a generator that yields each storage.hot Call and is sent its
# rows, so one definition serves the blocking driver (drive) and the event loop (drive_async).
Steps = Generator[Any, list[dict], tuple[dict[str, Any] | None, int | None, int | None]]


def merged_steps(ctx: Context, actor: Actor, project_id: int, lease_token: str, value: dict[str, Any],
                 duration_ms: int | None, idempotency_key: str | None) -> Steps:
    """The merged submit: with the lease's reading of the item, the write alone; without it, or
    when that write finds something changed, the read and the write. Returns (the result, or
    None for the generic path to decide; the time decided at, or None; the answer's id when it
    is a gold answer, queued for scoring: services/gold.py ``follow_up``)."""
    token_hash = hash_token(lease_token)
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


def drive(steps: Steps, run: Callable[[Any], list[dict]]) -> tuple[dict[str, Any] | None, int | None, int | None]:
    try:
        call = next(steps)
        while True:
            call = steps.send(run(call))
    except StopIteration as done:
        return done.value


async def drive_async(steps: Steps, run: Callable[[Any], Awaitable[list[dict]]]
                      ) -> tuple[dict[str, Any] | None, int | None, int | None]:
    try:
        call = next(steps)
        while True:
            call = steps.send(await run(call))
    except StopIteration as done:
        return done.value


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
    of the item: see remember_reading): the write of the common
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
    check_own_lease(lease, actor, project_id)
    schema = ctx.get_schema(project)
    clean = schema.validate_answer(value, item["data"])
    now = now_ms() if now is None else now
    if (
        got["key_seen"]
        or lease["status"] != "active"
        or lease["expires_at"] <= now
        or (item["is_gold"] and "overlap_max" not in project)
        or item["answer_count"] >= item["overlap_max"]
        or not merged_kinds(schema)
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
        shown, _target, rows = consensus_service.gold_decision(ctx, None, project, first, now, known)
        if not json_safe(rows):
            return None, now
        write = queue_pg.submit_write(
            project=project, lease=lease, item=item, annotator_id=actor.id, is_admin=actor.is_admin,
            roles=ANNOTATE_ROLES, value=clean, duration_ms=duration_ms, idempotency_key=idempotency_key,
            now=now, status=item["status"], target=item["target_overlap"], rows=rows, item_events=[],
            auth_version=actor.auth_version, is_gold=True,
        )
        return _SubmitPlan(write, shown, True, observed), now
    status, target, rows = consensus_service.decide_after_answer(ctx, None, project, item, item_answers, now,
                                                                 known, got["model_vote"])
    if not json_safe(rows):
        cold_start.unobserve(observed)  # the generic path counts it
        return None, now  # a non-finite confidence cannot travel as JSON: the generic path writes it
    item_events = []
    if status != item["status"]:
        item_events.append({"kind": f"item.{status}", "payload": {"item_id": item["id"], "status": status}})
    write = queue_pg.submit_write(
        project=project, lease=lease, item=item, annotator_id=actor.id, is_admin=actor.is_admin,
        roles=ANNOTATE_ROLES, value=clean,
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
