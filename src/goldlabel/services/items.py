"""Browsing items (managers and reviewers), item detail, events."""

from __future__ import annotations

from typing import Any

from goldlabel.domain.errors import not_found
from goldlabel.services.access import Actor, fetch_project_role, is_allowed, load_project
from goldlabel.services.context import Context
from goldlabel.services.queue import public_answer
from goldlabel.storage import consensus_events
from goldlabel.storage import items as item_store
from goldlabel.storage.engine import read_tx, write_tx

ITEM_FIELDS = (
    "id", "external_id", "data", "meta", "priority", "status", "is_gold", "answer_count",
    "target_overlap", "created_at", "updated_at",
)


def public_item(row: dict) -> dict[str, Any]:
    return {k: row[k] for k in ITEM_FIELDS}


def list_items(
    ctx: Context,
    actor: Actor,
    project_id: int,
    after: int,
    limit: int,
    **filters: Any,
) -> list[dict]:
    """Filters: status, is_gold, annotator_id, and question with label / min_confidence /
    max_confidence on that question's consensus (see storage.items.list_items)."""
    with read_tx(ctx.engine) as conn:
        load_project(conn, actor, project_id, "review")
        rows = item_store.list_items(conn, project_id, after, limit, **filters)
    return [public_item(r) for r in rows]


def get_item(ctx: Context, actor: Actor, project_id: int, item_id: int) -> dict:
    with read_tx(ctx.engine) as conn:
        load_project(conn, actor, project_id, "review")
        row = item_store.fetch_item(conn, project_id, item_id)
        if row is None:
            raise not_found("item")
        detail = public_item(row)
        detail["answers"] = [public_answer(a) for a in item_store.fetch_answers(conn, item_id)]
        detail["predictions"] = [
            {"value": p["value"], "score": p["score"], "model_version": p["model_version"], "created_at": p["created_at"]}
            for p in item_store.fetch_predictions(conn, item_id)
        ]
        detail["consensus"] = [
            {k: c[k] for k in ("question", "value", "confidence", "method", "status", "contributions", "agreement",
                           "updated_at", "source", "reviewer_id", "reviewed_at")}
            for c in consensus_events.fetch_consensus(conn, item_id)
        ]
        # Gold answers are for managers only: reviewers may also answer items.
        role = fetch_project_role(conn, actor, project_id)
        detail["gold"] = item_store.fetch_gold(conn, item_id) if is_allowed(role, "manage") else None
    return detail


def delete_item(ctx: Context, actor: Actor, project_id: int, item_id: int) -> None:
    with write_tx(ctx.engine) as conn:
        load_project(conn, actor, project_id, "manage")
        if not item_store.delete_item(conn, project_id, item_id):
            raise not_found("item")


def list_answers(ctx: Context, actor: Actor, project_id: int, after: int, limit: int) -> list[dict]:
    with read_tx(ctx.engine) as conn:
        load_project(conn, actor, project_id, "review")
        return [public_answer(a) for a in item_store.list_project_answers(conn, project_id, after, limit)]


def list_events(ctx: Context, actor: Actor, project_id: int, after: int, limit: int) -> list[dict]:
    with read_tx(ctx.engine) as conn:
        load_project(conn, actor, project_id, "manage")
        return [
            {k: e[k] for k in ("id", "kind", "payload", "created_at")}
            for e in consensus_events.list_events(conn, project_id, after, limit)
        ]
