"""Users, API tokens and browser sessions."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from goldlabel.api.deps import ContextDep, CurrentActor, PageDep, page
from goldlabel.schemas import (
    Page,
    TokenCreate,
    TokenPublic,
    TotpCode,
    TotpDisable,
    TotpEnrolment,
    TotpRecoveryCodes,
    TotpStatus,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from goldlabel.services import totp as totp_service
from goldlabel.services import users as user_service

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me", response_model=UserPublic)
def get_me(ctx: ContextDep, actor: CurrentActor) -> dict:
    return user_service.get_user(ctx, actor, actor.id)


@router.get("", response_model=Page)
def list_users(ctx: ContextDep, actor: CurrentActor, p: PageDep) -> dict:
    return page(user_service.list_users(ctx, actor, p.after, p.limit), p.limit)


@router.post("", response_model=UserPublic, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, ctx: ContextDep, actor: CurrentActor) -> dict:
    return user_service.create_user(ctx, actor, body.username, body.role, body.password, body.display_name)


@router.get("/{user_id}", response_model=UserPublic)
def get_user(user_id: int, ctx: ContextDep, actor: CurrentActor) -> dict:
    return user_service.get_user(ctx, actor, user_id)


@router.patch("/{user_id}", response_model=UserPublic)
def update_user(
    user_id: int, body: UserUpdate, request: Request, ctx: ContextDep, actor: CurrentActor
) -> dict:
    # Set by the web middleware for a cookie-authenticated request: changing your own password
    # from the browser keeps that session and ends the others.
    session = getattr(request.state, "session", None)
    current = session.nonce if session is not None else None
    changes = body.model_dump(exclude_unset=True)
    return user_service.update_user(ctx, actor, user_id, changes, current_session=current)


@router.get("/{user_id}/tokens", response_model=list[TokenPublic])
def list_tokens(user_id: int, ctx: ContextDep, actor: CurrentActor) -> list[dict]:
    return user_service.list_tokens(ctx, actor, user_id)


@router.post("/{user_id}/tokens", response_model=TokenPublic, status_code=status.HTTP_201_CREATED)
def create_token(user_id: int, body: TokenCreate, ctx: ContextDep, actor: CurrentActor) -> dict:
    return user_service.create_token(ctx, actor, user_id, body.name)


@router.delete("/{user_id}/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(user_id: int, token_id: int, ctx: ContextDep, actor: CurrentActor) -> None:
    user_service.revoke_token(ctx, actor, user_id, token_id)


@router.delete("/{user_id}/sessions", status_code=status.HTTP_204_NO_CONTENT)
def end_sessions(user_id: int, ctx: ContextDep, actor: CurrentActor) -> None:
    """Log the user out of every browser (API tokens are not affected)."""
    user_service.end_sessions(ctx, actor, user_id)


def _address(request: Request) -> str:
    return request.client.host if request.client else ""


@router.get("/{user_id}/totp", response_model=TotpStatus)
def get_totp(user_id: int, ctx: ContextDep, actor: CurrentActor) -> dict:
    """Whether two-factor login is on (the user themself, or an admin)."""
    return totp_service.status(ctx, actor, user_id)


@router.post("/{user_id}/totp", response_model=TotpEnrolment, status_code=status.HTTP_201_CREATED)
def start_totp(user_id: int, ctx: ContextDep, actor: CurrentActor) -> dict:
    """Start enrolling (the user themself): a new secret, shown this once."""
    return totp_service.start_enrolment(ctx, actor, user_id)


@router.post("/{user_id}/totp/confirm", response_model=TotpRecoveryCodes)
def confirm_totp(user_id: int, body: TotpCode, request: Request, ctx: ContextDep, actor: CurrentActor) -> dict:
    """Turn two-factor login on with a first code; the answer holds ten recovery codes, once."""
    return totp_service.confirm_enrolment(ctx, actor, user_id, body.code, _address(request))


@router.post("/{user_id}/totp/disable", response_model=TotpStatus)
def disable_totp(user_id: int, body: TotpDisable, request: Request, ctx: ContextDep, actor: CurrentActor) -> dict:
    """Turn two-factor login off: the user with a current or recovery code, an admin for anyone."""
    return totp_service.disable(ctx, actor, user_id, body.code, _address(request))
