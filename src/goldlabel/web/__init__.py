"""The web UI: server-rendered pages plus plain JavaScript modules that call /api/v1.

``install_web(app)`` adds it to an app built by ``goldlabel.app.create_app``: the session
and security middleware, the static files and the page routes.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from goldlabel.services.sessions import SessionSigner
from goldlabel.web import console, console_models, console_webhooks, pages
from goldlabel.web.api_docs import install_api_docs
from goldlabel.web.rendering import (
    STATIC_DIR,
    LoginRequired,
    WebState,
    compute_asset_version,
    login_redirect,
    make_environment,
)
from goldlabel.web.security import WebMiddleware

__all__ = ["install_web"]


def install_web(app: FastAPI) -> None:
    ctx = app.state.context
    signer = SessionSigner(ctx.settings.secret_key)
    version = compute_asset_version()
    app.state.web = WebState(signer=signer, env=make_environment(version), asset_version=version)
    # Every page, the API docs included, is under the CSP: no path is exempt.
    app.add_middleware(WebMiddleware, context=ctx, signer=signer)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    api_prefix = app.openapi_url.rsplit("/", 1)[0]  # /api/v1
    install_api_docs(app, docs_url=f"{api_prefix}/docs", redoc_url=f"{api_prefix}/redoc",
                     asset_version=version)
    app.include_router(pages.router)
    app.include_router(console.router)
    app.include_router(console_webhooks.router)
    app.include_router(console_models.router)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        # Browsers ask for /favicon.ico on any page without a <link rel=icon> (raw JS or JSON
        # views, the API docs); answer with the same icon instead of a 404.
        return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")

    @app.exception_handler(LoginRequired)
    async def _login_required(_request: Request, exc: LoginRequired):
        return login_redirect(exc)
