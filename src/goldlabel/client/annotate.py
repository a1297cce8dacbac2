"""``Client`` methods for the annotate loop: lease, submit, skip, release, your answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from goldlabel.client._base import ClientBase
from goldlabel.schemas import (
    ItemStatus,
    LeasePublic,
    OwnAnswer,
    SubmitResult,
    TaskItem,
)

Lease = LeasePublic
"""An item leased to you: ``token`` (pass it to submit / skip / release), ``expires_at`` (ms),
``item`` (``id``, ``data``, and ``predictions`` when the project shows them)."""


class MyAnswer(OwnAnswer):
    """One of your own answers, with the item as you saw it and the item's current status."""

    item: TaskItem
    item_status: ItemStatus


class AnnotateMixin(ClientBase):
    """The annotate loop: lease an item, submit / skip / release it, list and edit your own answers."""

    def lease_next(self, project_id: int) -> Lease | None:
        """Lease the next item to answer; ``None`` when there is no work for you now."""
        res = self._request("POST", f"/projects/{int(project_id)}/next")
        if res.status_code == httpx.codes.NO_CONTENT:
            return None
        return Lease.model_validate(res.json())

    def submit_answer(
        self,
        project_id: int,
        lease_token: str,
        value: dict[str, Any],
        *,
        duration_ms: int | None = None,
        idempotency_key: str | None = None,
    ) -> SubmitResult:
        """Answer the leased item. Safe to retry: the same lease token (or the same
        ``idempotency_key``) returns the first result instead of a second answer."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        body = {"lease_token": lease_token, "value": value, "duration_ms": duration_ms}
        res = self._request(
            "POST", f"/projects/{int(project_id)}/answers", json=body, headers=headers
        )
        return SubmitResult.model_validate(res.json())

    def skip_item(self, project_id: int, lease_token: str) -> None:
        """Give the item back; it will not be offered to you again."""
        self._request(
            "POST", f"/projects/{int(project_id)}/skip", json={"lease_token": lease_token}
        )

    def release_item(self, project_id: int, lease_token: str) -> None:
        """Give the item back to the queue; it may be offered to you again later."""
        self._request(
            "POST", f"/projects/{int(project_id)}/release", json={"lease_token": lease_token}
        )

    def list_my_answers(self, project_id: int, *, page_size: int = 100) -> Iterator[MyAnswer]:
        """Your own answers in the project, newest first."""
        return self._paginate(f"/projects/{int(project_id)}/my-answers", MyAnswer, page_size)

    def edit_answer(self, project_id: int, answer_id: int, value: dict[str, Any]) -> OwnAnswer:
        """Change one of your answers while its item is still open."""
        path = f"/projects/{int(project_id)}/my-answers/{int(answer_id)}"
        return OwnAnswer.model_validate(self._request("PUT", path, json={"value": value}).json())
