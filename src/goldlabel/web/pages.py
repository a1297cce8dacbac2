"""HTML pages of the annotator side: login, my projects, the annotate workspace.

Pages are thin: they authenticate, load what the first paint needs through the services, and
render a template. Everything after the first paint is the page's JavaScript calling /api/v1.
"""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from goldlabel.domain.errors import GoldlabelError
from goldlabel.domain.json_limits import text_problem
from goldlabel.domain.media_sources import parse_hosts
from goldlabel.services import audit
from goldlabel.services import projects as project_service
from goldlabel.services import totp as totp_service
from goldlabel.services import users as user_service
from goldlabel.services.access import Actor
from goldlabel.services.login_guard import TooManyAttempts, guard_of
from goldlabel.services.sessions import (
    PENDING_COOKIE,
    PENDING_TTL_S,
    PRESESSION_COOKIE,
    SESSION_COOKIE,
    SESSION_TTL_S,
    end_session,
    start_session,
)
from goldlabel.web.rendering import (
    PageActor,
    csrf_token_for,
    get_session_actor,
    get_web,
    is_local_path,
    render,
    render_error,
)

router = APIRouter(include_in_schema=False)


def text_or_blank(text: str) -> str:
    """A typed username fit to store (PostgreSQL refuses NUL; lone surrogates do not encode)."""
    return text if text_problem(text) is None else ""

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
                username: str = "", template: str = "login.html") -> HTMLResponse:
    new_nonce = None
    if not request.cookies.get(PRESESSION_COOKIE):
        new_nonce = secrets.token_urlsafe(16)
        request.state.new_presession = new_nonce
    response = render(
        request, template,
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
    address = request.client.host if request.client else ""
    try:
        guard.admit(username, address)
        actor = user_service.authenticate_password(ctx, username, password)
    except TooManyAttempts as exc:
        return _too_many(request, next, exc, username)
    except GoldlabelError:
        guard.failed(username)
        audit.record_now(ctx, None, "login.failure", actor_name=text_or_blank(username), address=address,
                         detail={"step": "password"})
        return _login_page(request, next, "Wrong username or password.", 401, username=username)
    if totp_service.login_needs_code(ctx, actor.id):
        # The password was right; the session waits for the code. Failed codes count against
        # the account like failed passwords (guard.failed), so a known password alone cannot
        # be turned into a session by guessing six digits.
        response = RedirectResponse(f"/login/code?next={quote(next if is_local_path(next) else '/', safe='/')}",
                                    status_code=303)
        _set_cookie(response, request, PENDING_COOKIE, get_web(request).signer.issue_pending(actor.id),
                    PENDING_TTL_S)
        return response
    guard.succeeded(username)
    audit.record_now(ctx, actor, "login.success", target=("user", actor.id), address=address,
                     detail={"second_factor": None})
    return _start_session(request, actor, next)


def _too_many(request: Request, next_path: str, exc: TooManyAttempts, username: str = "",
              template: str = "login.html") -> Response:
    retry = exc.extra["retry_after_s"]
    response = _login_page(request, next_path, f"Too many attempts; try again in {retry} s.", 429,
                           username=username, template=template)
    response.headers["Retry-After"] = str(retry)
    return response


def _start_session(request: Request, actor: Actor, next_path: str) -> Response:
    cookie, session = get_web(request).signer.issue(actor.id)
    start_session(request.app.state.context, session)
    response = RedirectResponse(next_path if is_local_path(next_path) else "/", status_code=303)
    _set_cookie(response, request, SESSION_COOKIE, cookie, SESSION_TTL_S)
    response.delete_cookie(PRESESSION_COOKIE, path="/")
    response.delete_cookie(PENDING_COOKIE, path="/")
    return response


def _pending_user(request: Request) -> int | None:
    return get_web(request).signer.verify_pending(request.cookies.get(PENDING_COOKIE))


@router.get("/login/code")
def login_code_form(request: Request, next: str = "/") -> Response:
    """The second step of a login: the code of the user's authenticator app."""
    if _pending_user(request) is None:
        return RedirectResponse("/login", status_code=303)
    return _login_page(request, next, error=None, status_code=200, template="login_code.html")


@router.post("/login/code")
def login_code(
    request: Request,
    code: Annotated[str, Form(max_length=40)],
    next: Annotated[str, Form()] = "/",
) -> Response:
    ctx = request.app.state.context
    user_id = _pending_user(request)
    if user_id is None:
        return _login_page(request, next, "The login took too long; enter your password again.", 401)
    username = totp_service.fetch_login_name(ctx, user_id)
    guard = guard_of(ctx)
    address = request.client.host if request.client else ""
    try:
        guard.admit(username, address)
        actor = totp_service.verify_login_code(ctx, user_id, code, address)
    except TooManyAttempts as exc:
        return _too_many(request, next, exc, template="login_code.html")
    except GoldlabelError:
        guard.failed(username)
        # The password was right: the entry names the account (actor_id), unlike a wrong password.
        audit.record_now(ctx, Actor(user_id, username, ""), "login.failure", address=address,
                         target=("user", user_id), detail={"step": "second_factor"})
        return _login_page(request, next, "Wrong code: type the one your app shows now, or a recovery code.",
                           401, template="login_code.html")
    guard.succeeded(username)
    return _start_session(request, actor, next)


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
    """The signed-in user's own account: display name, password (PATCH /api/v1/users/{id}) and
    two-factor login (/api/v1/users/{id}/totp). The one page a user who must enrol may open."""
    ctx = request.app.state.context
    user = user_service.get_user(ctx, actor, actor.id)
    totp = totp_service.status(ctx, actor, actor.id)
    return render(request, "account.html", {"user": user, "totp": totp, "must_enrol": actor.must_enrol})


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
