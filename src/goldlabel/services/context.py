"""What every service call needs: settings, the engine, and a few caches. Built by create_app."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from goldlabel.config import Settings
from goldlabel.domain.label_schema import LabelSchema
from goldlabel.storage.aio import AsyncPg
from goldlabel.storage.backend import Backend
from goldlabel.storage.engine import create_engine
from goldlabel.storage.handles import Engine
from goldlabel.storage.media import LocalMediaStore, MediaStore, S3MediaStore

# How long the annotate loop trusts a verified API token or session without reading it again
# (the default of settings.token_cache_s). Revocation does not wait for it: every revocation
# moves the user's auth version on, and the annotate loop's own statements read the version and
# refuse a cached actor of an older one (services/access.py, docs/security.md), in every process.
TOKEN_CACHE_TTL_S = 2.0
# Leases whose item reading this process keeps for the submit (services/queue/merged_submit.py):
# at most this many; the oldest go first.
LEASE_READINGS_MAX = 10_000


@dataclass
class Context:
    settings: Settings
    engine: Engine
    _schemas: dict[tuple[int, int], LabelSchema] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # token hash -> (monotonic deadline, actor): see TOKEN_CACHE_TTL_S.
    _actors: dict[str, tuple[float, object]] = field(default_factory=dict)
    token_cache_ttl_s: float = TOKEN_CACHE_TTL_S
    # (lease token hash, annotator id, project id) -> (monotonic deadline, what the lease read of
    # its item): see remember_lease_reading.
    _lease_readings: dict[tuple[str, int, int], tuple[float, dict]] = field(default_factory=dict)
    # How the event loop's use cases run on this database (storage.backend): made on first use.
    _backend: Backend | None = None
    _media: MediaStore | None = None
    # project id -> its pooled knowledge of unknown annotators (services/cold_start.py).
    pooled: dict[int, Any] = field(default_factory=dict)
    # The install's opaque item references (services/item_refs.py): made on first use.
    item_refs: Any = None
    # Gold answers waiting to be scored (services/gold.py): the serving process's scorer, when
    # one runs; without one a submit scores its own gold before it returns.
    gold_scorer: Any = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Context:
        return cls(settings=settings, engine=create_engine(settings), token_cache_ttl_s=settings.token_cache_s)

    @property
    def media(self) -> MediaStore:
        """The media store the settings name, made on first use."""
        if self._media is None:
            s = self.settings
            if s.media_store == "s3":
                self._media = S3MediaStore(s.media_s3_bucket, prefix=s.media_s3_prefix,
                                           endpoint_url=s.media_s3_endpoint_url, region=s.media_s3_region)
            else:
                self._media = LocalMediaStore(s.media_root())
        return self._media

    def get_schema(self, project: dict) -> LabelSchema:
        """Parsed label schema of a project, cached per (id, updated_at): parsing once per
        project version keeps answer validation in microseconds."""
        key = (project["id"], project["updated_at"])
        schema = self._schemas.get(key)
        if schema is None:
            schema = LabelSchema.parse(project["label_schema"])
            with self._lock:
                if len(self._schemas) > 1000:
                    self._schemas.clear()
                self._schemas[key] = schema
        return schema

    def cached_actor(self, token_hash: str) -> object | None:
        entry = self._actors.get(token_hash)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def cache_actor(self, token_hash: str, actor: object) -> None:
        if self.token_cache_ttl_s <= 0:
            return
        with self._lock:
            if len(self._actors) > 10_000:
                self._actors.clear()
            self._actors[token_hash] = (time.monotonic() + self.token_cache_ttl_s, actor)

    def forget_user(self, user_id: int) -> None:
        """Drop the cached actors of one user (their auth version moved on)."""
        with self._lock:
            self._actors = {k: v for k, v in self._actors.items()
                            if getattr(v[1], "id", None) != user_id}

    def forget_actors(self) -> None:
        """Drop every cached token -> actor: called on any revocation or user change."""
        with self._lock:
            self._actors.clear()

    def remember_lease_reading(self, key: tuple[str, int, int], ttl_s: float, reading: dict) -> None:
        """Keep what a lease read of its item until the lease expires (services/queue/merged_submit.py:
        the submit then skips its own read; the write re-checks all of it), under ``key``: the
        lease token's hash, its annotator and its project, so only a submit by that annotator
        in that project finds it. Bounded by LEASE_READINGS_MAX: expired entries go first,
        then the oldest."""
        now = time.monotonic()
        with self._lock:
            if len(self._lease_readings) >= LEASE_READINGS_MAX:
                self._lease_readings = {k: v for k, v in self._lease_readings.items() if v[0] > now}
                while len(self._lease_readings) >= LEASE_READINGS_MAX:
                    del self._lease_readings[next(iter(self._lease_readings))]
            self._lease_readings[key] = (now + ttl_s, reading)

    def take_lease_reading(self, key: tuple[str, int, int]) -> dict | None:
        """The reading kept under ``key``, removed; None when none is kept or it expired."""
        with self._lock:
            entry = self._lease_readings.pop(key, None)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    @property
    def backend(self) -> Backend:
        """The database backend the annotate loop's use cases run on (one per Context)."""
        if self._backend is None:
            with self._lock:
                if self._backend is None:
                    self._backend = Backend(self.engine, self.settings.pg_pool_size)
        return self._backend

    def async_pg(self) -> AsyncPg:
        """PostgreSQL: the statement runner of the running event loop (``backend.async_pg``)."""
        return self.backend.async_pg()

    def close_async_pg(self) -> None:
        """Close the running event loop's statement runner, if it has one (the server's
        shutdown)."""
        if self._backend is not None:
            self._backend.close_loop()

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
        self.engine.dispose()
