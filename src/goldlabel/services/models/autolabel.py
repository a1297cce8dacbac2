"""Auto-labeling: items the current version scores above its calibrated threshold become final
(consensus source ``auto``), a random ``audit_fraction`` of them staying with the humans as
audits; finished audits are checked against the target, and a failing bound turns auto-labeling
off. With ``review_calibration_slice``, final calibration-slice items go to review after each
training run, so the threshold is chosen on reviewed labels."""

from __future__ import annotations

import numpy as np

from goldlabel.services.context import Context
from goldlabel.services.models.calibration import in_slice
from goldlabel.storage import consensus_events as records
from goldlabel.storage import items as item_store
from goldlabel.storage import models as model_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx

AUTO_BATCH = 500


def send_slice_to_review(ctx: Context, pid: int, labeled: list, n_labels: int, settings: dict) -> int:
    """review_calibration_slice: the calibration-slice items among ``labeled`` (the training
    run's final labels) whose label is the crowd's consensus go to review (``needs_review``, the
    review queue every reviewer works, an ``item.needs_review`` event with the reason). Accepted
    or fixed there, their label has source ``review`` and counts in the next bound. Gold items
    are never sent (their gold answer is the reference). Run after each training, so an item is
    sent at most ``retrain_every`` final labels after it became final. Returns how many."""
    ids = [r[0] for r in labeled if r[3] == "consensus"]
    if not ids:
        return 0
    wanted = [i for i, s in zip(ids, in_slice(ctx, ids, settings).tolist()) if s]
    if not wanted:
        return 0
    now = now_ms()
    reason = ("calibration slice: the auto-label threshold is chosen on reviewed slice labels only "
              "(setting review_calibration_slice)")
    with write_tx(ctx.engine) as conn:
        # gold items never: a review refuses them, so one sent would wait forever
        sent = item_store.send_to_review(conn, pid, wanted, now, from_statuses=("final",), gold=False)
        if sent:
            records.insert_events(conn, [{"project_id": pid, "kind": "item.needs_review", "created_at": now,
                                          "payload": {"item_id": i, "status": "needs_review",
                                                      "by": "calibration_slice", "reason": reason}}
                                         for i in sent])
            # they left the final labels; their reviewed labels count as new ones when they return
            model_store.update_state(conn, pid, labels_at_train=max(0, n_labels - len(sent)))
    return len(sent)


def auto_label(ctx: Context, pid: int, question, version: dict, settings: dict) -> int:
    """Make final the open items ``version`` scores above its threshold, AUTO_BATCH at a time, an
    ``audit_fraction`` of them left to the humans as audits; returns how many became final."""
    from goldlabel.models import audit_mask

    threshold = version["threshold"]["threshold"]
    name = model_store.MODEL_PREFIX + version["version"]
    rng = np.random.default_rng()
    done = 0
    while True:
        with read_tx(ctx.engine) as conn:
            candidates = model_store.fetch_auto_label_candidates(conn, pid, name, threshold, AUTO_BATCH)
        if not candidates:
            return done
        # a slice item has no prediction (write_predictions); one written before the slice
        # existed is dropped here, never auto-labeled
        sliced = in_slice(ctx, [c[0] for c in candidates], settings)
        if sliced.any():
            with write_tx(ctx.engine) as conn:
                model_store.delete_model_predictions(conn, [c[0] for c, s in zip(candidates, sliced) if s])
            candidates = [c for c, s in zip(candidates, sliced.tolist()) if not s]
            if not candidates:
                continue
        audits = audit_mask(len(candidates), settings["audit_fraction"], rng)
        now = now_ms()
        with write_tx(ctx.engine) as conn:
            rows, events = [], []
            for (item_id, value, score), audit in zip(candidates, audits.tolist()):
                label = (value or {}).get(question.name)
                if audit:  # stays with the humans, without the model's output; compared with their label
                    model_store.delete_model_predictions(conn, [item_id])
                    rows.append({"item_id": item_id, "project_id": pid, "version_id": version["id"],
                                 "question": question.name, "label": label, "score": score, "audit": True,
                                 "created_at": now})
                    continue
                if not model_store.finalize_auto(conn, item_id, now):
                    continue  # leased or answered meanwhile: the humans have it
                records.set_reviewed_consensus(conn, item_id, pid, [{
                    "question": question.name, "value": label, "confidence": score, "method": "model",
                    "status": "final", "contributions": {"model_version": name}, "updated_at": now,
                    "source": "auto"}])
                rows.append({"item_id": item_id, "project_id": pid, "version_id": version["id"],
                             "question": question.name, "label": label, "score": score, "audit": False,
                             "created_at": now})
                events.append({"project_id": pid, "kind": "item.final", "created_at": now,
                               "payload": {"item_id": item_id, "status": "final", "by": "auto"}})
                done += 1
            model_store.insert_auto_labels(conn, rows)
            if events:
                records.insert_events(conn, events)
            if not rows:  # every candidate was taken by the queue meanwhile: try again next pass
                return done


def check_finished_audits(ctx: Context, pid: int, settings: dict, state: dict) -> int:
    """Record the audits the humans finished (their label against the model's); with
    auto-labeling on, turn it off when the bound on the audits since it was turned on says the
    auto-labels miss the target. Returns how many audits were checked."""
    from goldlabel.models import check_audits

    with read_tx(ctx.engine) as conn:
        finished = model_store.pending_audits(conn, pid)
    if not finished:
        return 0
    now = now_ms()
    with write_tx(ctx.engine) as conn:
        model_store.set_audit_results(conn, [(i, label == value) for i, _, label, value in finished])
        if not settings["auto_label"]:
            return len(finished)
        outcomes = model_store.audit_outcomes(conn, pid, state.get("auto_label_since"))
        check = check_audits(np.array(outcomes, dtype=bool), settings["target"], settings["delta"])
        if not check.keep_on:
            reason = (f"audits: {check.correct} of {check.n_audits} auto-labels right ({check.accuracy:.3f}); "
                      f"at delta {settings['delta']} their accuracy is below the target {settings['target']} "
                      f"(upper bound {check.upper:.3f})")
            model_store.update_state(conn, pid, settings={**settings, "auto_label": False},
                                     auto_label_off_reason=reason, updated_at=now)
            records.insert_event(conn, pid, "model.auto_label_off", {
                "reason": reason, "audits": check.n_audits, "correct": check.correct}, now)
    return len(finished)
