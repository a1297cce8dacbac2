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

The state is per process and in memory (at most ``MAX_TRACKED`` accounts and addresses each, the
least recently seen forgotten first): with N server processes the bounds are N times these, and
a restart forgets them. The client address is the ASGI one: behind a proxy, run uvicorn with
``--proxy-headers`` (and ``--forwarded-allow-ips``) so that it is the client's, not the proxy's.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from goldlabel.config import Settings
from goldlabel.domain.errors import GoldlabelError

MAX_TRACKED = 50_000


class TooManyAttempts(GoldlabelError):
    """429: ``extra["retry_after_s"]`` says when to try again."""


def too_many(detail: str, retry_after_s: float) -> TooManyAttempts:
    return TooManyAttempts(detail, code="too_many_attempts", status=429,
                           extra={"retry_after_s": max(1, math.ceil(retry_after_s))})


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0


class LoginGuard:
    def __init__(self, settings: Settings) -> None:
        self.per_minute = settings.login_attempts_per_minute
        self.max_failures = settings.login_max_failures
        self.lockout_s = settings.login_lockout_s
        self.lockout_max_s = settings.login_lockout_max_s
        self.concurrency = settings.password_hash_concurrency
        self._lock = threading.Lock()
        self._addresses: OrderedDict[str, _Bucket] = OrderedDict()
        self._accounts: OrderedDict[str, _Failures] = OrderedDict()
        self._hash_slots = threading.BoundedSemaphore(self.concurrency)
        self._hash_waiting = 0
        # Observed, for tests and the docs' figures: hashes run, most at once.
        self.hashes = 0
        self.hashing_now = 0
        self.hashing_peak = 0

    # -- throttling ----------------------------------------------------------------------------
    def admit(self, username: str, address: str, now: float | None = None) -> None:
        """Raise TooManyAttempts when this attempt may not be tried now; else count it."""
        now = time.monotonic() if now is None else now
        account = username.casefold()
        with self._lock:
            failures = self._accounts.get(account)
            if failures is not None and failures.locked_until > now:
                raise too_many("too many failed logins for this account; try again later",
                               failures.locked_until - now)
            bucket = self._addresses.get(address)
            if bucket is None:
                bucket = _Bucket(float(self.per_minute), now)
                _remember(self._addresses, address, bucket)
            else:
                self._addresses.move_to_end(address)
                bucket.tokens = min(float(self.per_minute), bucket.tokens + (now - bucket.at) * self.per_minute / 60)
                bucket.at = now
            if bucket.tokens < 1:
                raise too_many("too many login attempts from your address; try again later",
                               (1 - bucket.tokens) * 60 / self.per_minute)
            bucket.tokens -= 1

    def failed(self, username: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        account = username.casefold()
        with self._lock:
            failures = self._accounts.get(account)
            if failures is None:
                failures = _Failures()
                _remember(self._accounts, account, failures)
            failures.count += 1
            over = failures.count - self.max_failures
            if over >= 0:
                failures.locked_until = now + min(self.lockout_max_s, self.lockout_s * 2.0 ** over)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._accounts.pop(username.casefold(), None)

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


def _remember(table: OrderedDict, key: str, value: object) -> None:
    table[key] = value
    if len(table) > MAX_TRACKED:
        table.popitem(last=False)


_guards_lock = threading.Lock()


def guard_of(ctx: Any) -> LoginGuard:
    """The LoginGuard of a Context (one per Context, made on first use)."""
    guard = getattr(ctx, "_login_guard", None)
    if guard is None:
        with _guards_lock:
            guard = getattr(ctx, "_login_guard", None)
            if guard is None:
                guard = LoginGuard(ctx.settings)
                ctx._login_guard = guard
    return guard
