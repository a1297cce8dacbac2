"""Active learning: queue priorities of the open embedded items from the project's policy
(``active_learning``), the calibration slice left in the queue's own order."""

from __future__ import annotations

import numpy as np

from goldlabel.services.context import Context
from goldlabel.services.models.calibration import in_slice
from goldlabel.services.models.predictions import PREDICT_BATCH
from goldlabel.storage import models as model_store
from goldlabel.storage.engine import read_tx, write_tx

#: items humans answered whose vectors the diversity step treats as covered
LABELED_SAMPLE = 2000


def prioritize(ctx: Context, pid: int, question, settings: dict, has_model: bool) -> int:
    """Queue priorities of the open embedded items from the project's active-learning policy
    (goldlabel.models.active_priorities), written where they changed; returns how many. The
    lease only reads the column (its index orders by priority first), so none of this is on the
    annotate path. Uncertainty is the margin of the combined posterior: the consensus where
    humans answered (with the model's vote when it is an annotator), else the model's score;
    an item with neither counts as fully uncertain. Before the first model: a diverse cold start.

    The calibration slice is left out: its items keep the priority they have (0 unless a manager
    set one), and the model-ranked items get priorities below zero (the policy's order, shifted
    by ``PRIORITY_LEVELS + active_batch + 1``), so humans take the slice's items first, in the
    queue's own order, whatever the model thinks of them."""
    from goldlabel.models import PRIORITY_LEVELS, active_priorities, margin_uncertainty, top_probas

    n_classes = len(question.labels)
    parts = []
    with read_tx(ctx.engine) as conn:
        for rows in model_store.iter_priority_inputs(conn, pid, question.name):
            parts.append(np.array([(r[0], r[1], r[2], np.nan if r[3] is None else r[3],
                                    np.nan if r[4] is None else r[4]) for r in rows], dtype=np.float64))
        if not parts:
            return 0
        table = np.concatenate(parts)
        table = table[~in_slice(ctx, table[:, 0].astype(np.int64), settings)]
        if not len(table):
            return 0
        ids, old = table[:, 0].astype(np.int64), table[:, 1].astype(np.int64)
        top = np.where((table[:, 2] > 0) & ~np.isnan(table[:, 3]), table[:, 3], table[:, 4])
        uncertainty = None
        if has_model:
            uncertainty = np.where(np.isnan(top), 1.0, margin_uncertainty(top_probas(np.nan_to_num(top), n_classes)))

        def vectors(index: np.ndarray) -> np.ndarray:
            wanted = ids[index].tolist()
            got, vecs = model_store.fetch_vectors(conn, wanted)
            at = {item_id: j for j, item_id in enumerate(got)}
            return vecs[[at[i] for i in wanted]]

        _, labeled = model_store.fetch_vectors(conn, model_store.sample_answered_ids(conn, pid, LABELED_SAMPLE))
        new = active_priorities(uncertainty, len(ids), vectors, policy=settings["active_learning"],
                                batch=settings["active_batch"], labeled=labeled if len(labeled) else None)
        new = new - (PRIORITY_LEVELS + settings["active_batch"] + 1)
    changed = np.flatnonzero(new != old)
    done = 0
    for start in range(0, len(changed), PREDICT_BATCH):
        chunk = changed[start:start + PREDICT_BATCH]
        with write_tx(ctx.engine) as conn:
            done += model_store.set_priorities(conn, pid, list(zip(ids[chunk].tolist(), new[chunk].tolist())))
    return done
