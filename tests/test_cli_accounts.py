"""The command line a new user meets first: `serve` on a busy port, account commands, and what
`projects create` and `demo` print."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
from click.testing import CliRunner

from goldlabel.app import create_app
from goldlabel.cli import cli
from goldlabel.client.transport import ASGIAppTransport
from goldlabel.config import Settings
from goldlabel.domain.errors import GoldlabelError
from goldlabel.services import dashboard as dashboard_service
from goldlabel.services import items as item_service
from goldlabel.services import projects as project_service
from goldlabel.services import users as user_service
from goldlabel.services.context import Context
from goldlabel.services.sessions import SESSION_COOKIE, start_session


def test_serve_on_a_busy_port_says_so_before_anything_else(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["--database", f"sqlite:///{tmp_path / 'x.db'}", "serve",
                                          "--port", str(port)])
    assert result.exit_code == 1, result.output
    assert "serving" not in result.output
    assert f"cannot listen on http://127.0.0.1:{port}" in result.stderr
    assert "choose another --port" in result.stderr
    assert "Traceback" not in result.output


def run(database_url: str, *args: str, input: str | None = None):
    return CliRunner().invoke(cli, ["--database", database_url, *args], input=input, catch_exceptions=False)


def can_log_in(database_url: str, username: str, password: str) -> bool:
    ctx = Context.from_settings(Settings(database_url=database_url))
    try:
        user_service.authenticate_password(ctx, username, password)
        return True
    except GoldlabelError:
        return False
    finally:
        ctx.close()


def test_users_set_password(database_url: str) -> None:
    assert run(database_url, "users", "create", "ann", "--role", "annotator", "--password",
               "amber lantern quietly 41").exit_code == 0
    done = run(database_url, "users", "set-password", "ann", "--password-stdin", input="violet harbor sings 73\n")
    assert done.exit_code == 0, done.output
    assert "password of ann set" in done.stdout
    assert can_log_in(database_url, "ann", "violet harbor sings 73") and not can_log_in(database_url, "ann",
                                                                                        "amber lantern quietly 41")
    # Too short, unknown user, no password and no terminal: messages and exit codes, no traceback.
    short = run(database_url, "users", "set-password", "ann", "--password", "short")
    assert short.exit_code == 1 and "10 characters" in short.stderr, short.output
    ghost = run(database_url, "users", "set-password", "ghost", "--password", "granite willow hums 26")
    assert ghost.exit_code == 1 and "not found" in ghost.stderr, ghost.output
    nothing = run(database_url, "users", "set-password", "ann")
    assert nothing.exit_code == 2 and "--password-stdin" in nothing.stderr, nothing.output
    assert can_log_in(database_url, "ann", "violet harbor sings 73")


def test_users_disable_totp(database_url: str, tmp_path: Path) -> None:
    import pyotp

    from goldlabel.services import totp as totp_service
    from goldlabel.services.access import Actor

    ctx = Context.from_settings(Settings(database_url=database_url, totp_key_file=str(tmp_path / "totp.key")))
    try:
        row = user_service.create_user(ctx, None, "phoneless", "admin")
        me = Actor(row["id"], "phoneless", "admin")
        secret = totp_service.start_enrolment(ctx, me, me.id)["secret"]
        totp_service.confirm_enrolment(ctx, me, me.id, pyotp.TOTP(secret).now(), "")
        assert totp_service.login_needs_code(ctx, me.id)
        done = run(database_url, "users", "disable-totp", "phoneless")
        assert done.exit_code == 0 and "is off" in done.stdout, done.output
        assert not totp_service.login_needs_code(ctx, me.id)
        ghost = run(database_url, "users", "disable-totp", "ghost")
        assert ghost.exit_code == 1 and "not found" in ghost.stderr, ghost.output
    finally:
        ctx.close()


def test_projects_create_without_manager_says_how_to_make_it_visible(database_url: str, tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"questions": [{"name": "q", "kind": "choice", "labels": ["a", "b"]}]}))
    created = run(database_url, "projects", "create", "--name", "p", "--schema", str(schema))
    assert created.exit_code == 0, created.output
    pid = created.stdout.strip()
    assert created.stdout == f"{pid}\n"  # stdout stays the bare id, for scripts
    assert f"goldlabel projects add-member {pid} USERNAME --role manager" in created.stderr
    assert run(database_url, "users", "create", "boss", "--role", "manager", "--password",
               "copper meadow drifts 58").exit_code == 0
    managed = run(database_url, "projects", "create", "--name", "q", "--schema", str(schema), "--manager", "boss")
    assert managed.exit_code == 0 and "add-member" not in managed.stderr, managed.output


def test_demo_prints_an_admin_login_that_sees_every_project(database_url: str, tmp_path: Path) -> None:
    first = run(database_url, "demo", "--no-serve")
    assert first.exit_code == 0, first.output
    line = next(x for x in first.stdout.splitlines() if x.strip().startswith("admin "))
    name, admin_password, role = line.split()
    assert (name, role) == ("admin", "admin") and len(admin_password) >= 16  # random, printed once
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"questions": [{"name": "q", "kind": "choice", "labels": ["a", "b"]}]}))
    pid = int(run(database_url, "projects", "create", "--name", "orphan", "--schema", str(schema)).stdout)
    ctx = Context.from_settings(Settings(database_url=database_url))
    try:
        admin = user_service.authenticate_password(ctx, "admin", admin_password)
        visible = [p["id"] for p in project_service.list_projects(ctx, admin, 0, 100)]
        assert pid in visible and len(visible) == 3
    finally:
        ctx.close()


def test_demo_seeds_answers_once_so_the_console_shows_something(database_url: str) -> None:
    first = run(database_url, "demo", "--no-serve")
    assert first.exit_code == 0, first.output
    assert first.stdout.count("66 answers by the demo annotators") == 2
    ctx = Context.from_settings(Settings(database_url=database_url))
    try:
        line = next(x for x in first.stdout.splitlines() if x.strip().startswith("manager "))
        manager = user_service.authenticate_password(ctx, "manager", line.split()[1])
        projects = {p["name"]: p["id"] for p in project_service.list_projects(ctx, manager, 0, 100)}
        for pid in projects.values():
            data = dashboard_service.project_dashboard(ctx, manager, pid)
            answered = item_service.list_answers(ctx, manager, pid, 0, 1000)
            assert len(answered) == 66
            assert {a["annotator_id"] for a in answered} == {
                user_service.find_user(ctx, manager, name)["id"] for name in ("annotator1", "annotator2")}
            assert data["annotators"], data.keys()
        # Two answers per support item at max overlap 2, with some disagreement: work for review.
        support = projects["Demo: support reply quality"]
        assert dashboard_service.review_queue(ctx, manager, support, 0, 100)["items"]
        # The console pages a manager opens first render with the seeded answers (gold answers
        # give annotators evidence without a suspension reason: that once failed the dashboard).
        app = create_app(context=ctx, migrate=False)
        cookie, session = app.state.web.signer.issue(manager.id)
        start_session(ctx, session)
        transport = ASGIAppTransport(app)
        with httpx.Client(transport=transport, base_url="http://demo.test", cookies={SESSION_COOKIE: cookie}) as web:
            for pid in projects.values():
                for path in ("", "/items", "/review"):
                    res = web.get(f"/console/projects/{pid}{path}")
                    assert res.status_code == 200, (path, res.text[-2000:])
            assert "ticket-0" in web.get(f"/console/projects/{support}/review").text
        transport.close()
        second = run(database_url, "demo", "--no-serve")
        assert second.exit_code == 0 and "answers by the demo annotators" not in second.stdout
        assert len(item_service.list_answers(ctx, manager, support, 0, 1000)) == 66
    finally:
        ctx.close()
