"""Projects and members."""

from __future__ import annotations

from fastapi import APIRouter, status

from goldlabel.api.deps import ContextDep, CurrentActor, PageDep, page
from goldlabel.schemas import (
    MemberPublic,
    MemberSet,
    Page,
    ProjectCreate,
    ProjectPublic,
    ProjectUpdate,
    SchemaVersionPublic,
)
from goldlabel.services import projects as project_service

router = APIRouter(prefix="/projects", tags=["projects"])


@router.get("", response_model=Page)
def list_projects(ctx: ContextDep, actor: CurrentActor, p: PageDep) -> dict:
    return page(project_service.list_projects(ctx, actor, p.after, p.limit), p.limit)


@router.post("", response_model=ProjectPublic, status_code=status.HTTP_201_CREATED)
def create_project(body: ProjectCreate, ctx: ContextDep, actor: CurrentActor) -> dict:
    return project_service.create_project(ctx, actor, **body.model_dump())


@router.get("/{project_id}", response_model=ProjectPublic)
def get_project(project_id: int, ctx: ContextDep, actor: CurrentActor) -> dict:
    return project_service.get_project(ctx, actor, project_id)


@router.patch("/{project_id}", response_model=ProjectPublic)
def update_project(project_id: int, body: ProjectUpdate, ctx: ContextDep, actor: CurrentActor) -> dict:
    return project_service.update_project(ctx, actor, project_id, body.model_dump(exclude_unset=True))


@router.get("/{project_id}/schema-versions", response_model=list[SchemaVersionPublic])
def list_schema_versions(project_id: int, ctx: ContextDep, actor: CurrentActor) -> list[dict]:
    """Every label schema the project has had, oldest first, with the answers given under each."""
    return project_service.list_schema_versions(ctx, actor, project_id)


@router.delete("/{project_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_project(project_id: int, ctx: ContextDep, actor: CurrentActor) -> None:
    project_service.delete_project(ctx, actor, project_id)


@router.get("/{project_id}/members", response_model=list[MemberPublic])
def list_members(project_id: int, ctx: ContextDep, actor: CurrentActor) -> list[dict]:
    return project_service.list_members(ctx, actor, project_id)


@router.put("/{project_id}/members", response_model=MemberPublic)
def set_member(project_id: int, body: MemberSet, ctx: ContextDep, actor: CurrentActor) -> dict:
    return project_service.set_member(ctx, actor, project_id, body.user_id, body.role)


@router.delete("/{project_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(project_id: int, user_id: int, ctx: ContextDep, actor: CurrentActor) -> None:
    project_service.remove_member(ctx, actor, project_id, user_id)
