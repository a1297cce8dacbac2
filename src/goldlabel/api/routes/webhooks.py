"""Webhooks: a project's subscriptions, their delivery log and re-send (managers)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field

from goldlabel.api.deps import ContextDep, CurrentActor
from goldlabel.services import webhooks as webhook_service

router = APIRouter(prefix="/projects/{project_id}/webhooks", tags=["webhooks"])


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2000, description="Where deliveries are POSTed (http or https).")
    event_types: list[str] = Field(
        description="Event types, a prefix such as `item.*`, or `*` (docs/webhooks.md lists them)."
    )
    description: str = Field("", max_length=500)


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(None, max_length=2000)
    event_types: list[str] | None = None
    description: str | None = Field(None, max_length=500)
    is_active: bool | None = None


@router.post("", status_code=status.HTTP_201_CREATED)
def create_webhook(project_id: int, body: WebhookCreate, ctx: ContextDep, actor: CurrentActor) -> dict[str, Any]:
    """Subscribe a URL to the project's events. The answer holds the signing `secret`: it is
    never shown again."""
    return webhook_service.create_subscription(ctx, actor, project_id, body.url, body.event_types,
                                               body.description)


@router.get("")
def list_webhooks(project_id: int, ctx: ContextDep, actor: CurrentActor) -> list[dict[str, Any]]:
    return webhook_service.list_subscriptions(ctx, actor, project_id)


@router.get("/{webhook_id}")
def get_webhook(project_id: int, webhook_id: int, ctx: ContextDep, actor: CurrentActor) -> dict[str, Any]:
    return webhook_service.get_subscription(ctx, actor, project_id, webhook_id)


@router.patch("/{webhook_id}")
def update_webhook(project_id: int, webhook_id: int, body: WebhookUpdate, ctx: ContextDep,
                   actor: CurrentActor) -> dict[str, Any]:
    """Change the URL, event types, description, or pause it (`is_active: false`)."""
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    return webhook_service.update_subscription(ctx, actor, project_id, webhook_id, changes)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_webhook(project_id: int, webhook_id: int, ctx: ContextDep, actor: CurrentActor) -> None:
    webhook_service.delete_subscription(ctx, actor, project_id, webhook_id)


@router.get("/{webhook_id}/deliveries")
def list_webhook_deliveries(
    project_id: int,
    webhook_id: int,
    ctx: ContextDep,
    actor: CurrentActor,
    before: Annotated[int, Query(ge=0, description="Cursor: deliveries older than this id.")] = 0,
    limit: Annotated[int, Query(ge=1)] = 100,
    status_: Annotated[Literal["pending", "delivered", "failed"] | None, Query(alias="status")] = None,
) -> list[dict[str, Any]]:
    """The delivery log, newest first: status, attempts, last HTTP status and error."""
    limit = min(limit, ctx.settings.page_size_max)
    return webhook_service.list_deliveries(ctx, actor, project_id, webhook_id, before=before, limit=limit,
                                           status=status_)


@router.post("/{webhook_id}/deliveries/{delivery_id}/resend")
def resend_webhook_delivery(project_id: int, webhook_id: int, delivery_id: int, ctx: ContextDep,
                            actor: CurrentActor) -> dict[str, Any]:
    """Send a delivery again (same event id), with a fresh retry window."""
    return webhook_service.resend_delivery(ctx, actor, project_id, webhook_id, delivery_id)
