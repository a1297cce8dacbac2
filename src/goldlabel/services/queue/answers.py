"""One's own answers: list them (newest first), edit one while its item is open."""

from __future__ import annotations

from typing import Any

from goldlabel.domain.errors import conflict, not_found
from goldlabel.services import consensus as consensus_service
from goldlabel.services.access import Actor, load_project
from goldlabel.services.context import Context
from goldlabel.services.item_refs import item_refs
from goldlabel.services.queue.views import item_view, own_answer, status_as_seen
from goldlabel.storage import items as item_store
from goldlabel.storage import queue as queue_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx


def list_my_answers(ctx: Context, actor: Actor, project_id: int, after: int, limit: int) -> list[dict]:
    """The caller's own answers in this project, newest first (``after`` = answer id cursor)."""
    item_refs(ctx)  # read before any transaction (services/item_refs.py)
    with read_tx(ctx.engine) as conn:
        project = load_project(conn, actor, project_id, "annotate")
        rows = item_store.list_answers_by_annotator(conn, project_id, actor.id, after, limit)
        out = []
        for r in rows:
            item = item_store.fetch_item(conn, project_id, r["item_id"])
            status = status_as_seen(ctx, conn, project, item) if item["is_gold"] else r["item_status"]
            out.append({**own_answer(ctx, r), "item": item_view(ctx, conn, project, actor.id, r["item_id"]),
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
        status = status_as_seen(ctx, conn, project, item)  # Q8: a gold item closes like any other
        if status != "open":
            raise conflict(f"the item is {status}; answers can no longer change", "item_closed")
        row = item_store.update_answer_value(conn, answer_id, clean, now)
        # A gold item's consensus is rewritten as any item's, but its answer is not queued for
        # scoring again: gold is scored once, on the first answer (re-scoring an edit would
        # count the same gold item twice and let an annotator retry it).
        consensus_service.after_answer(ctx, conn, project, item, row, now, is_edit=True)
    return own_answer(ctx, row)
