"""Pre-label outcomes: for each new answer, whether the model's pre-label was shown and kept,
and on gold items whether the answer and the pre-label were right (read back by
``views.prelabel_view``)."""

from __future__ import annotations

from goldlabel.services.context import Context
from goldlabel.services.models.predictions import PREDICT_BATCH
from goldlabel.storage import models as model_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx


def record_prelabels(ctx: Context, project: dict, question, state: dict) -> int:
    """Record the pre-label outcome of every answer since the last pass (model_state's
    ``prelabel_cursor``): shown when the project shows predictions and the item's model
    prediction was written before the answer (a prediction is replaced, never updated, so it is
    the one the annotator saw); kept when the answer equals it; on gold items whether the answer
    and the pre-label were right. Returns how many were recorded."""
    pid = project["id"]
    showing = bool(project["settings"].get("show_predictions"))
    cursor, done = int(state.get("prelabel_cursor") or 0), 0
    while True:
        with read_tx(ctx.engine) as conn:
            rows = model_store.answers_for_prelabels(conn, pid, question.name, cursor, PREDICT_BATCH)
        if not rows:
            return done
        now = now_ms()
        out = []
        for answer_id, annotator_id, label, answered_at, is_gold, pre, pre_at, gold in rows:
            shown = showing and pre is not None and pre_at is not None and pre_at <= answered_at
            out.append({"answer_id": answer_id, "project_id": pid, "annotator_id": annotator_id, "shown": shown,
                        "kept": (label == pre) if shown else None, "is_gold": bool(is_gold),
                        "correct": (label == gold) if is_gold and gold is not None else None,
                        "prelabel_correct": (pre == gold) if shown and is_gold and gold is not None else None,
                        "created_at": now})
        cursor = rows[-1][0]
        with write_tx(ctx.engine) as conn:
            model_store.insert_prelabel_outcomes(conn, out)
            model_store.update_state(conn, pid, prelabel_cursor=cursor)
        done += len(out)
