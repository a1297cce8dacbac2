"""The composition root: ``create_app(settings)`` builds a fresh app, wiring the JSON API
(:mod:`goldlabel.api`) and the pages (:mod:`goldlabel.web`) over the services; nothing is global.
It sits above both, so neither imports the other."""

from __future__ import annotations

import gc
import time
from contextlib import asynccontextmanager
from functools import partial

from fastapi import APIRouter, FastAPI
from starlette.types import Receive, Scope, Send

from goldlabel import __version__
from goldlabel.api.fastlane import AnnotateFastLane
from goldlabel.api.guard import RequestGuard
from goldlabel.api.problems import PROBLEM_RESPONSES, install_problem_handlers
from goldlabel.api.routes import (
    audit,
    items,
    media,
    models,
    projects,
    quality,
    queue,
    snapshots,
    transfer,
    users,
    webhooks,
)
from goldlabel.config import Settings
from goldlabel.services.context import Context
from goldlabel.services.gold import GoldScorer
from goldlabel.services.item_refs import item_refs
from goldlabel.services.items import PurgeSweeper, TextIndexer, check_text_index
from goldlabel.services.model_worker import ModelWorker
from goldlabel.services.refit import RefitScheduler
from goldlabel.services.totp import seal_stored_secrets
from goldlabel.services.webhooks import WebhookWorker
from goldlabel.storage.migrate import upgrade_database
from goldlabel.web import install_web

API_PREFIX = "/api/v1"
# How long a reading of "is OpenTelemetry configured?" holds (see GoldlabelApp).
TELEMETRY_RECHECK_S = 1.0


class GoldlabelApp(FastAPI):
    """FastAPI with the annotate loop's fast lane in front of all of it.

    FastAPI's own outer layers (its OpenTelemetry check, the server-error, telemetry and
    body-limit middleware) cost each request Python calls the fast lane saves by standing in
    front of them (measured: docs/benchmarks.md, "Numbers behind the code"). What the fast lane
    does not take goes through all of FastAPI as before. When OpenTelemetry is configured
    (FastAPI's native telemetry says so; read at most once a second) every request takes the
    framework's path, so the annotate loop's requests are traced like the others.
    """

    fast_lane: AnnotateFastLane | None = None
    _telemetry_checked_until = 0.0
    _telemetry_enabled = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.fast_lane
        if lane is not None and scope["type"] == "http" and not self._telemetry_on():
            await lane(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def _telemetry_on(self) -> bool:
        now = time.monotonic()
        if now >= self._telemetry_checked_until:
            native = getattr(self, "_native_telemetry", None)
            self._telemetry_enabled = bool(native is not None and native.enabled())
            self._telemetry_checked_until = now + TELEMETRY_RECHECK_S
        return self._telemetry_enabled


def create_app(settings: Settings | None = None, *, context: Context | None = None,
               migrate: bool = True) -> GoldlabelApp:
    """Build the ASGI app. ``migrate=True`` brings the schema up to date at construction."""
    ctx = context or Context.from_settings(settings or Settings.from_env())
    if migrate:
        upgrade_database(ctx.engine)
    # The install's item reference key, read (or made) now: made later, inside a SQLite write
    # transaction of the annotate loop, it would wait on that transaction's own lock.
    item_refs(ctx)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        # TOTP secrets stored in plain (before 0014) or under a rotated-out key: sealed now.
        seal_stored_secrets(ctx)
        scheduler = None
        if ctx.settings.refit_interval_s > 0:
            scheduler = RefitScheduler(ctx, ctx.settings.refit_interval_s)
            scheduler.start()
        sweeper = None
        if ctx.settings.purge_interval_s > 0:
            sweeper = PurgeSweeper(ctx, ctx.settings.purge_interval_s)
            sweeper.start()
        indexer = None
        if ctx.settings.text_index_interval_s > 0:
            indexer = TextIndexer(ctx, ctx.settings.text_index_interval_s)
            indexer.start()
        deliverer = None
        if ctx.settings.webhook_poll_interval_s > 0:
            deliverer = WebhookWorker(ctx)
            deliverer.start()
        model_worker = ModelWorker.start_if(ctx)
        gold_scorer = GoldScorer(ctx)
        gold_scorer.start()
        check_text_index(ctx)
        if context is None:
            # A server process (the app owns its context): what exists now (modules, routes,
            # templates, the engine) lives as long as the process. Taken out of the cyclic
            # collector's view, it no longer makes every full collection long: those pauses were
            # the annotate loop's p99 at 32 annotators (120 -> 90 ms, docs/benchmarks.md).
            gc.collect()
            gc.freeze()
        yield
        ctx.close_async_pg()
        gold_scorer.stop()
        if scheduler is not None:
            scheduler.stop()
        if deliverer is not None:
            deliverer.stop()
        if sweeper is not None:
            sweeper.stop()
        if indexer is not None:
            indexer.stop()
        if model_worker is not None:
            model_worker.stop()
        if context is None:
            ctx.close()

    app = GoldlabelApp(
        title="goldlabel",
        version=__version__,
        description="Self-hosted data engine for high-quality training labels.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        # The docs pages are the web layer's (web.api_docs): served from the package, under the CSP.
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.context = ctx
    install_problem_handlers(app)
    api = APIRouter(prefix=API_PREFIX, responses=PROBLEM_RESPONSES)
    for module in (users, projects, items, queue, quality, transfer, snapshots, media, webhooks, audit, models):
        api.include_router(module.router)
    app.include_router(api)
    # Added before the web middleware, so inside it: the session cookie is resolved by then.
    app.add_middleware(RequestGuard, context=ctx)
    install_web(app)
    # In front of the whole app: the annotate loop's hot requests skip the framework; anything
    # else the fast lane hands to FastAPI itself.
    app.fast_lane = AnnotateFastLane(partial(FastAPI.__call__, app), context=ctx, signer=app.state.web.signer)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict:
        return {"ok": True, "version": __version__}

    return app
