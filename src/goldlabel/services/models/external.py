"""An external model (setting ``external_model``): its predictions for the open items, asked
over its protocol in batches, written beside the project model's (``predictor``) or in their
place (``annotator``)."""

from __future__ import annotations

import time

from goldlabel.services import external_models
from goldlabel.services.context import Context
from goldlabel.services.models.calibration import in_slice
from goldlabel.storage import models as model_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx

#: seconds a pass spends asking the external model (then the next pass goes on)
EXTERNAL_BUDGET_S = 20.0


def external_version(settings: dict) -> str:
    """The ``model_version`` of the external model's predictions: under the project model's
    prefix when it is the annotator (the consensus, the re-fit and active learning read those)."""
    name = "external:" + settings["external_model"]
    return model_store.MODEL_PREFIX + name if settings["external_role"] == "annotator" else name


def ask_external_model(ctx: Context, pid: int, question, settings: dict) -> tuple[int, str | None]:
    """Ask the external model for the open items it has not predicted yet, ``external_batch`` at
    a time, for up to EXTERNAL_BUDGET_S seconds; the calibration slice and audits are never sent
    (no model output there). Returns (predictions written, error or None). A call that fails
    (after its retries), times out or answers malformed ends the pass's asking: those items stay
    with the humans and the next pass asks again; predictions it gave for other items are kept."""
    from goldlabel.models.external import MalformedAnswer, build_request, parse_answer

    target, version = settings["external_model"], external_version(settings)
    labels = list(question.labels)
    deadline = time.monotonic() + EXTERNAL_BUDGET_S
    after, done = 0, 0
    while time.monotonic() < deadline:
        with read_tx(ctx.engine) as conn:
            rows = model_store.items_for_external(conn, pid, version, after, settings["external_batch"] * 4)
            if not rows:
                return done, None
            after = rows[-1][0]
            sliced = in_slice(ctx, [r[0] for r in rows], settings)
            audits = model_store.audit_item_ids(conn, pid, [r[0] for r in rows])
        rows = [r for r, s in zip(rows, sliced.tolist()) if not s and r[0] not in audits]
        for start in range(0, len(rows), settings["external_batch"]):
            batch = rows[start:start + settings["external_batch"]]
            request = build_request(pid, question.name, labels, batch)
            try:
                parsed = parse_answer(external_models.ask(ctx, target, request), [r[0] for r in batch], labels)
            except (external_models.ExternalModelError, MalformedAnswer) as exc:
                return done, f"external model {target}: {exc}"
            now = now_ms()
            out = [{"item_id": i, "model_version": version, "value": {question.name: label},
                    "score": round(score, 6), "created_at": now} for i, (label, score) in parsed.predictions.items()]
            with write_tx(ctx.engine) as conn:
                if settings["external_role"] == "annotator":
                    model_store.replace_model_predictions(conn, pid, out)
                else:
                    model_store.replace_predictions_of(conn, pid, version, out)
            done += len(out)
            if parsed.problems:
                more = f" (and {len(parsed.problems) - 3} more)" if len(parsed.problems) > 3 else ""
                return done, (f"external model {target}: malformed predictions: "
                              f"{'; '.join(parsed.problems[:3])}{more}")
    return done, None
