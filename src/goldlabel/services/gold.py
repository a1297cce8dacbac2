"""Gold answers scored after the response (issue 17, item 2).

Scoring a gold answer (:func:`goldlabel.services.consensus.score_gold`: its pass or fail,
the annotator's counts, qualification and suspension) inside the submit made a gold submit
measurably slower than any other (PostgreSQL: 9.5 ms against 3.4 ms; one cutoff told them apart
99.6% of the time), so an annotator could time their way to the gold items. So the submit
queues the answer for scoring (``gold_pending``, in the answer's own transaction: a crash
between the answer and the scoring loses nothing) and otherwise does the work of a normal submit
(the item's consensus read, decided and written: services/consensus.py ``_after_gold_answer``);
the scoring runs after the response:

- in a serving process, by its :class:`GoldScorer` (a :class:`BackgroundLoop`, as the other
  background jobs): woken by each gold submit once it has
  committed, it waits a moment (``WAKE_DELAY_S``: the scoring must not compete with the
  response for the CPU, nor land on the annotator's next request) and scores every waiting
  answer, each in its own write transaction. It also sweeps every ``SWEEP_S`` (and once at
  start), for answers a process that crashed left waiting. Any number of scorers share one
  database: each claims its answers under lock (PostgreSQL: ``SKIP LOCKED``).
- without a scorer (the CLI, a test calling the services or the app in process), the submit
  scores its own gold answer once it has committed, before it returns.

Suspension and qualification follow within ``WAKE_DELAY_S`` of the answer (a crash: at the
restart or the next sweep), where they used to come with the response.
"""

from __future__ import annotations

import logging
import secrets

from goldlabel.services import consensus
from goldlabel.services.background import BackgroundLoop
from goldlabel.services.context import Context
from goldlabel.storage import gold as gold_store
from goldlabel.storage import projects as project_store
from goldlabel.storage.engine import now_ms, write_tx

log = logging.getLogger(__name__)

# After a gold submit, how long the scorer waits before it scores (drawn in this range).
WAKE_DELAY_S = (0.005, 0.05)
# How often a scorer looks for answers left waiting by a process that crashed.
SWEEP_S = 5.0
_RANDOM = secrets.SystemRandom()


def score_pending(ctx: Context, answer_id: int | None = None, limit: int | None = None) -> int:
    """Score waiting gold answers, oldest first, each in its own write transaction (claimed,
    scored and taken off the queue together: a crash puts it back); ``answer_id``: that answer
    only, if it is still waiting. Returns how many were taken."""
    done = 0
    while limit is None or done < limit:
        with write_tx(ctx.engine) as conn:
            answer = gold_store.claim_pending(conn, answer_id)
            if answer is None:
                break
            project = project_store.fetch_project(conn, answer["project_id"], deleted=True)
            if project is not None and answer["is_gold"]:
                consensus.score_gold(ctx, conn, project, answer, now_ms())
        done += 1
        if answer_id is not None:
            break
    return done


def wake_scorer(ctx: Context) -> bool:
    """Wake the process's scorer; False when it has none running."""
    scorer = ctx.gold_scorer
    if scorer is None or not scorer.is_running:
        return False
    scorer.wake()
    return True


def follow_up(ctx: Context, answer_id: int) -> None:
    """After a gold answer's commit: wake the process's scorer, or, without one, score it now."""
    if not wake_scorer(ctx):
        score_pending(ctx, answer_id)


class GoldScorer(BackgroundLoop):
    """Scores waiting gold answers in a serving process (see the module's doc): a
    :class:`~goldlabel.services.background.BackgroundLoop` that sweeps at start and every
    ``sweep_s``, and is woken by each gold submit (``wake``), then scores after a random
    ``delay_s``."""

    thread_name = "goldlabel-gold"
    failure = "scoring gold answers failed"  # the answers stay queued for the next round
    jitter = 0.0  # each answer is claimed under lock: scorers of several processes need no spread
    run_at_start = True  # what a crash left waiting

    def __init__(self, ctx: Context, sweep_s: float = SWEEP_S,
                 delay_s: tuple[float, float] = WAKE_DELAY_S) -> None:
        super().__init__(sweep_s)
        self.ctx = ctx
        self.delay_s = delay_s

    @property
    def sweep_s(self) -> float:
        return self.interval_s

    def start(self) -> None:
        self.ctx.gold_scorer = self
        super().start()

    def stop(self, *, drain: bool = True) -> None:
        """Stop the thread; ``drain``: then score what is still waiting (else the next scorer
        to start does)."""
        super().stop()
        if self.ctx.gold_scorer is self:
            self.ctx.gold_scorer = None
        if drain:
            try:
                self.run_once()
            except Exception:  # the answers stay queued for the next scorer to start
                log.exception(self.failure)

    def wake_delay_s(self) -> float:
        # Not at once: the scoring must neither compete with the response for the CPU nor land
        # on the annotator's next request; drawn, so that its timing tells nothing either.
        return _RANDOM.uniform(*self.delay_s)

    def run_once(self) -> int:
        return score_pending(self.ctx)
