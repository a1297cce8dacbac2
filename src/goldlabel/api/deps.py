"""Dependencies shared by the routers: the service context and the authenticated actor."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from goldlabel.domain.errors import unauthorized
from goldlabel.services import users as user_service
from goldlabel.services.access import Actor
from goldlabel.services.context import Context

bearer = HTTPBearer(auto_error=False, description="API token (`gl_...`) from `goldlabel users token` or the console.")


async def get_context(request: Request) -> Context:
    # async: FastAPI runs a plain ``def`` dependency in the thread pool, a thread hop per
    # request for one attribute read.
    return request.app.state.context


ContextDep = Annotated[Context, Depends(get_context)]


async def get_actor(
    request: Request,
    ctx: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Actor:
    # The token is read on every request (the actor cache serves only the annotate loop, whose
    # statements re-check it: services/users.py), so a revocation through any server process is
    # seen at once; api.guard.RequestGuard already read it for a write, and left its actor here.
    if credentials is not None:
        actor = getattr(request.state, "token_actor", None)
        if actor is None:
            actor = await run_in_threadpool(partial(user_service.authenticate_token, enrolment_only=True,
                                                    cached=False), ctx, credentials.credentials)
    else:
        actor = getattr(request.state, "session_actor", None)
        if actor is None:
            raise unauthorized()
    if actor.must_enrol and not _is_enrolment_path(request.url.path, actor.id):
        raise user_service.enrolment_required()
    return actor


def _is_enrolment_path(path: str, user_id: int) -> bool:
    """What a user who must enrol in two-factor login may still call: who they are, and the
    enrolment itself."""
    return path in ("/api/v1/users/me", f"/api/v1/users/{user_id}/totp", f"/api/v1/users/{user_id}/totp/confirm")


CurrentActor = Annotated[Actor, Depends(get_actor)]


class PageParams:
    def __init__(
        self,
        request: Request,
        after: Annotated[int, Query(ge=0, description="Cursor: the last id of the previous page.")] = 0,
        limit: Annotated[int, Query(ge=1, description="Page size.")] = 100,
    ) -> None:
        self.after = after
        self.limit = min(limit, request.app.state.context.settings.page_size_max)


PageDep = Annotated[PageParams, Depends()]


def page(rows: list[dict], limit: int, key: str = "id") -> dict:
    return {"items": rows, "next_after": rows[-1][key] if len(rows) == limit else None}
