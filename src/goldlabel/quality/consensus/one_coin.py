"""Consensus helpers every kind shares: one-coin log-odds weights and skill rows."""

from __future__ import annotations

from typing import Any, cast

import numpy as np


def logit_weight(p: Any) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 0.01, 0.99)
    return cast("np.ndarray", np.log(p) - np.log1p(-p))


def broadcast_accuracy(accuracy: Any, n: int) -> np.ndarray:
    acc = np.asarray(accuracy, dtype=np.float64)
    return np.broadcast_to(acc, (n,)).copy() if acc.ndim == 0 else acc


def skill_rows(annotator_ids: np.ndarray, accuracy: np.ndarray, annotator: np.ndarray,
                method: str, now: int) -> list[dict[str, Any]]:
    counts = np.bincount(annotator, minlength=len(annotator_ids))
    return [{"annotator_id": int(a), "accuracy": float(s), "accuracy_low": None, "accuracy_high": None,
             "confusion": None, "n_answers": int(c), "method": method, "updated_at": now}
            for a, s, c in zip(annotator_ids.tolist(), np.asarray(accuracy).tolist(), counts.tolist())]

