"""What an annotator is shown: an item (by its reference, never its id), a lease, their own
answer, and an item's status as they see it (a gold item's never tells it is gold: Q8)."""

from __future__ import annotations

from typing import Any

from goldlabel.services import consensus as consensus_service
from goldlabel.services.context import Context
from goldlabel.services.item_refs import encode_item
from goldlabel.storage import items as item_store
from goldlabel.storage import queue as queue_store
from goldlabel.storage.engine import now_ms
from goldlabel.storage.handles import Connection


def public_answer(row: dict) -> dict[str, Any]:
    return {
        k: row[k]
        for k in ("id", "item_id", "annotator_id", "value", "status", "duration_ms", "created_at", "updated_at")
    }


def own_answer(ctx: Context, row: dict) -> dict[str, Any]:
    """An answer as its annotator is shown it: the item by its opaque reference
    (services/item_refs.py), never its id."""
    return {**public_answer(row), "item_id": encode_item(ctx, row["project_id"], row["annotator_id"], row["item_id"])}


def item_view(ctx: Context, conn: Connection, project: dict, annotator_id: int, item_id: int,
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


def lease_view(ctx: Context, conn: Connection, project: dict, lease: dict, token: str,
               data: Any = None) -> dict[str, Any]:
    return {"token": token, "expires_at": lease["expires_at"],
            "item": item_view(ctx, conn, project, lease["annotator_id"], lease["item_id"], data)}


def status_as_seen(ctx: Context, conn: Connection, project: dict, item: dict) -> str:
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
    return consensus_service.gold_status_as_seen(ctx, conn, project, first, now)
