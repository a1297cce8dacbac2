"""A model version's predictions: rebuilt from its stored weights and written as the items'
model predictions (pre-labels), never on the calibration slice or an audit."""

from __future__ import annotations

import numpy as np

from goldlabel.services.context import Context
from goldlabel.services.models.calibration import in_slice
from goldlabel.storage import models as model_store
from goldlabel.storage.engine import now_ms, write_tx

#: items per batch of predictions written (and of pre-label outcomes, of priorities)
PREDICT_BATCH = 5000


def load_params(version: dict | None):
    """The version's fitted model, rebuilt from its stored weights (no pickle;
    ``goldlabel.models.scaleout`` writes and reads that format)."""
    if not version or not version.get("params"):
        return None
    from goldlabel.models.scaleout import model_from_params

    return model_from_params(version["params"])


def write_predictions(ctx: Context, pid: int, version: dict, question, ids: list[int], probas: np.ndarray,
                      settings: dict) -> None:
    """The items' predictions of ``version`` (replacing earlier ones), except on the calibration
    slice and on audits: their human labels judge the model, so they get no model output at all
    (no pre-label to anchor on, no model vote in their consensus, never an auto-label)."""
    if settings["external_model"] and settings["external_role"] == "annotator":
        return  # the external model's predictions are the items' model predictions
    labels = list(question.labels)
    codes = probas.argmax(axis=1)
    scores = probas[np.arange(len(codes)), codes]
    now = now_ms()
    name = model_store.MODEL_PREFIX + version["version"]
    ids = [int(i) for i in ids]
    sliced = in_slice(ctx, ids, settings)
    with write_tx(ctx.engine) as conn:
        audits = model_store.audit_item_ids(conn, pid, ids)
        blind = [i for i, s in zip(ids, sliced.tolist()) if s or i in audits]
        model_store.delete_model_predictions(conn, blind)
        blind_set = set(blind)
        model_store.replace_model_predictions(conn, pid, [
            {"item_id": i, "model_version": name, "value": {question.name: labels[c]}, "score": round(float(s), 6),
             "created_at": now}
            for i, c, s in zip(ids, codes.tolist(), scores.tolist()) if i not in blind_set])
