"""``Client`` methods: webhooks and their deliveries."""

from __future__ import annotations

from typing import Any, Literal

from goldlabel.client._base import UNSET, ClientBase, _changes, _query


class WebhooksMixin(ClientBase):
    """A project's webhooks and their deliveries."""

    def create_webhook(
        self, project_id: int, url: str, event_types: list[str], *, description: str = ""
    ) -> dict[str, Any]:
        """Subscribe ``url`` to the project's events (``["item.final"]``, ``["item.*"]``,
        ``["*"]``). The answer's ``secret`` signs every delivery: keep it, it is never shown
        again (docs/webhooks.md)."""
        body = {"url": url, "event_types": list(event_types), "description": description}
        return self._request("POST", f"/projects/{int(project_id)}/webhooks", json=body).json()

    def list_webhooks(self, project_id: int) -> list[dict[str, Any]]:
        return self._request("GET", f"/projects/{int(project_id)}/webhooks").json()

    def get_webhook(self, project_id: int, webhook_id: int) -> dict[str, Any]:
        return self._request("GET", f"/projects/{int(project_id)}/webhooks/{int(webhook_id)}").json()

    def update_webhook(
        self,
        project_id: int,
        webhook_id: int,
        *,
        url: str = UNSET,
        event_types: list[str] = UNSET,
        description: str = UNSET,
        is_active: bool = UNSET,
    ) -> dict[str, Any]:
        """Change the given fields only; ``is_active=False`` pauses deliveries."""
        body = _changes(url=url, event_types=event_types, description=description, is_active=is_active)
        path = f"/projects/{int(project_id)}/webhooks/{int(webhook_id)}"
        return self._request("PATCH", path, json=body).json()

    def delete_webhook(self, project_id: int, webhook_id: int) -> None:
        self._request("DELETE", f"/projects/{int(project_id)}/webhooks/{int(webhook_id)}")

    def list_webhook_deliveries(
        self,
        project_id: int,
        webhook_id: int,
        *,
        status: Literal["pending", "delivered", "failed"] | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """The delivery log, newest first; ``before``: a delivery id, for older ones."""
        path = f"/projects/{int(project_id)}/webhooks/{int(webhook_id)}/deliveries"
        return self._request("GET", path, params=_query(status=status, before=before, limit=limit)).json()

    def resend_webhook_delivery(self, project_id: int, webhook_id: int, delivery_id: int) -> dict[str, Any]:
        """Send a delivery again (same event id), with a fresh retry window."""
        path = f"/projects/{int(project_id)}/webhooks/{int(webhook_id)}/deliveries/{int(delivery_id)}/resend"
        return self._request("POST", path).json()
