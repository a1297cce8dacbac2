"""``BackgroundLoop``: the thread every background job of a serving process runs in (the re-fit
scheduler, the model worker, the purge sweeper, the webhook worker, the text indexer, the gold
scorer).

A daemon thread waits about ``interval_s`` (drawn from ``1 +- jitter`` times it, so the loops of
a server's workers, started together, do not all hit the database at once), calls ``run_once``,
logs and survives any exception it raises (the next round retries), and ends at ``stop()``,
which also cuts a wait short. ``wake()`` cuts a wait short too: the round then runs after
``wake_delay_s()`` (0 unless a subclass says), and a wake during a round runs one more round at
once. A loop with ``run_at_start`` runs a round before its first wait. A loop with a ``nice``
above 0 lowers its thread's CPU priority first, so the annotate loop gets the cores first.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from typing import ClassVar

log = logging.getLogger(__name__)
# The waits' own generator: the global one's state is the application's (and a property-based
# test's, which Hypothesis checks no other thread moves while it draws a case).
_jitter = random.Random()  # nosec B311  # jitter of a wait; no secret


class BackgroundLoop:
    """Subclasses name the thread (``thread_name``), say what failed (``failure``, logged with
    the traceback on the subclass's module logger) and implement ``run_once``; ``jitter``,
    ``nice`` and ``join_timeout_s`` tune the wait, the priority and how long ``stop`` waits."""

    thread_name: ClassVar[str]
    failure: ClassVar[str]
    jitter: ClassVar[float] = 0.25
    nice: ClassVar[int] = 0
    run_at_start: ClassVar[bool] = False
    join_timeout_s: float = 10.0

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the loop to end and wait for it (at most ``join_timeout_s``); a round in progress
        sees ``stopping`` and cuts its work short."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.join_timeout_s)

    def wake(self) -> None:
        """Run a round soon (after ``wake_delay_s()``) instead of at the end of the wait."""
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def is_running(self) -> bool:
        """Started, alive and not asked to stop."""
        return self._thread.is_alive() and not self._stop.is_set()

    @property
    def native_id(self) -> int | None:
        """The thread's id in the operating system (None before it starts)."""
        return self._thread.native_id

    def next_wait_s(self) -> float:
        return self.interval_s * _jitter.uniform(1 - self.jitter, 1 + self.jitter)

    def wake_delay_s(self) -> float:
        """How long a woken loop waits before its round (0: at once)."""
        return 0.0

    def run_once(self) -> object:
        raise NotImplementedError

    def _wait(self) -> bool:
        """Wait for the next round: False when the loop is to end instead."""
        woken = self._wake.wait(self.next_wait_s())
        # Cleared before the round: a wake that comes during the round runs another one.
        self._wake.clear()
        if self._stop.is_set():
            return False
        if woken:
            delay = self.wake_delay_s()
            if delay > 0 and self._stop.wait(delay):
                return False
        return True

    def _run(self) -> None:
        if self.nice > 0:
            lower_thread_priority(self.nice)
        logger = logging.getLogger(type(self).__module__)
        if self.run_at_start and not self._stop.is_set():
            self._round(logger)
        while self._wait():
            self._round(logger)

    def _round(self, logger: logging.Logger) -> None:
        try:
            self.run_once()
        except Exception:  # a failed round must not end the thread: the next one retries
            logger.exception(self.failure)


def lower_thread_priority(increment: int) -> None:
    """Raise the calling thread's nice value by ``increment`` (Linux: each thread has its own;
    raising it needs no privilege). Elsewhere, or where refused, the thread keeps its priority."""
    get_id = getattr(threading, "get_native_id", None)
    if get_id is None or not hasattr(os, "setpriority") or not os.path.isdir("/proc/self/task"):
        return
    tid = get_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))
    except OSError:
        log.debug("could not lower a background thread's priority", exc_info=True)
