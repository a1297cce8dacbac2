"""crowd-kit's evaluation helpers (``crowdkit.aggregation.utils``), on pandas frames.

pandas is imported by the caller's frames; this module needs no pandas of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["evaluate", "evaluate_equal", "evaluate_in", "get_accuracy"]


def evaluate_equal(row: Any) -> int:
    """1 when a merged row's ``label_pred`` equals its ``label_true``."""
    return int(row["label_pred"] == row["label_true"])


def evaluate_in(row: Any) -> int:
    """1 when a merged row's ``label_pred`` is one of its ``label_true`` values."""
    return int(row["label_pred"] in row["label_true"])


def evaluate(df_true: Any, df_pred: Any, evaluate_func: Callable[[Any], int] = evaluate_in) -> float:
    """Mean of ``evaluate_func`` over tasks: both frames have a ``label`` column and the
    task as index or column; every true task must have a prediction."""
    merged = df_true.merge(df_pred, on="task", suffixes=("_true", "_pred"))
    if len(merged) != len(df_true):
        raise ValueError(f"predictions cover {len(merged)} of {len(df_true)} tasks")
    return float(np.mean([evaluate_func(row) for _, row in merged.iterrows()])) if len(merged) else float("nan")


def get_accuracy(data: Any, true_labels: Any, by: str | None = None) -> Any:
    """Share of answers equal to ``true_labels`` (a Series indexed by task), over all answers
    on tasks with a true label, or per ``by`` column (e.g. ``"worker"``). An optional
    ``weight`` column weights answers; duplicate (task, worker, label) rows count once."""
    import pandas as pd

    columns = ["task", "worker", "label"] + (["weight"] if "weight" in data.columns else [])
    frame = data[columns].copy()
    truth = true_labels.reindex(frame["task"].to_numpy()).to_numpy()
    known = ~pd.isna(truth)
    frame = frame.loc[known]
    if "weight" not in frame.columns:
        frame["weight"] = 1.0
    frame["score"] = frame["weight"] * (frame["label"].to_numpy() == truth[known])
    frame = frame.sort_values("score").drop_duplicates(["task", "worker", "label"], keep="last")
    if by is not None:
        groups = frame.groupby(by)
        return groups["score"].sum() / groups["weight"].sum()
    return frame["score"].sum() / frame["weight"].sum()

