"""Rendering pages: the Jinja2 environment, the common template context, and the dependencies
that page routes use (``PageActor`` redirects to the login form instead of answering 401)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from goldlabel import __version__
from goldlabel.services.access import Actor
from goldlabel.services.sessions import PRESESSION_COOKIE, SessionSigner

WEB_DIR = Path(__file__).resolve().parent
TEMPLATE_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"


def compute_asset_version(static_dir: Path = STATIC_DIR) -> str:
    """A short hash of the static files' names, sizes and mtimes: appended to asset URLs so a
    deploy never serves stale modules from the browser cache."""
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(static_dir.rglob("*")):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.relative_to(static_dir)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:12]


@dataclass
class WebState:
    """What the web layer keeps on ``app.state.web``."""

    signer: SessionSigner
    env: jinja2.Environment
    asset_version: str


def make_environment(asset_version: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,  # every template, whatever its extension
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static"] = lambda path: f"/static/{path}?v={asset_version}"
    env.globals["version"] = __version__
    return env


def get_web(request: Request) -> WebState:
    return request.app.state.web


class LoginRequired(Exception):
    """Raised by ``PageActor`` when nobody is logged in; answered with a redirect to /login."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class EnrolmentRequired(LoginRequired):
    """Raised by ``PageActor`` for a user whose role requires two-factor login and who has not
    enrolled: every page but /account redirects there."""


ENROL_PATH = "/account"


def get_session_actor(request: Request) -> Actor | None:
    return getattr(request.state, "session_actor", None)


def require_page_actor(request: Request) -> Actor:
    actor = get_session_actor(request)
    if actor is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path)
    if actor.must_enrol and request.url.path != ENROL_PATH:
        raise EnrolmentRequired(ENROL_PATH)
    return actor


PageActor = Annotated[Actor, Depends(require_page_actor)]


def login_redirect(exc: LoginRequired) -> RedirectResponse:
    if isinstance(exc, EnrolmentRequired):
        return RedirectResponse(f"{ENROL_PATH}?enrol=required", status_code=303)
    return RedirectResponse(f"/login?next={quote(exc.next_path, safe='/')}", status_code=303)


def csrf_token_for(request: Request) -> str:
    """The CSRF token of this browser: bound to the session, or to the pre-session cookie."""
    web = get_web(request)
    session = getattr(request.state, "session", None)
    if session is not None:
        return web.signer.csrf_token(session.nonce)
    nonce = request.cookies.get(PRESESSION_COOKIE) or getattr(request.state, "new_presession", "")
    return web.signer.csrf_token(nonce) if nonce else ""


def render(request: Request, template: str, context: dict[str, Any] | None = None, *,
           status_code: int = 200) -> HTMLResponse:
    """Render a page with the common context: ``actor``, ``csrf_token``, ``static()``."""
    web = get_web(request)
    values = {
        "request": request,
        "actor": get_session_actor(request),
        "csrf_token": csrf_token_for(request),
        **(context or {}),
    }
    html = web.env.get_template(template).render(values)
    # Pages carry a CSRF token and the user's data: never cache them.
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def render_error(request: Request, status_code: int, title: str, detail: str) -> HTMLResponse:
    return render(request, "error.html", {"title": title, "detail": detail}, status_code=status_code)


def is_local_path(target: str) -> bool:
    """Only same-site paths may be redirected to after login (no open redirect)."""
    return target.startswith("/") and not target.startswith("//") and "\\" not in target
