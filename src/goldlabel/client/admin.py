"""``Client`` methods: users, API tokens, two-factor login and the audit log."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import IO, Any, Literal

from goldlabel.client._base import UNSET, ClientBase, _changes, _query
from goldlabel.schemas import (
    AuditEntry,
    Role,
    TokenPublic,
    TotpEnrolment,
    TotpStatus,
    UserPublic,
)


class AdminMixin(ClientBase):
    """Users and their API tokens, two-factor login (TOTP), the audit log."""

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
