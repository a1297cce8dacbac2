"""The annotate loop: next, submit, skip, release; my answers.

Next, submit, skip and release call the same async use cases as api/fastlane.py, which answers
their plain requests (browser and API token alike) before they reach FastAPI: these routes are
the contract (OpenAPI, validation errors) and the path for what the fast lane hands on, never a
second implementation."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Header, Response, status

from goldlabel.api.deps import ContextDep, CurrentActor, PageDep, page
from goldlabel.schemas import (
    AnswerSubmit,
    LeaseAction,
    LeasePublic,
    OwnAnswer,
    Page,
    SubmitResult,
)
from goldlabel.services.queue import answers as answers_service
from goldlabel.services.queue import lease as lease_service
from goldlabel.services.queue import submit as submit_service

router = APIRouter(prefix="/projects/{project_id}", tags=["queue"])


def _json(body: dict, status_code: int = status.HTTP_200_OK) -> Response:
    """The annotate loop's two hot routes answer with the service's dict as JSON directly: the
    services build exactly the documented shape (``response_model`` stays, for OpenAPI), and
    re-validating it through pydantic cost more CPU than the rest of the response."""
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


@router.post(
    "/next",
    response_model=LeasePublic,
    responses={204: {"description": "No item needs your answer right now."}},
)
async def lease_next(project_id: int, ctx: ContextDep, actor: CurrentActor) -> Any:
    lease = await lease_service.lease_next_async(ctx, actor, project_id)
    if lease is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return _json(lease)


@router.post("/answers", response_model=SubmitResult, status_code=status.HTTP_201_CREATED)
async def submit_answer(
    project_id: int,
    body: AnswerSubmit,
    ctx: ContextDep,
    actor: CurrentActor,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Any:
    result = await submit_service.submit_answer_async(
        ctx, actor, project_id, body.lease_token, body.value, body.duration_ms, idempotency_key
    )
    return _json(result, status.HTTP_201_CREATED)


@router.post("/skip", status_code=status.HTTP_204_NO_CONTENT)
async def skip_item(project_id: int, body: LeaseAction, ctx: ContextDep, actor: CurrentActor) -> None:
    await lease_service.skip_item_async(ctx, actor, project_id, body.lease_token)


@router.post("/release", status_code=status.HTTP_204_NO_CONTENT)
async def release_item(project_id: int, body: LeaseAction, ctx: ContextDep, actor: CurrentActor) -> None:
    await lease_service.release_item_async(ctx, actor, project_id, body.lease_token)


@router.get("/my-answers", response_model=Page)
def list_my_answers(project_id: int, ctx: ContextDep, actor: CurrentActor, p: PageDep) -> dict:
    """Your own answers, newest first; page with ?after=<the last answer id you got>."""
    return page(answers_service.list_my_answers(ctx, actor, project_id, p.after, p.limit), p.limit)


@router.put("/my-answers/{answer_id}", response_model=OwnAnswer)
def edit_answer(
    project_id: int,
    answer_id: int,
    ctx: ContextDep,
    actor: CurrentActor,
    value: Annotated[dict[str, Any], Body(embed=True)],
) -> dict:
    return answers_service.edit_answer(ctx, actor, project_id, answer_id, value)
