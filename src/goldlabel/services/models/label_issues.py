"""The label-error audit of the newest version: its likely label errors, and sending flagged
items back to review."""

from __future__ import annotations

from goldlabel.domain.errors import FieldError, invalid
from goldlabel.services.access import Actor
from goldlabel.services.context import Context
from goldlabel.services.models.settings import project_for
from goldlabel.storage import consensus_events as records
from goldlabel.storage import items as item_store
from goldlabel.storage import models as model_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx

ISSUES_LIMIT_MAX = 500


def label_audit(ctx: Context, actor: Actor | None, project_id: int, limit: int = 100) -> list[dict]:
    """The newest version's likely label errors, most suspicious first."""
    if not 1 <= limit <= ISSUES_LIMIT_MAX:
        raise invalid([FieldError(("limit",), "bad_limit", f"limit must lie in 1..{ISSUES_LIMIT_MAX}")])
    with read_tx(ctx.engine) as conn:
        project_for(conn, actor, project_id, "review")
        return model_store.list_label_issues(conn, project_id, limit)


def send_issues_to_review(ctx: Context, actor: Actor | None, project_id: int, item_ids: list[int]) -> dict:
    """Send flagged items back to review: each listed item that the label-error audit flagged and
    whose final label came from the answers (not a reviewer, gold or the model) becomes
    ``needs_review``, with an ``item.needs_review`` event that carries the reason."""
    if not 1 <= len(item_ids) <= ISSUES_LIMIT_MAX:
        raise invalid([FieldError(("item_ids",), "bad_item_ids", f"name 1..{ISSUES_LIMIT_MAX} items")])
    now = now_ms()
    sent = []
    with write_tx(ctx.engine) as conn:
        project_for(conn, actor, project_id, "review")
        for issue in model_store.fetch_issues_for_review(conn, project_id, sorted(set(item_ids))):
            if not item_store.send_to_review(conn, project_id, [issue["item_id"]], now, from_statuses=("final",)):
                continue
            reason = (f"label-error audit: {issue['question']} is {issue['given']!r}, the model suggests "
                      f"{issue['suggested']!r} (P(label) {issue['self_confidence']:.2f}, rank {issue['rank']})")
            records.insert_event(conn, project_id, "item.needs_review", {
                "item_id": issue["item_id"], "status": "needs_review", "by": "model_audit", "reason": reason}, now)
            sent.append(issue["item_id"])
    return {"sent": sent, "skipped": sorted(set(item_ids) - set(sent))}
