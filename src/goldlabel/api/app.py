"""The application factory: ``create_app(settings)`` builds a fresh app; nothing is global."""

from __future__ import annotations

import gc
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from goldlabel import __version__
from goldlabel.api.fastlane import AnnotateFastLane
from goldlabel.api.problems import PROBLEM_RESPONSES, install_problem_handlers
from goldlabel.api.routes import items, projects, quality, queue, transfer, users
from goldlabel.config import Settings
from goldlabel.services.context import Context
from goldlabel.services.quality import RefitScheduler
from goldlabel.storage.migrate import upgrade_database
from goldlabel.web import install_web

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None, *, context: Context | None = None, migrate: bool = True) -> FastAPI:
    """Build the ASGI app. ``migrate=True`` brings the schema up to date at construction."""
    ctx = context or Context.from_settings(settings or Settings.from_env())
    if migrate:
        upgrade_database(ctx.engine)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        scheduler = None
        if ctx.settings.refit_interval_s > 0:
            scheduler = RefitScheduler(ctx, ctx.settings.refit_interval_s)
            scheduler.start()
        if context is None:
            # A server process (the app owns its context): what exists now (modules, routes,
            # templates, the engine) lives as long as the process. Taken out of the cyclic
            # collector's view, it no longer makes every full collection long: those pauses were
            # the annotate loop's p99 at 32 annotators (120 -> 90 ms, docs/benchmarks.md).
            gc.collect()
            gc.freeze()
        yield
        if scheduler is not None:
            scheduler.stop()
        if context is None:
            ctx.close()

    app = FastAPI(
        title="goldlabel",
        version=__version__,
        description="Self-hosted data engine for high-quality training labels.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.context = ctx
    install_problem_handlers(app)
    api = APIRouter(prefix=API_PREFIX, responses=PROBLEM_RESPONSES)
    for module in (users, projects, items, queue, quality, transfer):
        api.include_router(module.router)
    app.include_router(api)
    install_web(app)
    # Outermost of our middleware (added last): the annotate loop's hot requests skip the rest.
    app.add_middleware(AnnotateFastLane, context=ctx)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict:
        return {"ok": True, "version": __version__}

    return app
