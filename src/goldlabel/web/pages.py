"""HTML pages of the annotator side: login, my projects, the annotate workspace.

Pages are thin: they authenticate, load what the first paint needs through the services, and
render a template. Everything after the first paint is the page's JavaScript calling /api/v1.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from goldlabel.domain.errors import GoldlabelError
from goldlabel.domain.media_sources import parse_hosts
from goldlabel.services import projects as project_service
from goldlabel.services import users as user_service
from goldlabel.services.login_guard import TooManyAttempts, guard_of
from goldlabel.web.rendering import (
    PageActor,
    csrf_token_for,
    get_session_actor,
    get_web,
    is_local_path,
    render,
    render_error,
)
from goldlabel.web.session import (
    PRESESSION_COOKIE,
    SESSION_COOKIE,
    SESSION_TTL_S,
    end_session,
    start_session,
)

router = APIRouter(include_in_schema=False)

# What the workspace script needs of a project. Quality settings stay out: gold rate and
# qualification would tell an annotator that gold items exist.
WORKSPACE_SETTINGS = project_service.ANNOTATOR_SETTINGS


def _set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", httponly=True, samesite="lax",
        secure=request.url.scheme == "https",
    )


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    if get_session_actor(request) is not None:
        return RedirectResponse(next if is_local_path(next) else "/", status_code=303)
    return _login_page(request, next, error=None, status_code=200)


def _login_page(request: Request, next_path: str, error: str | None, status_code: int,
                username: str = "") -> HTMLResponse:
    new_nonce = None
    if not request.cookies.get(PRESESSION_COOKIE):
        new_nonce = secrets.token_urlsafe(16)
        request.state.new_presession = new_nonce
    response = render(
        request, "login.html",
        {"next": next_path if is_local_path(next_path) else "/", "error": error, "username": username},
        status_code=status_code,
    )
    if new_nonce:
        _set_cookie(response, request, PRESESSION_COOKIE, new_nonce, 3600)
    return response


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=150)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form()] = "/",
) -> Response:
    # The CSRF token was checked by WebMiddleware before this runs. Throttled before the
    # password is hashed (services.login_guard).
    ctx = request.app.state.context
    guard = guard_of(ctx)
    try:
        guard.admit(username, request.client.host if request.client else "")
        actor = user_service.authenticate_password(ctx, username, password)
    except TooManyAttempts as exc:
        retry = exc.extra["retry_after_s"]
        response = _login_page(request, next, f"Too many attempts; try again in {retry} s.", 429, username=username)
        response.headers["Retry-After"] = str(retry)
        return response
    except GoldlabelError:
        guard.failed(username)
        return _login_page(request, next, "Wrong username or password.", 401, username=username)
    guard.succeeded(username)
    cookie, session = get_web(request).signer.issue(actor.id)
    start_session(request.app.state.context, session)
    response = RedirectResponse(next if is_local_path(next) else "/", status_code=303)
    _set_cookie(response, request, SESSION_COOKIE, cookie, SESSION_TTL_S)
    response.delete_cookie(PRESESSION_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    # The record goes, not only this browser's cookie: a copy of the cookie stops working too.
    session = getattr(request.state, "session", None)
    if session is not None:
        end_session(request.app.state.context, session)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.get("/")
def my_projects(request: Request, actor: PageActor) -> HTMLResponse:
    ctx = request.app.state.context
    projects = project_service.list_projects(ctx, actor, 0, ctx.settings.page_size_max)
    return render(request, "projects.html", {"projects": projects})


@router.get("/account")
def account(request: Request, actor: PageActor) -> HTMLResponse:
    """The signed-in user's own account: display name and password (PATCH /api/v1/users/{id})."""
    user = user_service.get_user(request.app.state.context, actor, actor.id)
    return render(request, "account.html", {"user": user})


@router.get("/projects/{project_id}/annotate")
def annotate(request: Request, project_id: int, actor: PageActor) -> HTMLResponse:
    ctx = request.app.state.context
    try:
        project = project_service.get_project(ctx, actor, project_id)
    except GoldlabelError as exc:
        return render_error(request, exc.status, "Project not available", exc.detail)
    workspace = {
        "id": project["id"],
        "name": project["name"],
        "instructions": project["instructions"],
        "label_schema": project["label_schema"],
        "lease_ttl_s": project["lease_ttl_s"],
        "settings": {k: project["settings"].get(k) for k in WORKSPACE_SETTINGS},
        "user": {"id": actor.id, "username": actor.username},
        # The workspace applies the import's image source rule (dom.js safeImageUrl).
        "media_http_hosts": sorted(parse_hosts(ctx.settings.media_http_hosts)),
    }
    return render(request, "annotate.html", {"project": project, "workspace": workspace,
                                             "csrf": csrf_token_for(request)})
