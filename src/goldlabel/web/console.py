"""HTML pages of the manager console: projects, schema editor, import, export, dashboard, item
browser, review queue, annotators and users.

Pages read through the services (``services.dashboard`` for the aggregates) and render a
template; every change the console makes is a call to /api/v1 from the page's JavaScript
(``static/js/console/*.js``), with the session cookie and the CSRF header.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from goldlabel.domain.errors import GoldlabelError
from goldlabel.domain.vocabulary import ITEM_STATUSES
from goldlabel.schemas import QualitySettings
from goldlabel.services import audit as audit_service
from goldlabel.services import dashboard as dashboard_service
from goldlabel.services import users as user_service
from goldlabel.services.access import Actor
from goldlabel.web import charts
from goldlabel.web.annotation_views import AnnotationViews
from goldlabel.web.rendering import PageActor, render, render_error

router = APIRouter(prefix="/console", include_in_schema=False)

PAGE_SIZE = 50
CONSOLE_ROLES = ("admin", "manager", "reviewer")
SETTING_FIELDS = tuple(QualitySettings.model_fields)


def _ctx(request: Request):
    return request.app.state.context


def _error(request: Request, exc: GoldlabelError) -> HTMLResponse:
    title = "Not found" if exc.status == 404 else "Not allowed" if exc.status == 403 else "Cannot show this page"
    return render_error(request, exc.status, title, exc.detail)


def fmt_time(ms: int | None) -> str:
    if ms is None:
        return "–"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _page(request: Request, template: str, context: dict[str, Any]) -> HTMLResponse:
    return render(request, f"console/{template}", {"charts": charts, "fmt_time": fmt_time, **context})


@router.get("")
def console_home(request: Request, actor: PageActor) -> Response:
    from goldlabel.services import projects as project_service

    projects = dashboard_service.console_projects(_ctx(request), actor)
    deleted = project_service.list_deleted_projects(_ctx(request), actor)
    return _page(request, "projects.html", {"projects": projects, "can_create": actor.can_create_projects,
                                            "deleted": deleted, "active": "projects"})


@router.get("/projects/new")
def new_project(request: Request, actor: PageActor) -> Response:
    if not actor.can_create_projects:
        return render_error(request, 403, "Not allowed", "Only managers and admins create projects.")
    example = {"questions": [{"name": "sentiment", "kind": "choice", "title": "What is the sentiment?",
                              "labels": ["positive", "negative", "neutral"]}]}
    return _page(request, "project_form.html", {
        "project": None, "schema": example, "settings": QualitySettings().model_dump(),
        "defaults": {"overlap_min": 1, "overlap_max": 3, "lease_ttl_s": _ctx(request).settings.default_lease_ttl_s},
        "gold_warnings": [], "active": "projects",
    })


def _project(request: Request, actor: Actor, project_id: int, need: str = "review") -> dict:
    return dashboard_service.load_for_console(_ctx(request), actor, project_id, need)


@router.get("/projects/{project_id}/settings")
def project_settings(request: Request, project_id: int, actor: PageActor) -> Response:
    try:
        project = _project(request, actor, project_id, "manage")
        from goldlabel.services import projects as project_service

        members = project_service.list_members(_ctx(request), actor, project_id)
        gold_warnings = project_service.gold_pool_warnings(_ctx(request), actor, project_id)
    except GoldlabelError as exc:
        return _error(request, exc)
    return _page(request, "project_form.html", {
        "project": project, "schema": project["label_schema"],
        # Defaults first: a project stored before a setting existed lacks its key.
        "settings": {**QualitySettings().model_dump(), **project["settings"]},
        "defaults": {k: project[k] for k in ("overlap_min", "overlap_max", "lease_ttl_s")},
        "members": members, "gold_warnings": gold_warnings, "active": "settings",
    })


@router.get("/projects/{project_id}")
def dashboard(request: Request, project_id: int, actor: PageActor) -> Response:
    try:
        data = dashboard_service.project_dashboard(_ctx(request), actor, project_id)
        project = _project(request, actor, project_id)
    except GoldlabelError as exc:
        return _error(request, exc)
    return _page(request, "dashboard.html", {"project": project, "d": data, "active": "dashboard"})


@router.get("/projects/{project_id}/annotators/{annotator_id}")
def annotator(request: Request, project_id: int, annotator_id: int, actor: PageActor) -> Response:
    try:
        data = dashboard_service.annotator_detail(_ctx(request), actor, project_id, annotator_id)
        project = _project(request, actor, project_id)
    except GoldlabelError as exc:
        return _error(request, exc)
    return _page(request, "annotator.html", {"project": project, "a": data, "active": "dashboard"})


@router.get("/projects/{project_id}/import")
def import_page(request: Request, project_id: int, actor: PageActor) -> Response:
    try:
        project = _project(request, actor, project_id, "manage")
    except GoldlabelError as exc:
        return _error(request, exc)
    return _page(request, "import.html", {"project": project, "active": "import",
                                          "max_upload_bytes": _ctx(request).settings.max_upload_bytes})


@router.get("/projects/{project_id}/export")
def export_page(request: Request, project_id: int, actor: PageActor) -> Response:
    try:
        project = _project(request, actor, project_id)
    except GoldlabelError as exc:
        return _error(request, exc)
    return _page(request, "export.html", {"project": project, "active": "export", "statuses": ITEM_STATUSES})


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


FILTER_KEYS = ("q", "status", "gold", "annotator", "question", "label", "min_conf", "max_conf", "disagreement",
               "source", "split", "flag", "meta")
SOURCES = ("consensus", "review", "gold", "auto")
SPLITS = ("train", "validation", "test")


def _item_filters(request: Request, project: dict) -> tuple[dict[str, Any], dict[str, str]]:
    """Filters from the query string: (for the query, in the API's spelling; as given, for the
    form and the links)."""
    q = request.query_params
    given = {k: q.get(k, "") for k in FILTER_KEYS}
    filters: dict[str, Any] = {}
    if given["q"].strip():
        filters["q"] = given["q"].strip()[:200]
    if given["status"] in (*ITEM_STATUSES, "deleted"):
        filters["status"] = given["status"]
    if given["gold"] in ("yes", "no"):
        filters["is_gold"] = given["gold"] == "yes"
    if (annotator_id := _int(given["annotator"])) is not None:
        filters["annotator_id"] = annotator_id
    if given["source"] in SOURCES:
        filters["source"] = given["source"]
    if given["split"] in SPLITS:
        filters["split"] = given["split"]
    if given["flag"] == "media_broken":
        filters["flag"] = "media_broken"
    meta = {}
    for pair in filter(None, (p.strip() for p in given["meta"].split(";"))):
        key, sep, value = pair.partition("=")
        if sep and key.strip():
            meta[key.strip()] = value.strip()
    if meta:
        filters["meta"] = meta
    choice = [qq for qq in project["label_schema"]["questions"] if qq["kind"] == "choice"]
    names = [qq["name"] for qq in choice]
    question = given["question"] if given["question"] in names else (names[0] if names else None)
    if question is not None:
        given["question"] = question
        consensus_filters = {}
        if given["label"]:
            consensus_filters["label"] = given["label"]
        if (lo := _float(given["min_conf"])) is not None:
            consensus_filters["min_confidence"] = lo
        if (hi := _float(given["max_conf"])) is not None:
            consensus_filters["max_confidence"] = hi
        if given["disagreement"] == "yes":
            consensus_filters["disagreement"] = True
        if consensus_filters or "source" in filters:
            filters["question"] = question
            filters.update(consensus_filters)
    return filters, given


def _undo_notice(request: Request) -> dict[str, Any] | None:
    """The undo banner after a delete (the page is read again with ?undo=<deleted_at>&n=N)."""
    stamp = _int(request.query_params.get("undo"))
    if stamp is None:
        return None
    until = stamp + _ctx(request).settings.delete_undo_s * 1000
    return {"deleted_at": stamp, "n": _int(request.query_params.get("n")) or 0, "until": until}


@router.get("/projects/{project_id}/items")
def items_page(request: Request, project_id: int, actor: PageActor, after: int = 0) -> Response:
    try:
        project = _project(request, actor, project_id)
        filters, given = _item_filters(request, project)
        page = dashboard_service.browse_items(_ctx(request), actor, project_id, after, PAGE_SIZE, **filters)
        annotators = dashboard_service.annotator_names(_ctx(request), actor, project_id)
    except GoldlabelError as exc:
        return _error(request, exc)
    choice = [q for q in project["label_schema"]["questions"] if q["kind"] == "choice"]
    keep = {k: v for k, v in given.items() if v}
    return _page(request, "items.html", {
        "project": project, "page": page, "given": given, "keep": keep, "after": after,
        "views": AnnotationViews(project["label_schema"]),
        "choice_questions": choice, "annotators": annotators, "statuses": ITEM_STATUSES, "active": "items",
        "sources": SOURCES, "splits": SPLITS, "undo": _undo_notice(request),
        "items_data": {"project_id": project_id, "filter": filters, "can_manage": project["can_manage"],
                       "deleted_view": filters.get("status") == "deleted"},
    })


@router.get("/projects/{project_id}/items/{item_id}")
def item_page(request: Request, project_id: int, item_id: int, actor: PageActor) -> Response:
    try:
        project = _project(request, actor, project_id)
        item = dashboard_service.item_view(_ctx(request), actor, project_id, item_id)
    except GoldlabelError as exc:
        return _error(request, exc)
    review = request.query_params.get("review") == "1"
    # Set by review.js after a review: the page is read again, so it shows the saved outcome.
    reviewed = request.query_params.get("reviewed")
    return _page(request, "item.html", {
        "project": project, "item": item, "review_mode": review, "active": "review" if review else "items",
        "reviewed": reviewed if reviewed in ("accept", "reject", "fix") else None,
        "views": AnnotationViews(project["label_schema"]),
        "review_data": {"project_id": project_id, "item_id": item_id, "label_schema": project["label_schema"],
                        "data": item["data"], "consensus": {c["question"]: c["value"] for c in item["consensus"]},
                        "is_gold": item["is_gold"], "next_review_id": item["next_review_id"]},
    })


@router.get("/projects/{project_id}/review")
def review_page(request: Request, project_id: int, actor: PageActor, after: int = 0) -> Response:
    try:
        project = _project(request, actor, project_id)
        page = dashboard_service.review_queue(_ctx(request), actor, project_id, after, PAGE_SIZE)
    except GoldlabelError as exc:
        return _error(request, exc)
    return _page(request, "review.html", {"project": project, "page": page, "after": after, "active": "review",
                                          "views": AnnotationViews(project["label_schema"])})


@router.get("/projects/{project_id}/review/next")
def review_next(request: Request, project_id: int, actor: PageActor, after: int = 0) -> Response:
    """Open the first item waiting for review after ``after`` (the queue's "next")."""
    try:
        next_id = dashboard_service.next_review_item(_ctx(request), actor, project_id, after)
    except GoldlabelError as exc:
        return _error(request, exc)
    target = f"/console/projects/{project_id}/review"
    if next_id is not None:
        target = f"/console/projects/{project_id}/items/{next_id}?review=1"
    return RedirectResponse(target, status_code=303)


@router.get("/users")
def users_page(request: Request, actor: PageActor, after: int = 0) -> Response:
    if actor.role not in ("admin", "manager"):
        return render_error(request, 403, "Not allowed", "Only managers and admins manage users.")
    ctx = _ctx(request)
    users = user_service.list_users(ctx, actor, after, PAGE_SIZE)
    tokens = user_service.list_tokens(ctx, actor, actor.id)
    return _page(request, "users.html", {
        "users": users, "tokens": tokens, "after": after, "active": "users",
        "next_after": users[-1]["id"] if len(users) == PAGE_SIZE else None,
        "creatable_roles": (("annotator", "reviewer", "manager", "admin") if actor.is_admin
                            else ("annotator", "reviewer")),
    })


def _id(value: str | None) -> int | None:
    number = _int(value)
    return number if number is not None and 0 <= number < 2**63 else None


def _day_ms(value: str | None, *, end: bool = False) -> int | None:
    """A YYYY-MM-DD form field as milliseconds (UTC midnight; ``end``: the next midnight)."""
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(day.timestamp() * 1000) + (86_400_000 if end else 0)


@router.get("/audit")
def audit_page(request: Request, actor: PageActor,
               before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None) -> Response:
    """The audit log with filters (actor, action, project, days), newest first, keyset-paged."""
    query = request.query_params
    form = {k: query.get(k, "").strip() for k in ("actor", "action", "project_id", "since", "until")}
    filters = {"actor_name": form["actor"] or None, "action": form["action"] or None,
               "project_id": _id(form["project_id"]), "since": _day_ms(form["since"]),
               "until": _day_ms(form["until"], end=True)}
    try:
        rows = audit_service.list_entries(_ctx(request), actor, filters, before, PAGE_SIZE)
    except GoldlabelError as exc:
        return _error(request, exc)
    keep = {k: v for k, v in form.items() if v}
    return _page(request, "audit.html", {
        "entries": rows, "form": form, "actions": audit_service.ACTIONS, "active": "audit",
        "next_query": urlencode({**keep, "before": rows[-1]["id"]}) if len(rows) == PAGE_SIZE else None,
        "first_query": urlencode(keep) if before is not None else None,
        "export_query": urlencode({k: v for k, v in {
            "actor_name": filters["actor_name"], "action": filters["action"],
            "project_id": filters["project_id"], "since": filters["since"], "until": filters["until"],
        }.items() if v is not None}),
        "fmt_seconds": lambda ms: datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "fmt_detail": lambda d: json.dumps(d, sort_keys=True, separators=(", ", ": ")) if d else "",
    })
