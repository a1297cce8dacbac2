"""The console's Models page (reviewers and up): the project model's versions and metrics,
auto-labeling with its threshold and achieved audit accuracy, the label-error audit ranked, and
the worker's last error. Reads through ``services.models``; its buttons (train, auto-labeling
on/off) call /api/v1 from ``static/js/console/models.js``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from goldlabel.domain.errors import GoldlabelError
from goldlabel.services import models as model_service
from goldlabel.web.console import _ctx, _error, _page, _project
from goldlabel.web.rendering import PageActor

router = APIRouter(prefix="/console", include_in_schema=False)

AUDIT_ROWS = 50


@router.get("/projects/{project_id}/models")
def models_page(request: Request, project_id: int, actor: PageActor) -> Response:
    ctx = _ctx(request)
    try:
        project = _project(request, actor, project_id, "review")
        status = model_service.status(ctx, actor, project_id)
        issues = model_service.label_audit(ctx, actor, project_id, AUDIT_ROWS)
    except GoldlabelError as exc:
        return _error(request, exc)
    return _page(request, "models.html", {"project": project, "m": status, "issues": issues, "active": "models"})
