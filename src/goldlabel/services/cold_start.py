"""The project's pooled knowledge of its annotators, used per answer where no skill of theirs
is known yet (before a project's first re-fit, and for every annotator the re-fit has not
seen): what an unknown annotator is assumed to be.

Without it every unknown annotator was the server's ``default_annotator_accuracy`` (0.7), a
guess, so three agreeing answers on a two-label question gave P = 0.927 and went to review
until the background re-fit had learned skills. Here the guess is the prior and the project's
own answers are the evidence (library :mod:`goldlabel.quality.pooled`):

* choice, multi_choice (each label a yes/no), text: a one-coin accuracy from how often two
  answers on the same item agree, with the gold record of the project's annotators, shrunk
  toward the default accuracy with the weight of ``skill_prior_answers`` answers;
* ranking, spans, boxes: the gold record alone, shrunk the same way;
* rating: the prior on the answers' noise sd: the tolerance (with the same weight) pooled with
  the within-item spread of the project's ratings.

Cost: one read of the project's newest ``SAMPLE_ANSWERS`` answers (and sums over its
annotators' records and members), made inside a submit and kept by the process; it is made
again after a tenth of the sample's size in further decisions of this process (every decision
while the project has under 20 answers, every 200 at most) or after ``MAX_AGE_S``. A read is
nearly all decoding the answers' JSON, hence a sample of 2,000: a fraction of a millisecond a
submit on average, outside the 99th percentile (measured: docs/benchmarks.md, "Numbers behind the code").
TODO(#12): keep running sums instead. The PostgreSQL merged submit
reads it with one more statement (queue_pg.pooled_sample) when it is due.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from goldlabel.quality.consensus import rating_tolerance
from goldlabel.quality.pooled import (
    agreement_accuracy,
    pairwise_agreement,
    rating_noise,
    shrink_accuracy,
)
from goldlabel.services.context import Context
from goldlabel.storage import quality as quality_store
from goldlabel.storage.handles import Connection

SAMPLE_ANSWERS = 2000
# The knowledge is read again after this share of the sample's size in decisions.
REFRESH_SHARE = 0.1
# Pooled accuracies stay inside these bounds: a one-coin vote weight needs p above chance,
# and no pooled estimate may make unknown annotators certain.
MAX_ACCURACY = 0.99
# And after this many seconds whatever the count: it also holds the project's number of eligible
# annotators, which another process may change (a change through this process drops it at once).
MAX_AGE_S = 30.0
_SPACE = re.compile(r"\s+")


@dataclass
class Pooled:
    """Per question: ``accuracy`` (unknown annotator's one-coin accuracy) and, for rating
    questions, ``rating_sd`` (prior noise sd). ``due_in``: decisions left before a re-read."""

    accuracy: dict[str, float] = field(default_factory=dict)
    rating_sd: dict[str, float] = field(default_factory=dict)
    due_in: int = 0
    schema_key: tuple[int, int] = (0, 0)
    # Members with the annotator role not suspended (None: not read): when an item's answers
    # reach it, no eligible annotator is left for it (domain.stopping.settle_status).
    eligible_annotators: int | None = None
    read_at: float = 0.0


def is_fresh(ctx: Context, project: dict) -> bool:
    """Whether the process holds the project's knowledge and it is not due for a re-read."""
    entry = ctx.pooled.get(project["id"])
    return (entry is not None and entry.due_in > 0 and entry.schema_key == (project["id"], project["updated_at"])
            and time.monotonic() - entry.read_at < MAX_AGE_S)


def forget(ctx: Context, project_id: int) -> None:
    """Drop the project's knowledge (its members or their standing changed): read it again."""
    ctx.pooled.pop(project_id, None)


def knowledge(ctx: Context, conn: Connection | None, project: dict) -> Pooled | None:
    """The project's pooled knowledge for one decision: read again when due and ``conn`` is
    given; None when it is due and there is no connection (callers then use the defaults)."""
    entry = ctx.pooled.get(project["id"])
    if not is_fresh(ctx, project):
        if conn is None:
            return entry
        entry = compute(ctx, conn, project)
        ctx.pooled[project["id"]] = entry
    entry.due_in -= 1
    return entry


def compute(ctx: Context, conn: Connection, project: dict) -> Pooled:
    """Read the sample and the gold record and estimate every question's knowledge."""
    rows = quality_store.fetch_recent_answer_values(conn, project["id"], SAMPLE_ANSWERS)
    n_gold, n_gold_correct = quality_store.fetch_gold_totals(conn, project["id"])
    n_eligible = quality_store.count_eligible_annotators(conn, project["id"])
    return estimate(ctx, project, rows, n_gold, n_gold_correct, n_eligible)


def remember(ctx: Context, project: dict, pooled: Pooled) -> None:
    """Keep ``pooled`` as the project's knowledge (the merged submit read it itself)."""
    ctx.pooled[project["id"]] = pooled


def estimate(ctx: Context, project: dict, rows: list[tuple[int, dict]], n_gold: int,
             n_gold_correct: int, n_eligible: int | None = None) -> Pooled:
    """Every question's knowledge from the sampled answers (newest first) and the gold record."""
    schema = ctx.get_schema(project)
    settings = project.get("settings") or {}
    prior = ctx.settings.default_annotator_accuracy
    weight = ctx.settings.skill_prior_answers
    out = Pooled(due_in=max(1, int(len(rows) * REFRESH_SHARE)), schema_key=(project["id"], project["updated_at"]),
                 eligible_annotators=n_eligible, read_at=time.monotonic())
    for q in schema.questions:
        if q.kind == "rating":
            item, x = _column(rows, q.name, lambda v: float(v) if isinstance(v, (int, float)) else None)
            ss, dof = rating_noise(item, x)
            tol = rating_tolerance(q, settings)
            # The tolerance is the prior noise sd, with the weight of ``skill_prior_answers``
            # observations, as the accuracies' prior has.
            out.rating_sd[q.name] = math.sqrt((weight * tol * tol + ss) / (weight + dof)) if weight + dof > 0 else tol
            continue
        estimate, evidence, floor = prior, 0.0, 0.51
        if q.kind == "choice":
            labels = {label: i for i, label in enumerate(q.labels)}
            item, code = _column(rows, q.name, labels.get)
            estimate, evidence = _agreement(item, code, len(labels), prior)
            floor = 1.0 / len(labels) + 0.01
        elif q.kind == "text":
            item, code = _column(rows, q.name, _TextCoder())
            estimate, evidence = _agreement(item, code, None, prior)
        elif q.kind == "multi_choice":
            estimate, evidence = _multi_choice_agreement(rows, q.name, list(q.labels), prior)
        accuracy = shrink_accuracy(estimate, evidence, prior, weight, n_gold_correct, n_gold)
        out.accuracy[q.name] = float(min(max(accuracy, floor), MAX_ACCURACY))
    return out


class _TextCoder:
    """Codes text answers: equal after trimming, case folding and collapsing spaces, equal code."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}

    def __call__(self, value: Any) -> int | None:
        if not isinstance(value, str):
            return None
        return self.codes.setdefault(_SPACE.sub(" ", value.strip().casefold()), len(self.codes))


def _column(rows: list[tuple[int, dict]], name: str, code_of: Any) -> tuple[np.ndarray, np.ndarray]:
    """(item ids, codes) of the sampled answers to one question that ``code_of`` can code."""
    items, codes = [], []
    for item_id, value in rows:
        v = (value or {}).get(name)
        c = None if v is None else code_of(v)
        if c is not None:
            items.append(item_id)
            codes.append(c)
    return np.asarray(items, np.int64), np.asarray(codes)


def _agreement(item: np.ndarray, code: np.ndarray, n_classes: int | None, prior: float) -> tuple[float, float]:
    """(one-coin accuracy from agreement, observations behind it); the prior with no pairs."""
    agreeing, pairs, evidence = pairwise_agreement(item, code.astype(np.int64))
    if pairs == 0:
        return prior, 0.0
    return agreement_accuracy(agreeing / pairs, n_classes), evidence


def _multi_choice_agreement(rows: list[tuple[int, dict]], name: str, labels: list[str],
                            prior: float) -> tuple[float, float]:
    """Each label is a yes/no question on every item (ticked or not): pooled over labels."""
    index = {label: i for i, label in enumerate(labels)}
    items, ticks = [], []
    for item_id, value in rows:
        v = (value or {}).get(name)
        if isinstance(v, list):
            row = np.zeros(len(labels), np.int64)
            row[[index[x] for x in v if x in index]] = 1
            items.append(item_id)
            ticks.append(row)
    if not items:
        return prior, 0.0
    n = len(labels)
    item = (np.repeat(np.asarray(items, np.int64), n) * n + np.tile(np.arange(n), len(items)))
    agreeing, pairs, evidence = pairwise_agreement(item, np.concatenate(ticks))
    if pairs == 0:
        return prior, 0.0
    # Each answer's n labels are n observations of the same annotator: count the answers once.
    return agreement_accuracy(agreeing / pairs, 2), evidence / n
