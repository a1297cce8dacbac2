"""Aggregate a CSV of answers into one label per item: the body of `goldlabel aggregate`."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .answers import load_csv, load_gold_csv

__all__ = ["aggregate_file"]


def aggregate_file(
    answers_csv: str | Path,
    output_csv: str | Path,
    method: str | None = None,
    gold_csv: str | Path | None = None,
    on_step: Callable[[str], None] | None = None,
) -> dict[str, int | str]:
    """Read ``answers_csv`` (columns item, annotator or worker, label), infer each item's
    label with ``method`` (a name in :data:`goldlabel.quality.METHODS`; the recommended
    default when None) and write ``output_csv`` with columns item,label,confidence, one row
    per item. ``gold_csv`` (columns item,label) clamps known items and teaches skills.
    Returns a summary: method, items, answers, annotators. ``on_step(text)`` is told as each
    step (read, fit, write) starts, for a caller that shows progress.
    """
    step = on_step or (lambda _text: None)
    from . import DEFAULT_METHOD, METHODS  # the registry imports every estimator

    name = (method or DEFAULT_METHOD).lower()
    if name not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of: {', '.join(sorted(METHODS))}")
    step(f"reading {Path(answers_csv).name}")
    answers = load_csv(answers_csv)
    gold = load_gold_csv(gold_csv) if gold_csv is not None else None
    step(f"fitting {name} on {answers.n_answers:,} answers by {answers.n_annotators:,} annotators "
         f"on {answers.n_items:,} items")
    model = METHODS[name]().fit(answers, gold=gold)
    step(f"writing {output_csv}")
    probas = np.asarray(model.probas_)
    codes = probas.argmax(axis=1)
    confidence = probas[np.arange(len(codes)), codes]
    output = Path(output_csv)
    with output.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item", "label", "confidence"])
        writer.writerows(zip(answers.item_ids.tolist(), answers.label_ids[codes].tolist(),
                             (f"{c:.6f}" for c in confidence)))
    return {"method": name, "items": answers.n_items, "answers": answers.n_answers,
            "annotators": answers.n_annotators}
