"""``Client``: the goldlabel REST API (``/api/v1``) from Python, over httpx.

One method per route. Lists are iterators that follow the keyset cursor (``next_after``) page
by page; they fetch the first page when called, so a bad id or a missing permission raises
there, not at the first ``next()``. Objects come back as the wire models of
``goldlabel.schemas``; errors raise ``goldlabel.client.ApiError`` subclasses.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal, Self, TypeVar

import httpx
from pydantic import BaseModel

from goldlabel import __version__
from goldlabel.client.errors import ApiError
from goldlabel.schemas import (
    AnswerPublic,
    AuditEntry,
    EventPublic,
    ImportReport,
    ItemDetail,
    ItemPublic,
    ItemStatus,
    LeasePublic,
    MemberPublic,
    ProjectPublic,
    Role,
    SchemaVersionPublic,
    SnapshotPublic,
    SubmitResult,
    TaskItem,
    TokenPublic,
    TotpEnrolment,
    TotpStatus,
    UserPublic,
)

__all__ = ["UNSET", "Client", "Lease", "MyAnswer"]

API_PREFIX = "/api/v1"
ExportFormat = Literal["jsonl", "csv", "parquet", "json", "coco", "yolo", "voc", "conll", "spacy", "hf"]
ImportFormat = Literal["jsonl", "ndjson", "csv", "parquet", "json", "labelstudio", "coco", "yolo"]
ReviewAction = Literal["accept", "reject", "fix"]
OnConflict = Literal["skip", "update"]
M = TypeVar("M", bound=BaseModel)

Lease = LeasePublic
"""An item leased to you: ``token`` (pass it to submit / skip / release), ``expires_at`` (ms),
``item`` (``id``, ``data``, and ``predictions`` when the project shows them)."""


class MyAnswer(AnswerPublic):
    """One of your own answers, with the item as you saw it and the item's current status."""

    item: TaskItem
    item_status: ItemStatus


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
"""Default of update arguments: leave the field as it is (``None`` may be a real value)."""


def _changes(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not UNSET}


def _query(**params: Any) -> dict[str, Any]:
    """Query parameters without the unset (None) ones; booleans as the API spells them."""
    return {
        k: (str(v).lower() if isinstance(v, bool) else v)
        for k, v in params.items()
        if v is not None
    }


