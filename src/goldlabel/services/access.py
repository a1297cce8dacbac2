"""Who may do what. Every project-scoped call goes through ``load_project``: a user who is not
a member gets 404 (the project's existence is not revealed), a member whose role is too low
gets 403."""

from __future__ import annotations

from dataclasses import dataclass

from goldlabel.domain.errors import GoldlabelError, forbidden, not_found
from goldlabel.storage import projects as project_store
from goldlabel.storage import users as user_store
from goldlabel.storage.handles import Connection

# What each project role may do; a higher role includes the lower ones.
ROLE_RANK = {"annotator": 1, "reviewer": 2, "manager": 3, "admin": 4}
NEED_RANK = {"view": 1, "annotate": 1, "review": 2, "manage": 3}


@dataclass(frozen=True)
class Actor:
    id: int
    username: str
    role: str
    # The role requires two-factor login and the user has not enrolled: they may only enrol
    # (api.deps and web.rendering refuse everything else).
    must_enrol: bool = False
    # users.auth_version when the credential was verified (services/users.py); every revocation
    # bumps it, and the statements a project-scoped call already runs read it back
    # (``check_auth_version``). None: not checked (the local operator, a test's actor).
    auth_version: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def can_create_projects(self) -> bool:
        return self.role in ("admin", "manager")


class StaleCredentials(GoldlabelError):
    """The user's auth version moved since their credential was verified (a token revoked, a
    session ended, a suspension, a role change: here or in another server process). Raised
    before anything is written; the caller verifies the credential again (api/fastlane.py hands
    the request to the app, which does) and, when it still holds, sends the request again."""


def stale_credentials() -> StaleCredentials:
    return StaleCredentials("your credentials changed while this request was checked; send it again",
                            code="credentials_changed", status=401)


def check_auth_version(actor: Actor, version: int | None) -> None:
    """StaleCredentials unless ``version`` (the user's auth version as the statement just read
    it) is the one ``actor`` was verified at."""
    if actor.auth_version is not None and version != actor.auth_version:
        raise stale_credentials()


def fetch_project_role(conn: Connection, actor: Actor, project_id: int) -> str | None:
    if actor.is_admin:
        return "admin"
    return user_store.fetch_member_role(conn, project_id, actor.id)


def load_project(conn: Connection, actor: Actor, project_id: int, need: str) -> dict:
    """The project, if ``actor`` may ``need`` it (view | annotate | review | manage)."""
    project, role, version = project_store.fetch_project_with_role(conn, project_id, actor.id)
    if project is not None:
        check_auth_version(actor, version)
    return authorize(actor, project, role, need)


def load_project_to_annotate(conn: Connection, actor: Actor, project_id: int) -> tuple[dict, dict | None]:
    """``load_project(..., "annotate")`` and the actor's annotator standing in the project
    (``{"status", "n_gold"}`` or None), in one statement: the lease path runs it every time."""
    project, role, standing, version = project_store.fetch_project_role_standing(conn, project_id, actor.id)
    if project is not None:
        check_auth_version(actor, version)
    return authorize(actor, project, role, "annotate"), standing


def authorize(actor: Actor, project: dict | None, role: str | None, need: str) -> dict:
    """``project`` if ``actor`` (with membership ``role`` in it) may ``need`` it: what
    ``load_project`` checks, for a caller that read the project and role in a statement of its
    own (404 for a non-member or a missing project, 403 for a role too low)."""
    if actor.is_admin:
        role = "admin"
    if project is None or role is None:
        raise not_found("project")
    if ROLE_RANK[role] < NEED_RANK[need]:
        raise forbidden(f"this needs the {need} permission on the project; your role is {role}")
    return project


def is_allowed(role: str | None, need: str) -> bool:
    return role is not None and ROLE_RANK[role] >= NEED_RANK[need]
