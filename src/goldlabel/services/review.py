"""Review of items: accept the consensus, reject (back to the queue for more answers), or fix it.
Every action is recorded with who did it."""

from __future__ import annotations

from typing import Any

from goldlabel.domain.errors import GoldlabelError, not_found
from goldlabel.services.access import Actor, load_project
from goldlabel.services.context import Context
from goldlabel.storage import consensus_events
from goldlabel.storage import items as item_store
from goldlabel.storage import quality as quality_store
from goldlabel.storage import queue as queue_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx

ACTIONS = ("accept", "reject", "fix")


def review_item(
    ctx: Context,
    actor: Actor,
    project_id: int,
    item_id: int,
    action: str,
    value: dict[str, Any] | None = None,
    comment: str = "",
) -> dict[str, Any]:
    if action not in ACTIONS:
        raise GoldlabelError(f"action must be one of {', '.join(ACTIONS)}", code="bad_action", status=422)
    with read_tx(ctx.engine) as conn:
        project = load_project(conn, actor, project_id, "review")
        item = item_store.fetch_item(conn, project_id, item_id)
        if item is None:
            raise not_found("item")
    clean = None
    if action == "fix":
        if value is None:
            raise GoldlabelError("a fix needs a value", code="missing_value", status=422)
        clean = ctx.get_schema(project).validate_answer(value, item["data"], loc_prefix=("value",))
    elif value is not None:
        raise GoldlabelError(f"{action} takes no value", code="unexpected_value", status=422)
    now = now_ms()
    with write_tx(ctx.engine) as conn:
        item = queue_store.fetch_item_for_update(conn, item_id)
        if item["is_gold"]:
            raise GoldlabelError("gold items are not reviewed; edit their gold answer", code="gold_item", status=409)
        # Accept and fix make the label the reviewer's: final, kept by every later re-fit and
        # answer (source "review"), with who reviewed it and when. Reject hands it back to the answers.
        current = {c["question"]: c for c in consensus_events.fetch_consensus(conn, item_id)}
        if action == "reject":
            # Back to the queue for one more independent answer, beyond the max overlap if need be.
            status = "open"
            target = item["answer_count"] + 1
            overlap_max = max(item["overlap_max"], target)
            provenance = {"source": "consensus", "reviewer_id": None, "reviewed_at": None}
        else:
            status, target, overlap_max = "final", item["target_overlap"], item["overlap_max"]
            provenance = {"source": "review", "reviewer_id": actor.id, "reviewed_at": now}
            for name, v in (clean or {}).items():
                current[name] = {"question": name, "value": v, "confidence": 1.0, "method": "review",
                                 "contributions": {"reviewer": actor.id}}
        consensus_events.set_reviewed_consensus(conn, item_id, project_id, [
            {k: c.get(k) for k in ("question", "value", "confidence", "method", "contributions", "agreement")}
            | {"status": status, "updated_at": now} | provenance
            for c in current.values()
        ])
        item_store.set_reviewed_state(conn, item_id, status=status, target_overlap=target,
                                      overlap_max=overlap_max, now=now)
        review = quality_store.insert_review(conn, project_id=project_id, item_id=item_id, reviewer_id=actor.id,
                                             action=action, value=clean, comment=comment, created_at=now)
        consensus_events.insert_event(conn, project_id, "item.reviewed",
                             {"item_id": item_id, "action": action, "reviewer_id": actor.id, "status": status}, now)
    return {"id": review["id"], "item_id": item_id, "action": action, "value": clean, "comment": comment,
            "reviewer_id": actor.id, "created_at": now, "item_status": status}


def list_reviews(ctx: Context, actor: Actor, project_id: int, item_id: int) -> list[dict]:
    with read_tx(ctx.engine) as conn:
        load_project(conn, actor, project_id, "review")
        if item_store.fetch_item(conn, project_id, item_id) is None:
            raise not_found("item")
        return [
            {k: r[k] for k in ("id", "item_id", "action", "value", "comment", "reviewer_id", "created_at")}
            for r in quality_store.list_reviews(conn, item_id)
        ]