class Client:
    """A goldlabel API client.

    >>> with Client("http://localhost:8000", token="gl_...") as gl:
    ...     project = gl.create_project("reviews", {"questions": [
    ...         {"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"]}]})

    ``base_url`` is the server's root (``/api/v1`` is added; a URL that already ends with it is
    fine too). ``token`` is an API token (``gl_...``); without one only the error paths work.
    ``transport`` replaces the network, e.g. ``ASGIAppTransport(app)`` to call an app in
    process; the client owns it and closes it on ``close()``. ``timeout`` is in seconds.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30,
    ) -> None:
        root = base_url.rstrip("/")
        root = root.removesuffix(API_PREFIX)
        headers = {"User-Agent": f"goldlabel-python/{__version__}", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base_url = root
        self._http = httpx.Client(
            base_url=root + API_PREFIX, headers=headers, transport=transport, timeout=timeout
        )

    # -- plumbing -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool (and the transport)."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.base_url!r})"

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._http.request(method, path, **kwargs)
        if response.is_error:
            raise ApiError.from_response(response)
        return response

    def _get_model(self, path: str, model: type[M], **kwargs: Any) -> M:
        return model.model_validate(self._request("GET", path, **kwargs).json())

    def _paginate(self, path: str, model: type[M], page_size: int, **params: Any) -> Iterator[M]:
        query = _query(limit=page_size, **params)
        # Fetch the first page now: errors surface at the call, not at the first next().
        first = self._request("GET", path, params=query).json()
        return self._follow(path, model, query, first)

    def _follow(self, path: str, model: type[M], query: dict[str, Any], page: dict) -> Iterator[M]:
        while True:
            for row in page["items"]:
                yield model.model_validate(row)
            after = page.get("next_after")
            if after is None:
                return
            page = self._request("GET", path, params={**query, "after": after}).json()

    # -- users and tokens -----------------------------------------------------------------

    def me(self) -> UserPublic:
        """The user this client's token belongs to."""
        return self._get_model("/users/me", UserPublic)

    def list_users(self, *, page_size: int = 100) -> Iterator[UserPublic]:
        """Every user (admins and managers only)."""
        return self._paginate("/users", UserPublic, page_size)

    def create_user(
        self,
        username: str,
        role: Role = "annotator",
        *,
        password: str | None = None,
        display_name: str = "",
    ) -> UserPublic:
        """Create a user. Managers create annotators and reviewers; admins anyone. Without a
        password the user signs in only with API tokens."""
        body = {
            "username": username,
            "role": role,
            "display_name": display_name,
            "password": password,
        }
        return UserPublic.model_validate(self._request("POST", "/users", json=body).json())

    def get_user(self, user_id: int) -> UserPublic:
        return self._get_model(f"/users/{int(user_id)}", UserPublic)

    def update_user(
        self,
        user_id: int,
        *,
        display_name: str = UNSET,
        password: str = UNSET,
        role: Role = UNSET,
        is_active: bool = UNSET,
    ) -> UserPublic:
        """Change the given fields only. Users change their own display name and password;
        managers suspend annotators and reviewers (``is_active=False``); admins change anything."""
        body = _changes(
            display_name=display_name, password=password, role=role, is_active=is_active
        )
        return UserPublic.model_validate(
            self._request("PATCH", f"/users/{int(user_id)}", json=body).json()
        )

    def create_token(self, user_id: int, name: str = "") -> TokenPublic:
        """A new API token; its secret is in ``.token`` of this result and never shown again."""
        res = self._request("POST", f"/users/{int(user_id)}/tokens", json={"name": name})
        return TokenPublic.model_validate(res.json())

    def list_tokens(self, user_id: int) -> list[TokenPublic]:
        """The user's tokens (prefixes only, never the secrets)."""
        res = self._request("GET", f"/users/{int(user_id)}/tokens")
        return [TokenPublic.model_validate(t) for t in res.json()]

    def revoke_token(self, user_id: int, token_id: int) -> None:
        self._request("DELETE", f"/users/{int(user_id)}/tokens/{int(token_id)}")

    def end_sessions(self, user_id: int) -> None:
        """Log the user out of every browser they are logged in to (their API tokens keep
        working). Yourself, admins anyone, managers annotators and reviewers."""
        self._request("DELETE", f"/users/{int(user_id)}/sessions")

    # -- two-factor login (TOTP) -----------------------------------------------------------

    def get_totp(self, user_id: int) -> TotpStatus:
        """Whether the user's two-factor login is on (yourself, or any user for an admin)."""
        return self._get_model(f"/users/{int(user_id)}/totp", TotpStatus)

    def start_totp(self, user_id: int) -> TotpEnrolment:
        """Start enrolling yourself: ``.secret`` (and ``.otpauth_uri``) for your authenticator
        app, shown this once. Then ``confirm_totp`` with a first code."""
        return TotpEnrolment.model_validate(self._request("POST", f"/users/{int(user_id)}/totp").json())

    def confirm_totp(self, user_id: int, code: str) -> list[str]:
        """Turn two-factor login on with a code from the app; returns the ten recovery codes
        (single use; shown this once)."""
        res = self._request("POST", f"/users/{int(user_id)}/totp/confirm", json={"code": code})
        return list(res.json()["recovery_codes"])

    def disable_totp(self, user_id: int, code: str | None = None) -> TotpStatus:
        """Turn two-factor login off: yourself with a current code (or a recovery code); an
        admin turns off another user's without one (a lost phone)."""
        res = self._request("POST", f"/users/{int(user_id)}/totp/disable", json={"code": code})
        return TotpStatus.model_validate(res.json())

    # -- audit log ------------------------------------------------------------------------

    def list_audit(
        self,
        *,
        actor_id: int | None = None,
        actor_name: str | None = None,
        action: str | None = None,
        project_id: int | None = None,
        since: int | None = None,
        until: int | None = None,
        page_size: int = 100,
    ) -> Iterator[AuditEntry]:
        """Audit entries, newest first, following the ``before`` cursor (admins: all; managers:
        their projects'). ``since`` / ``until``: milliseconds since the epoch."""
        query = _query(actor_id=actor_id, actor_name=actor_name, action=action, project_id=project_id,
                       since=since, until=until, limit=page_size)
        page = self._request("GET", "/audit", params=query).json()
        return self._follow_before(query, page)

    def _follow_before(self, query: dict[str, Any], page: dict) -> Iterator[AuditEntry]:
        while True:
            for row in page["items"]:
                yield AuditEntry.model_validate(row)
            if page.get("next_before") is None:
                return
            page = self._request("GET", "/audit", params={**query, "before": page["next_before"]}).json()

    def export_audit(
        self,
        dest: str | os.PathLike[str] | IO[bytes],
        format: Literal["csv", "jsonl"] = "jsonl",
        *,
        actor_id: int | None = None,
        actor_name: str | None = None,
        action: str | None = None,
        project_id: int | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> int:
        """Stream every matching audit entry, oldest first, as CSV or JSON Lines into ``dest``
        (a path or a binary stream); returns the bytes written."""
        params = _query(format=format, actor_id=actor_id, actor_name=actor_name, action=action,
                        project_id=project_id, since=since, until=until)
        return self._download("/audit/export", params, dest)

    # -- projects and members -------------------------------------------------------------

    def list_projects(self, *, page_size: int = 100) -> Iterator[ProjectPublic]:
        """The projects you are a member of (every project for admins)."""
        return self._paginate("/projects", ProjectPublic, page_size)

    def create_project(
        self,
        name: str,
        label_schema: dict[str, Any],
        *,
        description: str = "",
        instructions: str = "",
        overlap_min: int = 1,
        overlap_max: int | None = None,
        lease_ttl_s: int | None = None,
        settings: dict[str, Any] | None = None,
    ) -> ProjectPublic:
        """Create a project (managers and admins); you become its manager. ``settings`` are
        quality settings (``goldlabel.schemas.QualitySettings``); omitted ones take defaults."""
        body: dict[str, Any] = {
            "name": name,
            "label_schema": label_schema,
            "description": description,
            "instructions": instructions,
            "overlap_min": overlap_min,
            "overlap_max": overlap_max,
            "lease_ttl_s": lease_ttl_s,
        }
        if settings is not None:
            body["settings"] = settings
        return ProjectPublic.model_validate(self._request("POST", "/projects", json=body).json())

    def get_project(self, project_id: int) -> ProjectPublic:
        """The project, with your ``role`` and, for reviewers and managers, item ``counts``."""
        return self._get_model(f"/projects/{int(project_id)}", ProjectPublic)

    def update_project(
        self,
        project_id: int,
        *,
        name: str = UNSET,
        description: str = UNSET,
        instructions: str = UNSET,
        label_schema: dict[str, Any] = UNSET,
        overlap_min: int = UNSET,
        overlap_max: int = UNSET,
        lease_ttl_s: int = UNSET,
        settings: dict[str, Any] = UNSET,
    ) -> ProjectPublic:
        """Change the given fields only; ``settings`` is merged into the current settings."""
        body = _changes(
            name=name,
            description=description,
            instructions=instructions,
            label_schema=label_schema,
            overlap_min=overlap_min,
            overlap_max=overlap_max,
            lease_ttl_s=lease_ttl_s,
            settings=settings,
        )
        res = self._request("PATCH", f"/projects/{int(project_id)}", json=body)
        return ProjectPublic.model_validate(res.json())

    def list_schema_versions(self, project_id: int) -> list[SchemaVersionPublic]:
        """Every label schema the project has had, oldest first, with the answers given under each."""
        res = self._request("GET", f"/projects/{int(project_id)}/schema-versions")
        return [SchemaVersionPublic.model_validate(v) for v in res.json()]

    def delete_project(self, project_id: int) -> None:
        """Delete the project with its items, answers and leases: hidden at once, restorable
        with restore_project for the server's ``delete_undo_s``, then purged."""
        self._request("DELETE", f"/projects/{int(project_id)}")

    def restore_project(self, project_id: int) -> ProjectPublic:
        """Undo delete_project within ``delete_undo_s``."""
        return ProjectPublic.model_validate(self._request("POST", f"/projects/{int(project_id)}/restore").json())

    def list_members(self, project_id: int) -> list[MemberPublic]:
        res = self._request("GET", f"/projects/{int(project_id)}/members")
        return [MemberPublic.model_validate(m) for m in res.json()]

    def set_member(self, project_id: int, user_id: int, role: Role = "annotator") -> MemberPublic:
        """Add a user to the project, or change their role in it."""
        body = {"user_id": int(user_id), "role": role}
        res = self._request("PUT", f"/projects/{int(project_id)}/members", json=body)
        return MemberPublic.model_validate(res.json())

    def remove_member(self, project_id: int, user_id: int) -> None:
        self._request("DELETE", f"/projects/{int(project_id)}/members/{int(user_id)}")

    # -- items, answers, events -----------------------------------------------------------

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
        self, project_id: int, item_id: int, *, lease_token: str | None = None, reason: str = "media_broken"
    ) -> dict[str, Any]:
        """Report an item that cannot be answered (its media failed to load): it is flagged and
        goes to review. An annotator passes the lease's token (the lease is skipped)."""
        body: dict[str, Any] = {"reason": reason}
        if lease_token is not None:
            body["lease_token"] = lease_token
        return self._request("POST", f"/projects/{int(project_id)}/items/{int(item_id)}/report", json=body).json()

    def list_answers(self, project_id: int, *, page_size: int = 100) -> Iterator[AnswerPublic]:
        """Every answer in the project, oldest first (reviewers and managers)."""
        return self._paginate(f"/projects/{int(project_id)}/answers", AnswerPublic, page_size)

    def list_events(self, project_id: int, *, page_size: int = 100) -> Iterator[EventPublic]:
        """The project's events outbox, oldest first (managers): ``answer.created``,
        ``item.final``, ``import.completed``..."""
        return self._paginate(f"/projects/{int(project_id)}/events", EventPublic, page_size)

    # -- the annotate loop ----------------------------------------------------------------

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

    def edit_answer(self, project_id: int, answer_id: int, value: dict[str, Any]) -> AnswerPublic:
        """Change one of your answers while its item is still open."""
        path = f"/projects/{int(project_id)}/my-answers/{int(answer_id)}"
        return AnswerPublic.model_validate(self._request("PUT", path, json={"value": value}).json())

    # -- quality and review ---------------------------------------------------------------

    def list_annotators(self, project_id: int) -> list[dict[str, Any]]:
        """Every annotator who answered in the project: answers, gold accuracy, estimated skill
        with its interval, status and the evidence behind it."""
        return self._request("GET", f"/projects/{int(project_id)}/annotators").json()

    def set_annotator_status(
        self, project_id: int, annotator_id: int, status: Literal["active", "suspended"]
    ) -> dict[str, Any]:
        """Suspend an annotator in this project (no more work is leased to them) or reinstate them."""
        path = f"/projects/{int(project_id)}/annotators/{int(annotator_id)}"
        return self._request("PATCH", path, json={"status": status}).json()

    def get_agreement(self, project_id: int) -> dict[str, Any]:
        """Inter-annotator agreement (Krippendorff's alpha, Fleiss' kappa) per choice question."""
        return self._request("GET", f"/projects/{int(project_id)}/agreement").json()

    def refit_project(self, project_id: int) -> dict[str, Any]:
        """Re-fit the project's aggregation model now instead of waiting for the background run."""
        return self._request("POST", f"/projects/{int(project_id)}/refit").json()

    def review_item(
        self,
        project_id: int,
        item_id: int,
        action: ReviewAction,
        *,
        value: dict[str, Any] | None = None,
        comment: str = "",
    ) -> dict[str, Any]:
        """Accept the item's consensus, reject it back to the queue, or ``fix`` it with ``value``."""
        body = {"action": action, "value": value, "comment": comment}
        path = f"/projects/{int(project_id)}/items/{int(item_id)}/reviews"
        return self._request("POST", path, json=body).json()

    def list_reviews(self, project_id: int, item_id: int) -> list[dict[str, Any]]:
        """The item's reviews, oldest first."""
        return self._request(
            "GET", f"/projects/{int(project_id)}/items/{int(item_id)}/reviews"
        ).json()

    # -- webhooks -------------------------------------------------------------------------

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

    # -- models in the loop -----------------------------------------------------------------

    def get_model_status(self, project_id: int) -> dict[str, Any]:
        """The project model: settings, embedding progress, last error, auto-labeling (threshold,
        audits, achieved accuracy) and the versions with their metrics, newest first."""
        return self._request("GET", f"/projects/{int(project_id)}/models").json()

    def train_model(self, project_id: int) -> dict[str, Any]:
        """Train a new model version now (``queued``: true when the worker is busy with the
        project and trains next); the answer carries the new status."""
        return self._request("POST", f"/projects/{int(project_id)}/models/train").json()

    def update_model_settings(
        self,
        project_id: int,
        *,
        question: str = UNSET,
        retrain_every: int = UNSET,
        min_labels: int = UNSET,
        auto_label: bool = UNSET,
        target: float = UNSET,
        delta: float = UNSET,
        audit_fraction: float = UNSET,
        model_annotator: bool = UNSET,
        active_learning: str = UNSET,
        active_batch: int = UNSET,
    ) -> dict[str, Any]:
        """Change the given model settings only (auto-labeling, its target and audit share, the
        retrain cadence, the model as an annotator, the active-learning policy); answers the
        model status."""
        body = _changes(question=question, retrain_every=retrain_every, min_labels=min_labels,
                        auto_label=auto_label, target=target, delta=delta, audit_fraction=audit_fraction,
                        model_annotator=model_annotator, active_learning=active_learning,
                        active_batch=active_batch)
        return self._request("PATCH", f"/projects/{int(project_id)}/models/settings", json=body).json()

    def list_label_issues(self, project_id: int, *, limit: int = 100) -> list[dict[str, Any]]:
        """Final labels the newest model calls likely wrong, most suspicious first."""
        return self._request("GET", f"/projects/{int(project_id)}/models/audit", params={"limit": limit}).json()

    def send_label_issues_to_review(self, project_id: int, item_ids: list[int]) -> dict[str, Any]:
        """Send flagged items back to review with the audit's reason; ``{sent, skipped}``."""
        body = {"item_ids": [int(i) for i in item_ids]}
        return self._request("POST", f"/projects/{int(project_id)}/models/audit/review", json=body).json()

    # -- files ----------------------------------------------------------------------------

    def import_file(
        self,
        project_id: int,
        file: str | os.PathLike[str] | IO[bytes],
        *,
        on_conflict: OnConflict = "skip",
        partial: bool = False,
        format: ImportFormat | None = None,
        target: Literal["predictions", "gold"] | None = None,
        question: str | None = None,
        model_version: str | None = None,
        id_field: str | None = None,
    ) -> ImportReport:
        """Upload a JSONL, CSV or Parquet file of items (``format`` defaults to the one the file
        name's extension says). The file is streamed, not read into memory. Same rules as
        ``add_items``: all or nothing unless ``partial``; errors carry line numbers.

        Files of other tools: a Label Studio JSON export (``format="labelstudio"``, found by
        content in a ``.json`` file; ``id_field`` names a data field for the external_id) makes
        items with their answers, predictions and gold; a COCO ``.json`` or a YOLO ``.zip``
        (``format="coco"`` / ``"yolo"``) puts boxes on the project's items as ``target``
        predictions (``model_version``) or gold, for the boxes ``question``."""
        params = _query(on_conflict=on_conflict, partial=partial, format=format, target=target, question=question,
                        model_version=model_version, id_field=id_field)
        path = f"/projects/{int(project_id)}/imports"
        if isinstance(file, (str, os.PathLike)):
            with open(file, "rb") as stream:
                files = {"file": (Path(file).name, stream)}
                res = self._request("POST", path, files=files, params=params)
        else:
            name = Path(str(getattr(file, "name", "") or "items.jsonl")).name
            res = self._request("POST", path, files={"file": (name, file)}, params=params)
        return ImportReport.model_validate(res.json())

    def upload_media(
        self,
        project_id: int,
        files: Iterable[str | os.PathLike[str]],
        *,
        sidecar: str | os.PathLike[str] | None = None,
        on_conflict: OnConflict = "skip",
        partial: bool = False,
    ) -> ImportReport:
        """Upload media files (images, audio, video, PDF, UTF-8 text; or one ``.zip`` of them):
        one item per file, its external_id the file name (a zip's entries: their paths). An
        optional ``sidecar`` JSONL / CSV adds fields to the item of each file (column ``file``).
        A whole folder on the server's disk imports faster with ``goldlabel import PROJECT DIR``."""
        params = _query(on_conflict=on_conflict, partial=partial)
        named = [("file", Path(f)) for f in files]
        if sidecar is not None:
            named.append(("sidecar", Path(sidecar)))
        with contextlib.ExitStack() as stack:
            parts = [(field, (path.name, stack.enter_context(path.open("rb")))) for field, path in named]
            res = self._request("POST", f"/projects/{int(project_id)}/media", files=parts, params=params)
        return ImportReport.model_validate(res.json())

    def download_media(self, url: str, *, thumb: int | None = None) -> bytes:
        """The bytes of a media file an item's data points at (``item.data["image"]``, ...), or
        a JPEG thumbnail at most ``thumb`` (128, 256, 512) pixels wide."""
        prefix = "/api/v1"
        path = url[len(prefix):] if url.startswith(prefix + "/") else url
        res = self._request("GET", path, params=_query(thumb=thumb), headers={"Accept": "*/*"})
        return res.content

    def export(
        self,
        project_id: int,
        format: ExportFormat,
        dest: str | os.PathLike[str] | IO[bytes],
        *,
        status: ItemStatus | None = None,
        include_predictions: bool = False,
        include_gold: bool = False,
        pseudonymous: bool = True,
        question: str | None = None,
        min_confidence: float | None = None,
    ) -> int:
        """Stream the project's export (one record per item: final answers, confidence, status,
        raw answers) into ``dest``, a path or a binary stream; returns the bytes written.

        Only items with ``status`` when given. Annotators appear under pseudonyms unless
        ``pseudonymous=False``; that and ``include_gold`` need the manage permission.
        A path is written to ``<path>.part`` and renamed when the download is complete, so a
        failed export never leaves a truncated file behind.

        The training formats (``coco``, ``yolo``, ``voc``, ``conll``, ``spacy``, ``hf``) write a
        zip of one ``question``'s labels (default: the first the format can hold), split into
        train / validation / test, optionally only labels at least ``min_confidence`` confident.
        """
        params = _query(
            format=format,
            status=status,
            include_predictions=include_predictions,
            include_gold=include_gold,
            pseudonymous=pseudonymous,
            question=question,
            min_confidence=min_confidence,
        )
        return self._download(f"/projects/{int(project_id)}/export", params, dest)

    def create_snapshot(
        self,
        project_id: int,
        name: str,
        format: ExportFormat = "jsonl",
        *,
        status: ItemStatus | None = None,
        include_predictions: bool = False,
        include_gold: bool = False,
        pseudonymous: bool = True,
        question: str | None = None,
        min_confidence: float | None = None,
    ) -> SnapshotPublic:
        """Freeze the export these options describe under ``name`` (unique in the project): the
        server keeps the bytes, and ``download_snapshot`` returns them unchanged later."""
        body = {"name": name, "format": format, "status": status, "include_predictions": include_predictions,
                "include_gold": include_gold, "pseudonymous": pseudonymous, "question": question,
                "min_confidence": min_confidence}
        res = self._request("POST", f"/projects/{int(project_id)}/snapshots", json=body)
        return SnapshotPublic.model_validate(res.json())

    def list_snapshots(self, project_id: int) -> list[SnapshotPublic]:
        """The project's snapshots, newest first."""
        res = self._request("GET", f"/projects/{int(project_id)}/snapshots")
        return [SnapshotPublic.model_validate(row) for row in res.json()]

    def download_snapshot(self, project_id: int, snapshot_id: int, dest: str | os.PathLike[str] | IO[bytes]) -> int:
        """Write a snapshot's bytes into ``dest`` (a path or a binary stream); returns the bytes written."""
        return self._download(f"/projects/{int(project_id)}/snapshots/{int(snapshot_id)}/download", {}, dest)

    def _download(self, path: str, params: dict[str, Any], dest: str | os.PathLike[str] | IO[bytes]) -> int:
        # Accept anything: the body is the file, only an error is JSON.
        with self._http.stream("GET", path, params=params, headers={"Accept": "*/*"}) as res:
            if res.is_error:
                res.read()
                raise ApiError.from_response(res)
            if not isinstance(dest, (str, os.PathLike)):
                return _copy_chunks(res, dest)
            target = Path(dest)
            partial_path = target.with_name(target.name + ".part")
            try:
                with open(partial_path, "wb") as out:
                    written = _copy_chunks(res, out)
                os.replace(partial_path, target)
            finally:
                partial_path.unlink(missing_ok=True)
            return written


def _copy_chunks(response: httpx.Response, out: IO[bytes]) -> int:
    written = 0
    for chunk in response.iter_bytes():
        out.write(chunk)
        written += len(chunk)
    return written
