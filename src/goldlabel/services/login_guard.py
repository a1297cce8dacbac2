"""Password logins: throttled per account and per client address, password hashing bounded.

Before this (issue 17, item 5), 16 concurrent unauthenticated logins took 2.1 GB (Argon2id uses
64 MiB per check) and slowed an annotator's requests 16-fold. Now, in this order, before any
password is hashed:

1. Per client address: at most ``login_attempts_per_minute`` attempts (a token bucket of that
   size refilled over a minute); past it, 429 with ``Retry-After``.
2. Per account: after ``login_max_failures`` failures in a row the account is locked for
   ``login_lockout_s``, doubled with each further failure up to ``login_lockout_max_s``; a
   success clears it. A locked account refuses even the right password (429), without hashing.
3. At most ``password_hash_concurrency`` Argon2 computations run at once in this process (logins,
   password changes, new users); a request that would wait behind more than as many others is
   refused at once (429), so waiting requests cannot hold the thread pool.

The address and account limits hold across every server process (``--workers N``, several
servers on one database): their state is in the database (``storage.login_throttle``, a few
statements in one short write transaction per attempt, on the login path only) and survives a
restart; times are wall-clock. Rows untouched for a day are swept (``sweep``, run by the purge
sweeper). The bound on concurrent hashing is per process: it bounds this process's memory.
The client address is the ASGI one: behind a proxy, run uvicorn with
``--proxy-headers`` (and ``--forwarded-allow-ips``) so that it is the client's, not the proxy's.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from goldlabel.config import Settings
from goldlabel.domain.errors import GoldlabelError
from goldlabel.storage import login_throttle as throttle_store
from goldlabel.storage.engine import write_tx
from goldlabel.storage.handles import Engine

# A row of the throttle untouched this long is forgotten (services.items.PurgeSweeper).
FORGET_AFTER_MS = 24 * 3600 * 1000


class TooManyAttempts(GoldlabelError):
    """429: ``extra["retry_after_s"]`` says when to try again."""


def too_many(detail: str, retry_after_s: float) -> TooManyAttempts:
    return TooManyAttempts(detail, code="too_many_attempts", status=429,
                           extra={"retry_after_s": max(1, math.ceil(retry_after_s))})


class LoginGuard:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.engine = engine
        self.per_minute = settings.login_attempts_per_minute
        self.max_failures = settings.login_max_failures
        self.lockout_s = settings.login_lockout_s
        self.lockout_max_s = settings.login_lockout_max_s
        self.concurrency = settings.password_hash_concurrency
        self._lock = threading.Lock()
        self._hash_slots = threading.BoundedSemaphore(self.concurrency)
        self._hash_waiting = 0
        # Observed, for tests and the docs' figures: hashes run, most at once.
        self.hashes = 0
        self.hashing_now = 0
        self.hashing_peak = 0

    # -- throttling (state in the database, shared by every process) ---------------------------
    def admit(self, username: str, address: str, now: float | None = None) -> None:
        """Raise TooManyAttempts when this attempt may not be tried now; else count it.
        ``now``: seconds since the epoch (wall clock: it is compared across processes)."""
        at = _ms(now)
        with write_tx(self.engine) as conn:
            account = throttle_store.fetch_row(conn, _account_key(username))
            if account is not None and account["locked_until"] > at:
                raise too_many("too many failed logins for this account; try again later",
                               (account["locked_until"] - at) / 1000)
            capacity = float(self.per_minute)
            bucket = throttle_store.lock_row(conn, _address_key(address), tokens=capacity, now=at)
            tokens = min(capacity, bucket["tokens"] + max(0, at - bucket["at"]) / 60_000 * self.per_minute)
            if tokens < 1:
                raise too_many("too many login attempts from your address; try again later",
                               (1 - tokens) * 60 / self.per_minute)
            throttle_store.update_row(conn, _address_key(address), tokens=tokens - 1, at=at)

    def failed(self, username: str, now: float | None = None) -> None:
        at = _ms(now)
        key = _account_key(username)
        with write_tx(self.engine) as conn:
            count = throttle_store.lock_row(conn, key, tokens=0.0, now=at)["failures"] + 1
            over = count - self.max_failures
            values: dict[str, Any] = {"failures": count, "at": at}
            if over >= 0:
                values["locked_until"] = at + round(1000 * min(self.lockout_max_s, self.lockout_s * 2.0 ** over))
            throttle_store.update_row(conn, key, **values)

    def succeeded(self, username: str) -> None:
        with write_tx(self.engine) as conn:
            throttle_store.delete_row(conn, _account_key(username))

    # -- hashing -------------------------------------------------------------------------------
    @contextmanager
    def hashing(self) -> Iterator[None]:
        """A slot to compute one Argon2 hash in; TooManyAttempts when too many already wait."""
        with self._lock:
            if self._hash_waiting >= self.concurrency:
                raise too_many("the server is busy checking passwords; try again in a moment", 1)
            self._hash_waiting += 1
        try:
            self._hash_slots.acquire()
        finally:
            with self._lock:
                self._hash_waiting -= 1
        try:
            with self._lock:
                self.hashes += 1
                self.hashing_now += 1
                self.hashing_peak = max(self.hashing_peak, self.hashing_now)
            yield
        finally:
            with self._lock:
                self.hashing_now -= 1
            self._hash_slots.release()


def _ms(now: float | None) -> int:
    return round(1000 * (time.time() if now is None else now))


def _account_key(username: str) -> str:
    # A digest, not the name: a login form's username is any text (NUL bytes, lone surrogates,
    # any length), and the throttle must count it without storing what PostgreSQL refuses.
    return "u:" + hashlib.sha256(username.casefold().encode("utf-8", "surrogatepass")).hexdigest()


def _address_key(address: str) -> str:
    return "a:" + address[:190]


def sweep(ctx: Any, now: float | None = None) -> int:
    """Forget the throttle's rows untouched for a day (lockouts still running are kept)."""
    at = _ms(now)
    with write_tx(ctx.engine) as conn:
        return throttle_store.sweep(conn, at - FORGET_AFTER_MS, at)


_guards_lock = threading.Lock()


def guard_of(ctx: Any) -> LoginGuard:
    """The LoginGuard of a Context (one per Context, made on first use)."""
    guard = getattr(ctx, "_login_guard", None)
    if guard is None:
        with _guards_lock:
            guard = getattr(ctx, "_login_guard", None)
            if guard is None:
                guard = LoginGuard(ctx.settings, ctx.engine)
                ctx._login_guard = guard
    return guard
