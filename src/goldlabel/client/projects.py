"""``Client`` methods: projects, their schema versions and members."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from goldlabel.client._base import UNSET, ClientBase, _changes
from goldlabel.schemas import (
    MemberPublic,
    ProjectPublic,
    Role,
    SchemaVersionPublic,
)


class ProjectsMixin(ClientBase):
    """Projects, their schema versions and members."""

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
