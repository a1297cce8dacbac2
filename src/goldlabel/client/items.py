"""``Client`` methods: items, answers and events of a project."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Literal
from urllib.parse import quote

from goldlabel.client._base import ClientBase, OnConflict, _query
from goldlabel.schemas import (
    AnswerPublic,
    EventPublic,
    ImportReport,
    ItemDetail,
    ItemPublic,
    ItemStatus,
)


class ItemsMixin(ClientBase):
    """Items (add, list, get, delete, bulk actions, restore, report), answers and events."""

    def add_items(
        self,
        project_id: int,
        items: Iterable[dict[str, Any]],
        *,
        on_conflict: OnConflict = "skip",
        partial: bool = False,
    ) -> ImportReport:
        """Add items in one request, rows as in a JSONL import (``external_id``, ``data`` and
        optionally ``priority``, ``meta``, ``predictions``, ``gold``). All or nothing unless
        ``partial``: invalid rows raise ``ImportFailed`` whose ``.report`` lists them by row
        number (1-based). Existing ``external_id``\\ s are skipped or, with
        ``on_conflict="update"``, updated. For large data sets use ``import_file``."""
        res = self._request(
            "POST",
            f"/projects/{int(project_id)}/items",
            json=list(items),
            params=_query(on_conflict=on_conflict, partial=partial),
        )
        return ImportReport.model_validate(res.json())

    def list_items(
        self,
        project_id: int,
        *,
        status: ItemStatus | Literal["deleted"] | None = None,
        is_gold: bool | None = None,
        annotator_id: int | None = None,
        question: str | None = None,
        label: str | None = None,
        min_confidence: float | None = None,
        max_confidence: float | None = None,
        disagreement: bool | None = None,
        q: str | None = None,
        source: Literal["consensus", "review", "gold", "auto"] | None = None,
        flag: Literal["media_broken"] | None = None,
        split: Literal["train", "validation", "test"] | None = None,
        meta: dict[str, str] | None = None,
        page_size: int = 100,
    ) -> Iterator[ItemPublic]:
        """The project's items in id order (reviewers and managers), optionally only those with
        ``status`` (``"deleted"``: items still in their undo window), gold or not, answered by
        ``annotator_id``, or whose consensus for ``question`` is ``label`` / has a confidence
        within [min_confidence, max_confidence] / has answers that are not unanimous
        (``disagreement=True``); ``q``: text in the data or the external_id; ``source``: where
        the label came from; ``flag``: reported items; ``split``; ``meta``: fields that must
        equal the given values. Pages are keyset pages (no count)."""
        return self._paginate(
            f"/projects/{int(project_id)}/items",
            ItemPublic,
            page_size,
            status=status,
            is_gold=is_gold,
            annotator_id=annotator_id,
            question=question,
            label=label,
            min_confidence=min_confidence,
            max_confidence=max_confidence,
            disagreement=disagreement,
            q=q,
            source=source,
            flag=flag,
            split=split,
            meta=[f"{k}={v}" for k, v in meta.items()] if meta else None,
        )

    def get_item(self, project_id: int, item_id: int) -> ItemDetail:
        """The item with its answers, predictions, consensus and (managers only) gold answer."""
        return self._get_model(f"/projects/{int(project_id)}/items/{int(item_id)}", ItemDetail)

    def delete_item(self, project_id: int, item_id: int) -> None:
        """Soft delete: hidden everywhere; restorable with restore_items for the server's
        ``delete_undo_s`` (10 minutes by default), then purged."""
        self._request("DELETE", f"/projects/{int(project_id)}/items/{int(item_id)}")

    def bulk_items(
        self,
        project_id: int,
        action: Literal["review", "priority", "delete"],
        *,
        item_ids: list[int] | None = None,
        filter: dict[str, Any] | None = None,
        priority: int | None = None,
    ) -> dict[str, Any]:
        """Apply ``action`` to ``item_ids`` or to every item matching ``filter`` (list_items'
        filters as a dict: ``{"status": "open", "q": "refund"}``; ``{}`` is every item): ``review``
        sends open and final items to review, ``priority`` sets ``priority``, ``delete`` soft
        deletes. Returns ``matched``, ``changed``, ``batches`` and, for a delete,
        ``deleted_at`` (pass it to restore_items to undo) and ``undo_until``."""
        body: dict[str, Any] = {"action": action}
        if item_ids is not None:
            body["item_ids"] = [int(i) for i in item_ids]
        if filter is not None:
            body["filter"] = filter
        if priority is not None:
            body["priority"] = int(priority)
        return self._request("POST", f"/projects/{int(project_id)}/items/bulk", json=body).json()

    def restore_items(
        self, project_id: int, *, item_ids: list[int] | None = None, deleted_at: int | None = None
    ) -> int:
        """Undo a delete (within ``delete_undo_s``): these items, or every item of the delete
        stamped ``deleted_at``. Returns how many came back."""
        body: dict[str, Any] = {}
        if item_ids is not None:
            body["item_ids"] = [int(i) for i in item_ids]
        if deleted_at is not None:
            body["deleted_at"] = int(deleted_at)
        return self._request("POST", f"/projects/{int(project_id)}/items/restore", json=body).json()["restored"]

    def report_item(
        self, project_id: int, item_id: int | str, *, lease_token: str | None = None, reason: str = "media_broken"
    ) -> dict[str, Any]:
        """Report an item that cannot be answered (its media failed to load): it is flagged and
        goes to review. An annotator passes the item as the lease shows it (``lease.item.id``,
        its opaque reference) and the lease's token (the lease is skipped); reviewers and
        managers may pass an item id."""
        body: dict[str, Any] = {"reason": reason}
        if lease_token is not None:
            body["lease_token"] = lease_token
        ref = str(int(item_id)) if isinstance(item_id, int) else quote(item_id, safe="")
        return self._request("POST", f"/projects/{int(project_id)}/items/{ref}/report", json=body).json()

    def list_answers(self, project_id: int, *, page_size: int = 100) -> Iterator[AnswerPublic]:
        """Every answer in the project, oldest first (reviewers and managers)."""
        return self._paginate(f"/projects/{int(project_id)}/answers", AnswerPublic, page_size)

    def list_events(self, project_id: int, *, page_size: int = 100) -> Iterator[EventPublic]:
        """The project's events outbox, oldest first (managers): ``answer.created``,
        ``item.final``, ``import.completed``..."""
        return self._paginate(f"/projects/{int(project_id)}/events", EventPublic, page_size)
