"""The console's webhooks page (managers): subscriptions, each one's delivery log, re-send.

Kept apart from ``console.py``: it reads through ``services.webhooks`` and, like every console
page, changes things only through /api/v1 from its JavaScript (``static/js/console/webhooks.js``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from goldlabel.domain.errors import GoldlabelError
from goldlabel.domain.webhooks import EVENT_TYPES
from goldlabel.services import webhooks as webhook_service
from goldlabel.web.console import _ctx, _error, _page, _project
from goldlabel.web.rendering import PageActor

router = APIRouter(prefix="/console", include_in_schema=False)

LOG_SIZE = 50


@router.get("/projects/{project_id}/webhooks")
def webhooks_page(request: Request, project_id: int, actor: PageActor, webhook: int | None = None) -> Response:
    ctx = _ctx(request)
    try:
        project = _project(request, actor, project_id, "manage")
        hooks = webhook_service.list_subscriptions(ctx, actor, project_id)
        selected = next((h for h in hooks if h["id"] == webhook), hooks[0] if hooks else None)
        log = (webhook_service.list_deliveries(ctx, actor, project_id, selected["id"], limit=LOG_SIZE)
               if selected else [])
    except GoldlabelError as exc:
        return _error(request, exc)
    return _page(request, "webhooks.html", {
        "project": project, "hooks": hooks, "selected": selected, "log": log,
        "event_types": EVENT_TYPES, "active": "webhooks",
    })
