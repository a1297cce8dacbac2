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
annotators' records and members), made inside a submit and kept by the process with, per
question, the running sums the estimates rest on (agreeing pairs, pairs and observations per
item; the ratings' within-item sums of squares). Each answer this process writes then enters the
sums and the oldest leaves them (:func:`observe`, O(1) per question): the estimate follows every
answer without reading the sample again. The sample is read again after ``MAX_AGE_S`` (answers
other processes wrote, the gold record, the members), at every decision while it holds under
``SMALL_SAMPLE`` answers (cheap, and where each gold answer moves the estimate most), and when
the project or its members change. A read is nearly all decoding the answers' JSON: a fraction
of a millisecond a submit on average, outside the 99th percentile (measured: docs/benchmarks.md,
"Numbers behind the code"). The PostgreSQL merged submit reads it with one more statement
(queue_pg.pooled_sample) when it is due.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from goldlabel.quality.consensus import rating_tolerance
from goldlabel.quality.pooled import agreement_accuracy, shrink_accuracy
from goldlabel.services.context import Context
from goldlabel.storage import quality as quality_store
from goldlabel.storage.handles import Connection

SAMPLE_ANSWERS = 2000
# Below this many answers in the sample, every decision reads it again.
SMALL_SAMPLE = 20
# Pooled accuracies stay inside these bounds: a one-coin vote weight needs p above chance,
# and no pooled estimate may make unknown annotators certain.
MAX_ACCURACY = 0.99
# And after this many seconds whatever the count: it also holds the project's number of eligible
# annotators, which another process may change (a change through this process drops it at once).
MAX_AGE_S = 30.0
_SPACE = re.compile(r"\s+")
# An entry kept by running sums is due only by age (or a change that drops it).
_NOT_BY_COUNT = 1 << 62


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
    # The sampled answers and the running sums behind ``accuracy`` and ``rating_sd`` (None: an
    # entry made without them, which answers do not update), and the gold record read with them.
    window: Window | None = None
    gold: tuple[int, int] = (0, 0)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


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


def observe(ctx: Context, project: dict, item_id: int, value: dict) -> Any:
    """A new answer, before its decision: when the process holds the project's knowledge and it
    is not due for a read (a read would hold the answer), the answer enters the running sums,
    the oldest sampled answer leaves them, and the estimates follow. Returns what
    :func:`unobserve` takes out again if the answer is not written after all (None: nothing)."""
    entry = ctx.pooled.get(project["id"])
    if entry is None or entry.window is None or not is_fresh(ctx, project):
        return None
    with entry.lock:
        record = entry.window.add(item_id, value)
        _estimate_into(ctx, project, entry)
    return ctx, entry, project, record


def unobserve(observed: Any) -> None:
    """Take an answer :func:`observe` added out of the running sums (its write did not happen)."""
    if observed is None:
        return
    ctx, entry, project, record = observed
    with entry.lock:
        if entry.window.discard(record):
            _estimate_into(ctx, project, entry)


def remember(ctx: Context, project: dict, pooled: Pooled) -> None:
    """Keep ``pooled`` as the project's knowledge (the merged submit read it itself)."""
    ctx.pooled[project["id"]] = pooled


def estimate(ctx: Context, project: dict, rows: list[tuple[int, dict]], n_gold: int,
             n_gold_correct: int, n_eligible: int | None = None) -> Pooled:
    """Every question's knowledge from the sampled answers (newest first) and the gold record."""
    window = Window(ctx.get_schema(project).questions, SAMPLE_ANSWERS)
    for item_id, value in reversed(rows):
        window.add(item_id, value)
    out = Pooled(due_in=1 if len(rows) < SMALL_SAMPLE else _NOT_BY_COUNT,
                 schema_key=(project["id"], project["updated_at"]), eligible_annotators=n_eligible,
                 read_at=time.monotonic(), window=window, gold=(n_gold, n_gold_correct))
    _estimate_into(ctx, project, out)
    return out


def _estimate_into(ctx: Context, project: dict, out: Pooled) -> None:
    """``out``'s accuracies and rating sds from its window's sums (it has one) and its gold record."""
    settings = project.get("settings") or {}
    prior = ctx.settings.default_annotator_accuracy
    weight = ctx.settings.skill_prior_answers
    n_gold, n_gold_correct = out.gold
    for q in ctx.get_schema(project).questions:
        sums = out.window.sums.get(q.name)
        if q.kind == "rating":
            ss, dof = sums.noise() if isinstance(sums, _Spread) else (0.0, 0.0)
            tol = rating_tolerance(q, settings)
            # The tolerance is the prior noise sd, with the weight of ``skill_prior_answers``
            # observations, as the accuracies' prior has.
            out.rating_sd[q.name] = math.sqrt((weight * tol * tol + ss) / (weight + dof)) if weight + dof > 0 else tol
            continue
        estimate, evidence, floor = prior, 0.0, 0.51
        if isinstance(sums, _Pairs):
            if q.kind == "choice":
                estimate, evidence = sums.accuracy(len(q.labels), prior)
                floor = 1.0 / len(q.labels) + 0.01
            elif q.kind == "text":
                estimate, evidence = sums.accuracy(None, prior)
            elif q.kind == "multi_choice":
                # Each label is a yes/no question on every item (ticked or not); each answer's
                # n labels are n observations of the same annotator: count the answers once.
                estimate, evidence = sums.accuracy(2, prior)
                evidence /= len(q.labels)
        accuracy = shrink_accuracy(estimate, evidence, prior, weight, n_gold_correct, n_gold)
        out.accuracy[q.name] = float(min(max(accuracy, floor), MAX_ACCURACY))


class _Pairs:
    """Running ``quality.pooled.pairwise_agreement`` over answers coded per item: adding or
    removing one answer moves the agreeing pairs, the pairs and the observations by its item's
    and its cell's counts."""

    def __init__(self) -> None:
        self.per_item: Counter[Any] = Counter()
        self.per_cell: Counter[tuple[Any, Any]] = Counter()
        self.agreeing = self.pairs = self.effective = 0

    def add(self, item: Any, code: Any) -> None:
        n, c = self.per_item[item], self.per_cell[item, code]
        self.agreeing += c
        self.pairs += n
        self.effective += n >= 1
        self.per_item[item], self.per_cell[item, code] = n + 1, c + 1

    def remove(self, item: Any, code: Any) -> None:
        n, c = self.per_item[item] - 1, self.per_cell[item, code] - 1
        self.agreeing -= c
        self.pairs -= n
        self.effective -= n >= 1
        _set_or_drop(self.per_item, item, n)
        _set_or_drop(self.per_cell, (item, code), c)

    def accuracy(self, n_classes: int | None, prior: float) -> tuple[float, float]:
        """(one-coin accuracy from agreement, observations behind it); the prior with no pairs."""
        if self.pairs == 0:
            return prior, 0.0
        return agreement_accuracy(self.agreeing / self.pairs, n_classes), float(self.effective)


class _Spread:
    """Running ``quality.pooled.rating_noise``: per item the count, sum and sum of squares of
    its ratings, and their within-item sum of squares over all items."""

    def __init__(self) -> None:
        self.per_item: dict[Any, tuple[int, float, float]] = {}
        self.ss = 0.0
        self.dof = 0

    def _move(self, item: Any, x: float, sign: int) -> None:
        old, total, squares = self.per_item.get(item, (0, 0.0, 0.0))
        if old:
            self.ss -= squares - total * total / old
        n, total, squares = old + sign, total + sign * x, squares + sign * x * x
        if n:
            self.ss += squares - total * total / n
            self.per_item[item] = (n, total, squares)
        else:
            self.per_item.pop(item, None)
        self.dof += max(n - 1, 0) - max(old - 1, 0)

    def add(self, item: Any, x: float) -> None:
        self._move(item, x, 1)

    def remove(self, item: Any, x: float) -> None:
        self._move(item, x, -1)

    def noise(self) -> tuple[float, float]:
        """(within-item sum of squares, its degrees of freedom) over items with 2+ ratings."""
        return max(self.ss, 0.0), float(self.dof)


def _set_or_drop(counter: Counter, key: Any, n: int) -> None:
    if n:
        counter[key] = n
    else:
        del counter[key]


class Window:
    """The project's newest ``size`` answers, and per question the running sums its estimate
    rests on: an answer added enters them, the oldest beyond ``size`` leaves them."""

    def __init__(self, questions: Any, size: int) -> None:
        self.size = size
        self.answers: deque[tuple[int, dict]] = deque()
        self.sums: dict[str, _Pairs | _Spread] = {}
        self._coders: list[tuple[str, Any, Any]] = []
        for q in questions:
            if q.kind == "rating":
                self.sums[q.name] = _Spread()
                self._coders.append((q.name, _rating, None))
            elif q.kind in ("choice", "text", "multi_choice"):
                self.sums[q.name] = _Pairs()
                labels = list(q.labels) if q.kind != "text" else []
                code = {"choice": _choice_code, "text": _text_code, "multi_choice": _ticks}[q.kind]
                self._coders.append((q.name, code, labels))

    def add(self, item_id: int, value: dict) -> tuple[int, dict]:
        """Add an answer (the newest); returns its record, for :meth:`discard`."""
        record = (item_id, value)
        self.answers.append(record)
        self._move(item_id, value, add=True)
        if len(self.answers) > self.size:
            self._move(*self.answers.popleft(), add=False)
        return record

    def discard(self, record: tuple[int, dict]) -> bool:
        """Take out an answer :meth:`add` added (found by identity; False: it left already)."""
        for i in range(len(self.answers) - 1, -1, -1):
            if self.answers[i] is record:
                del self.answers[i]
                self._move(*record, add=False)
                return True
        return False

    def _move(self, item_id: int, value: dict, *, add: bool) -> None:
        for name, code, labels in self._coders:
            v = (value or {}).get(name)
            if v is None:
                continue
            sums = self.sums[name]
            for key, c in code(item_id, v, labels):
                (sums.add if add else sums.remove)(key, c)


def _choice_code(item_id: int, v: Any, labels: list[str]) -> list[tuple[Any, Any]]:
    return [(item_id, v)] if isinstance(v, str) and v in labels else []


def _text_code(item_id: int, v: Any, labels: list[str]) -> list[tuple[Any, Any]]:
    """Equal after trimming, case folding and collapsing spaces: equal code."""
    return [(item_id, _SPACE.sub(" ", v.strip().casefold()))] if isinstance(v, str) else []


def _ticks(item_id: int, v: Any, labels: list[str]) -> list[tuple[Any, Any]]:
    """Each label of a multi_choice answer: (item, label) answered ticked or not."""
    if not isinstance(v, list):
        return []
    ticked = set(v)
    return [((item_id, label), label in ticked) for label in labels]


def _rating(item_id: int, v: Any, labels: Any) -> list[tuple[Any, Any]]:
    return [(item_id, float(v))] if isinstance(v, (int, float)) else []
