"""services.background.BackgroundLoop: the wait, wake, stop and survive-a-failure loop that the
re-fit scheduler, the model worker, the purge sweeper, the webhook worker, the text indexer and
the gold scorer share."""

from __future__ import annotations

import logging
import random
import threading
import time

import pytest

from goldlabel.services.background import BackgroundLoop
from goldlabel.services.gold import GoldScorer
from goldlabel.services.items import PurgeSweeper, TextIndexer
from goldlabel.services.model_worker import ModelWorker
from goldlabel.services.refit import RefitScheduler
from goldlabel.services.webhooks import WebhookWorker


class Flaky(BackgroundLoop):
    """Fails its first round, then counts rounds; ``third`` is set at the third."""

    thread_name = "test-flaky"
    failure = "flaky round failed"

    def __init__(self, interval_s: float) -> None:
        super().__init__(interval_s)
        self.rounds = 0
        self.third = threading.Event()

    def run_once(self) -> int:
        self.rounds += 1
        if self.rounds == 1:
            raise RuntimeError("boom")
        if self.rounds == 3:
            self.third.set()
        return self.rounds


def test_a_failed_round_is_logged_and_the_loop_goes_on(caplog):
    loop = Flaky(0.01)
    with caplog.at_level(logging.ERROR, logger=__name__):
        loop.start()
        try:
            assert loop.third.wait(30), "the loop stopped after its failed round"
        finally:
            loop.stop()
    assert not loop._thread.is_alive()
    [record] = [r for r in caplog.records if r.getMessage() == "flaky round failed"]
    assert record.name == __name__  # the subclass's module logger
    assert record.exc_info is not None and str(record.exc_info[1]) == "boom"


def test_stop_cuts_a_long_wait_short():
    loop = Flaky(3600)
    loop.start()
    started = time.monotonic()
    loop.stop()
    assert not loop._thread.is_alive()
    assert time.monotonic() - started < 5
    assert loop.rounds == 0 and loop.stopping


def test_stop_before_start_is_harmless():
    loop = Flaky(1)
    loop.stop()
    assert loop.stopping and loop.native_id is None


@pytest.mark.parametrize("jitter", [0.0, 0.25])
def test_waits_are_drawn_within_the_jitter(jitter, monkeypatch):
    monkeypatch.setattr(Flaky, "jitter", jitter)
    waits = [Flaky(100).next_wait_s() for _ in range(200)]
    assert all(100 * (1 - jitter) <= w <= 100 * (1 + jitter) for w in waits)
    assert (max(waits) - min(waits) > 10) == (jitter > 0)  # jittered waits spread; plain ones do not


def test_waits_leave_the_global_random_state_alone():
    # A server's loops draw waits while the app (or Hypothesis, fuzzing it in-process) uses the
    # global generator: Hypothesis fails a draw during which another thread moved it.
    state = random.getstate()
    Flaky(1).next_wait_s()
    assert random.getstate() == state


def test_the_background_jobs_are_loops_with_their_own_threads():
    jobs = [RefitScheduler, ModelWorker, PurgeSweeper, WebhookWorker, TextIndexer, GoldScorer]
    assert all(issubclass(job, BackgroundLoop) for job in jobs)
    assert len({job.thread_name for job in jobs}) == len(jobs)
    assert all(job.failure for job in jobs)


class Woken(Flaky):
    """Counts rounds and records when each ran; waits ``delay`` after a wake."""

    def __init__(self, interval_s: float, delay: float = 0.0) -> None:
        super().__init__(interval_s)
        self.delay = delay
        self.ran_at: list[float] = []
        self.ran = threading.Event()

    def wake_delay_s(self) -> float:
        return self.delay

    def run_once(self) -> int:
        self.ran_at.append(time.monotonic())
        self.ran.set()
        return len(self.ran_at)


def test_wake_cuts_the_wait_short_after_the_wake_delay():
    loop = Woken(3600, delay=0.3)
    loop.start()
    try:
        assert loop.is_running
        woken_at = time.monotonic()
        loop.wake()
        assert loop.ran.wait(30), "a woken loop did not run its round"
        assert loop.ran_at[0] - woken_at >= 0.3  # not before its delay
        loop.ran.clear()
        loop.wake()
        assert loop.ran.wait(30) and len(loop.ran_at) == 2  # every wake runs a round
    finally:
        loop.stop()
    assert not loop.is_running and not loop._thread.is_alive()


def test_stop_cuts_a_wake_delay_short():
    loop = Woken(3600, delay=3600)
    loop.start()
    loop.wake()
    time.sleep(0.05)
    started = time.monotonic()
    loop.stop()
    assert time.monotonic() - started < 5 and loop.ran_at == []


def test_a_loop_may_run_a_round_at_start(monkeypatch):
    monkeypatch.setattr(Woken, "run_at_start", True)
    loop = Woken(3600)
    loop.start()
    try:
        assert loop.ran.wait(30), "run_at_start: no round before the first wait"
    finally:
        loop.stop()
    assert len(loop.ran_at) == 1
