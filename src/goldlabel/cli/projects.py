"""``goldlabel projects``: create and list projects, add members."""

from __future__ import annotations

import json
from pathlib import Path

import click

from goldlabel.cli.root import (
    LOCAL_OPERATOR,
    CliState,
    echo_json,
    echo_table,
    fail,
    iter_pages,
    pass_state,
)
from goldlabel.cli.users import find_user
from goldlabel.schemas import ProjectCreate
from goldlabel.services import projects as project_service
from goldlabel.services.context import Context

MEMBER_ROLES = click.Choice(["annotator", "reviewer", "manager"])
READABLE_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def iter_projects(ctx: Context):
    return iter_pages(lambda after, limit: project_service.list_projects(ctx, LOCAL_OPERATOR, after, limit))


def load_json_file(path: Path, what: str) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        fail(f"{what} {path}: line {exc.lineno}, column {exc.colno}: {exc.msg} [invalid_json]")
    except UnicodeDecodeError as exc:
        fail(f"{what} {path} is not UTF-8 text: {exc.reason} [invalid_json]")


@click.group()
def projects() -> None:
    """Create and list projects; add members."""


@projects.command("create")
@click.option("--name", required=True, help="Project name.")
@click.option("--schema", "schema_path", type=READABLE_FILE, required=True, metavar="SCHEMA.json",
              help="Label schema file (JSON), see docs/label-schema.md.")
@click.option("--overlap-min", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Answers every item gets at least.")
@click.option("--overlap-max", type=click.IntRange(1, 1000), default=None,
              help="Answers an item may get when annotators disagree [default: --overlap-min].")
@click.option("--instructions", "instructions_path", type=READABLE_FILE, default=None, metavar="FILE",
              help="Instructions for annotators (Markdown text file).")
@click.option("--description", default="", help="One-line description.")
@click.option("--manager", "managers", multiple=True, metavar="USERNAME",
              help="Make this user a manager of the project (repeatable).")
@pass_state
def create_project(state: CliState, name: str, schema_path: Path, overlap_min: int, overlap_max: int | None,
                   instructions_path: Path | None, description: str, managers: tuple[str, ...]) -> None:
    """Create a project and print its id (only the id, for scripts)."""
    schema = load_json_file(schema_path, "label schema")
    if not isinstance(schema, dict):
        fail(f"label schema {schema_path}: expected a JSON object with 'questions' [wrong_type]")
    instructions = instructions_path.read_text(encoding="utf-8") if instructions_path else ""
    ctx = state.context()
    manager_ids = [find_user(ctx, username)["id"] for username in managers]
    spec = ProjectCreate(
        name=name,
        description=description,
        instructions=instructions,
        label_schema=schema,
        overlap_min=overlap_min,
        overlap_max=overlap_max,
    )
    project = project_service.create_project(ctx, None, **spec.model_dump())
    for user_id in manager_ids:
        project_service.set_member(ctx, None, project["id"], user_id, "manager")
    click.echo(project["id"])
    if not managers:
        # Only admins see a project nobody is a member of: say how to make it visible (on stderr,
        # stdout stays the bare id for scripts).
        pid = project["id"]
        click.echo(f"project {pid} has no members yet: only admins see it. Give it a manager with\n"
                   f"  goldlabel projects add-member {pid} USERNAME --role manager\n"
                   f"(or create it with --manager USERNAME).", err=True)


@projects.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def list_projects(state: CliState, as_json: bool) -> None:
    """List every project."""
    rows = list(iter_projects(state.context()))
    if as_json:
        echo_json(rows)
        return
    table = [
        {
            "id": p["id"],
            "name": p["name"],
            "overlap": f"{p['overlap_min']}-{p['overlap_max']}",
            "questions": ", ".join(q["name"] for q in p["label_schema"]["questions"]),
        }
        for p in rows
    ]
    echo_table(table, ["id", "name", "overlap", "questions"])


@projects.command("add-member")
@click.argument("project_id", metavar="PROJECT", type=int)
@click.argument("username")
@click.option("--role", type=MEMBER_ROLES, default="annotator", show_default=True,
              help="Role of the user in this project.")
@pass_state
def add_member(state: CliState, project_id: int, username: str, role: str) -> None:
    """Give USERNAME a ROLE in PROJECT (or change it)."""
    ctx = state.context()
    user = find_user(ctx, username)
    member = project_service.set_member(ctx, None, project_id, user["id"], role)
    click.echo(f"{member['username']} is {member['role']} of project {project_id}")
