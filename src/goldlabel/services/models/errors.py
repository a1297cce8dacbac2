"""A failure of the embedder or the model: raised as :class:`ModelError`, recorded on the
project's model state (console, API) and in the event log; the items stay with the humans."""

from __future__ import annotations

from goldlabel.services.context import Context
from goldlabel.storage import consensus_events as records
from goldlabel.storage import models as model_store
from goldlabel.storage.engine import now_ms, write_tx


class ModelError(Exception):
    """An embedder or a model failed: recorded, the items stay with the humans."""


def record_error(ctx: Context, project_id: int, message: str) -> None:
    """Record a failure on the project's model state (one ``model.failed`` event per new
    message, not per pass)."""
    now = now_ms()
    message = message[:2000]
    with write_tx(ctx.engine) as conn:
        state = model_store.fetch_state(conn, project_id)
        if state and state.get("last_error") != message:  # one event per new error, not per pass
            records.insert_event(conn, project_id, "model.failed", {"error": message}, now)
        model_store.update_state(conn, project_id, last_error=message, last_error_at=now)
