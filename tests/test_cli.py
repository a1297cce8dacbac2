"""The ``goldlabel`` command line: driven with click's CliRunner on both backends, and as a real
subprocess (the console script, ``serve`` on a free port) on a temporary SQLite file."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from goldlabel.cli import cli
from goldlabel.config import Settings
from goldlabel.services import users as user_service
from goldlabel.services.context import Context

REPO = Path(__file__).resolve().parent.parent
MINIMAL_SCHEMA = {"questions": [{"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"]}]}
GOOD_ROWS = [
    {"external_id": "a1", "data": {"text": "great"}},
    {"external_id": "a2", "data": {"text": "awful"}, "gold": {"sentiment": "negative"}},
    {"external_id": "a3", "data": {"text": "fine"},
     "predictions": [{"value": {"sentiment": "positive"}, "score": 0.7}]},
]


def run(database_url: str, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--database", database_url, *args], input=input, catch_exceptions=False)


def assert_failed(result: Result, code: int, *needles: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.stderr, result.stderr


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.fixture
def schema_file(tmp_path: Path) -> Path:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(MINIMAL_SCHEMA))
    return path


@pytest.fixture
def project_id(database_url: str, schema_file: Path) -> int:
    result = run(database_url, "projects", "create", "--name", "reviews", "--schema", str(schema_file),
                 "--overlap-min", "2", "--overlap-max", "3")
    assert result.exit_code == 0, result.output
    return int(result.stdout)


def has_import_file() -> bool:
    from goldlabel.services import imports

    return hasattr(imports, "import_file")


needs_import_file = pytest.mark.skipif(not has_import_file(), reason="services.imports.import_file not there yet")


# --- users ------------------------------------------------------------------------------------


def test_users_create_token_list(database_url: str) -> None:
    created = run(database_url, "users", "create", "alice", "--role", "manager", "--password-stdin",
                  input="correct horse battery\n")
    assert created.exit_code == 0, created.output
    assert "alice" in created.stdout

    token = run(database_url, "users", "token", "alice", "--name", "ci")
    assert token.exit_code == 0, token.output
    assert token.stdout.count("\n") == 1 and token.stdout.startswith("gl_")
    ctx = Context.from_settings(Settings(database_url=database_url))
    try:
        assert user_service.authenticate_token(ctx, token.stdout.strip()).username == "alice"
        assert user_service.authenticate_password(ctx, "alice", "correct horse battery").role == "manager"
    finally:
        ctx.close()

    listed = run(database_url, "users", "list")
    assert "alice" in listed.stdout and "manager" in listed.stdout
    as_json = json.loads(run(database_url, "users", "list", "--json").stdout)
    assert [u["username"] for u in as_json] == ["alice"]


def test_users_errors_are_messages_not_tracebacks(database_url: str) -> None:
    assert run(database_url, "users", "create", "bob", "--role", "annotator", "--password",
               "plum-otter-canvas-42").exit_code == 0
    assert_failed(run(database_url, "users", "create", "bob", "--role", "annotator", "--password",
                      "plum-otter-canvas-42"),
                  1, "username_taken")
    assert_failed(run(database_url, "users", "create", "carol", "--role", "annotator", "--password", "short"),
                  1, "weak_password")
    assert_failed(run(database_url, "users", "create", "dave", "--role", "boss"), 2, "boss")
    assert_failed(run(database_url, "users", "token", "nobody"), 1, "not_found")


def test_users_create_without_password_and_no_terminal(database_url: str) -> None:
    result = run(database_url, "users", "create", "robot", "--role", "annotator")
    assert result.exit_code == 0, result.output
    assert "API tokens only" in result.stderr


# --- projects ---------------------------------------------------------------------------------


def test_projects_create_prints_only_the_id(database_url: str, schema_file: Path, tmp_path: Path) -> None:
    assert run(database_url, "users", "create", "mia", "--role", "manager", "--password",
               "plum-otter-canvas-42").exit_code == 0
    instructions = tmp_path / "guide.md"
    instructions.write_text("Be *careful*.")
    result = run(database_url, "projects", "create", "--name", "first", "--schema", str(schema_file),
                 "--instructions", str(instructions), "--manager", "mia")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().isdigit() and result.stdout == f"{int(result.stdout)}\n"

    listed = json.loads(run(database_url, "projects", "list", "--json").stdout)
    assert [(p["name"], p["instructions"], p["overlap_min"], p["overlap_max"]) for p in listed] == [
        ("first", "Be *careful*.", 1, 1)
    ]
    assert "first" in run(database_url, "projects", "list").stdout


def test_projects_create_rejects_bad_input(database_url: str, tmp_path: Path, schema_file: Path) -> None:
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"questions": [\n  {"name": "x",}\n]}')
    assert_failed(run(database_url, "projects", "create", "--name", "p", "--schema", str(bad_json)),
                  1, "line 2", "invalid_json")
    bad_kind = tmp_path / "kind.json"
    bad_kind.write_text(json.dumps({"questions": [{"name": "x", "kind": "essay"}]}))
    assert_failed(run(database_url, "projects", "create", "--name", "p", "--schema", str(bad_kind)),
                  1, "unknown_kind", "label_schema.questions.0.kind")
    assert_failed(run(database_url, "projects", "create", "--name", "p", "--schema", str(schema_file),
                      "--overlap-min", "3", "--overlap-max", "2"), 1, "overlap_max")
    assert_failed(run(database_url, "projects", "create", "--name", "p", "--schema", str(tmp_path / "nope.json")),
                  2, "does not exist")
    assert json.loads(run(database_url, "projects", "list", "--json").stdout) == []


def test_projects_add_member(database_url: str, project_id: int) -> None:
    assert run(database_url, "users", "create", "ann", "--role", "annotator", "--password",
               "plum-otter-canvas-42").exit_code == 0
    result = run(database_url, "projects", "add-member", str(project_id), "ann")
    assert result.exit_code == 0, result.output
    assert "ann is annotator" in result.stdout
    assert_failed(run(database_url, "projects", "add-member", "999", "ann"), 1, "not_found")


# --- import / export --------------------------------------------------------------------------


@needs_import_file
def test_import_reports_and_is_idempotent(database_url: str, project_id: int, tmp_path: Path) -> None:
    good = write_jsonl(tmp_path / "items.jsonl", GOOD_ROWS)
    first = run(database_url, "import", str(project_id), str(good))
    assert first.exit_code == 0, first.output
    assert "3 created" in first.stdout
    again = run(database_url, "import", str(project_id), str(good), "--json")
    assert again.exit_code == 0, again.output
    report = json.loads(again.stdout)
    assert (report["created"], report["skipped"]) == (0, 3)
    updated = run(database_url, "import", str(project_id), str(good), "--on-conflict", "update")
    assert "3 updated" in updated.stdout


@needs_import_file
def test_import_bad_file_exits_non_zero_with_lines(database_url: str, project_id: int, tmp_path: Path) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", [
        {"external_id": "ok", "data": {"text": "fine"}},
        {"external_id": "b1", "data": "not an object"},
        {"external_id": "b2", "data": {"text": "x"}, "gold": {"sentiment": "meh"}},
    ])
    result = run(database_url, "import", str(project_id), str(bad))
    assert_failed(result, 1, "line 2", "data", "bad_data", "line 3", "unknown_label")
    # all or nothing: the good first row was not kept
    again = run(database_url, "import", str(project_id), str(write_jsonl(tmp_path / "ok.jsonl", GOOD_ROWS[:1])))
    assert "1 created" in again.stdout

    partial = run(database_url, "import", str(project_id), str(bad), "--partial", "--json")
    assert partial.exit_code == 0, partial.output
    report = json.loads(partial.stdout)
    assert report["created"] == 1 and report["error_count"] == 2
    assert {e["line"] for e in report["errors"]} == {2, 3}


@needs_import_file
def test_import_unknown_project(database_url: str, tmp_path: Path) -> None:
    good = write_jsonl(tmp_path / "items.jsonl", GOOD_ROWS)
    result = run(database_url, "import", "4242", str(good))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output


@needs_import_file
@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_export_writes_every_format(database_url: str, project_id: int, tmp_path: Path, fmt: str) -> None:
    pytest.importorskip("goldlabel.services.exports")
    assert run(database_url, "import", str(project_id),
               str(write_jsonl(tmp_path / "i.jsonl", GOOD_ROWS))).exit_code == 0
    out = tmp_path / f"out.{fmt}"
    result = run(database_url, "export", str(project_id), "--format", fmt, "--output", str(out))
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0
    assert not list(tmp_path.glob("*.part"))
    if fmt == "jsonl":
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert sorted(r["external_id"] for r in rows) == ["a1", "a2", "a3"]
    full = tmp_path / f"full.{fmt}"
    result = run(database_url, "export", str(project_id), "--format", fmt, "--output", str(full),
                 "--include-gold", "--include-predictions", "--annotator-names")
    assert result.exit_code == 0, result.output
    if fmt == "jsonl":
        rows = {r["external_id"]: r for r in map(json.loads, full.read_text().splitlines())}
        assert rows["a2"]["gold"] == {"sentiment": "negative"}
        assert rows["a3"]["predictions"][0]["value"] == {"sentiment": "positive"}
    final_only = tmp_path / f"final.{fmt}"
    result = run(database_url, "export", str(project_id), "--format", fmt, "--output", str(final_only),
                 "--status", "final")
    assert result.exit_code == 0, result.output


def test_export_unknown_project_leaves_no_file(database_url: str, tmp_path: Path) -> None:
    pytest.importorskip("goldlabel.services.exports")
    out = tmp_path / "out.jsonl"
    result = run(database_url, "export", "4242", "--format", "jsonl", "--output", str(out))
    assert result.exit_code == 1, result.output
    assert not out.exists() and not list(tmp_path.glob("*.part"))


# --- database ---------------------------------------------------------------------------------


def test_db_upgrade_creates_then_reports_up_to_date(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'new.db'}"
    first = run(url, "db", "upgrade")
    assert first.exit_code == 0, first.output
    assert "upgraded from empty" in first.stdout
    second = run(url, "db", "upgrade")
    assert "up to date" in second.stdout


def test_bad_database_urls_are_messages(tmp_path: Path) -> None:
    assert_failed(run("mysql://nobody@localhost/db", "users", "list"), 1, "unsupported database URL")
    # port 9 (discard) on loopback: refused at once
    assert_failed(run("postgresql+psycopg://postgres@127.0.0.1:9/x", "users", "list"), 1, "database_error")


def test_database_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "env.db"
    result = CliRunner().invoke(cli, ["db", "upgrade"], env={"GOLDLABEL_DATABASE_URL": f"sqlite:///{path}"})
    assert result.exit_code == 0, result.output
    assert path.exists()


# --- aggregate --------------------------------------------------------------------------------


def test_aggregate_csv(tmp_path: Path) -> None:
    answers = tmp_path / "answers.csv"
    answers.write_text(
        "item,annotator,label\n"
        + "".join(f"t{i},w{w},{'cat' if (i + (w == 2)) % 2 else 'dog'}\n" for i in range(6) for w in range(3))
    )
    gold = tmp_path / "gold.csv"
    gold.write_text("item,label\nt0,dog\n")
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(cli, ["aggregate", str(answers), "--gold", str(gold), "--output", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert len(lines) == 7  # header + one row per item
    assert lines[1].startswith("t0,dog")
    assert "18 answers by 3 annotators on 6 items" in result.stdout
    mv = CliRunner().invoke(cli, ["aggregate", str(answers), "--method", "mv", "-o", str(out)])
    assert mv.exit_code == 0, mv.output
    assert out.read_text().splitlines()[0] == "item,label,confidence"
    assert_failed(CliRunner().invoke(cli, ["aggregate", str(answers), "--method", "best", "-o", str(out)]),
                  2, "unknown_method", "ds")

    broken = tmp_path / "broken.csv"
    broken.write_text("who,what\n1,2\n")
    assert_failed(CliRunner().invoke(cli, ["aggregate", str(broken), "-o", str(out)]), 1)


# --- demo -------------------------------------------------------------------------------------


def demo_passwords(stdout: str) -> dict[str, str]:
    """username -> password from the demo's printed logins."""
    lines = stdout.split("logins (username / password):", 1)[1].strip().splitlines()
    return {parts[0]: parts[1] for parts in (line.split() for line in lines[:4])}


def test_demo_seeds_once_and_reuses(database_url: str) -> None:
    first = run(database_url, "demo", "--no-serve")
    assert first.exit_code == 0, first.output
    passwords = demo_passwords(first.stdout)
    # Random per install (issue 17, item 10): four different ones, none of the old fixed ones.
    assert set(passwords) == {"manager", "annotator1", "annotator2", "admin"}
    assert len(set(passwords.values())) == 4 and all(len(p) >= 16 for p in passwords.values())
    assert not {"manager-demo", "annotator1-demo", "admin-demo"} & set(passwords.values())
    assert "200 items, 12 gold" in first.stdout
    second = run(database_url, "demo", "--no-serve")
    assert second.exit_code == 0, second.output
    assert second.stdout.count(", reused") == 2
    assert second.stdout.count("(printed at the first start)") == 4
    assert not any(p in second.stdout for p in passwords.values())
    projects = json.loads(run(database_url, "projects", "list", "--json").stdout)
    assert len(projects) == 2
    kinds = {q["kind"] for p in projects for q in p["label_schema"]["questions"]}
    assert kinds == {"choice", "rating", "multi_choice", "text"}
    assert [u["username"] for u in json.loads(run(database_url, "users", "list", "--json").stdout)] == [
        "manager", "annotator1", "annotator2", "admin"
    ]


def test_demo_annotators_can_work(database_url: str) -> None:
    """The printed logins really work: annotator1 leases and answers a review over the API."""
    from goldlabel.app import create_app
    from goldlabel.client.transport import ASGIAppTransport

    first = run(database_url, "demo", "--no-serve")
    assert first.exit_code == 0
    ctx = Context.from_settings(Settings(database_url=database_url))
    try:
        token = user_service.create_token(ctx, None, user_service.authenticate_password(
            ctx, "annotator1", demo_passwords(first.stdout)["annotator1"]).id)["token"]
        app = create_app(context=ctx, migrate=False)
        with httpx.Client(transport=ASGIAppTransport(app), base_url="http://demo.test",
                          headers={"Authorization": f"Bearer {token}"}) as api:
            projects = api.get("/api/v1/projects").json()["items"]
            sentiment = next(p for p in projects if p["label_schema"]["questions"][0]["kind"] == "choice")
            lease = api.post(f"/api/v1/projects/{sentiment['id']}/next")
            assert lease.status_code == 200, lease.text
            done = api.post(f"/api/v1/projects/{sentiment['id']}/answers",
                            json={"lease_token": lease.json()["token"], "value": {"sentiment": "neutral"}})
            assert done.status_code == 201, done.text
    finally:
        ctx.close()


# --- real processes ---------------------------------------------------------------------------


def goldlabel_command() -> list[str]:
    script = Path(sys.executable).with_name("goldlabel")
    return [str(script)] if script.exists() else [sys.executable, "-m", "goldlabel.cli"]


def subprocess_env(*, strict: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDLABEL_")}
    if strict:
        env["PYTHONWARNINGS"] = "error"  # as strict as the in-process tests
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_console_script_end_to_end(tmp_path: Path, schema_file: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"

    def gl(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([*goldlabel_command(), "--database", url, *args], input=input, capture_output=True,
                              text=True, timeout=120, check=False, env=subprocess_env(), cwd=tmp_path)

    assert gl("db", "upgrade").returncode == 0
    assert gl("users", "create", "op", "--role", "admin", "--password-stdin",
              input="plum-otter-canvas-42\n").returncode == 0
    token = gl("users", "token", "op")
    assert token.returncode == 0 and token.stdout.startswith("gl_"), token.stderr
    created = gl("projects", "create", "--name", "p", "--schema", str(schema_file))
    assert created.returncode == 0, created.stderr
    pid = created.stdout.strip()
    assert created.stdout == f"{pid}\n" and pid.isdigit()
    if has_import_file():
        bad = write_jsonl(tmp_path / "bad.jsonl", ['{"external_id": "x", "data": {}}', "{not json"])
        failed = gl("import", pid, str(bad))
        assert failed.returncode != 0
        assert "line 2" in failed.stderr and "Traceback" not in failed.stderr
        ok = gl("import", pid, str(write_jsonl(tmp_path / "ok.jsonl", GOOD_ROWS)))
        assert ok.returncode == 0 and "3 created" in ok.stdout, ok.stderr
        exported = gl("export", pid, "--format", "jsonl", "--output", "-")
        assert exported.returncode == 0, exported.stderr
        assert sorted(json.loads(line)["external_id"] for line in exported.stdout.splitlines()) == ["a1", "a2", "a3"]
    missing = gl("users", "token", "ghost")
    assert missing.returncode == 1 and missing.stderr.startswith("error:") and "Traceback" not in missing.stderr


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_serve_answers_healthz(tmp_path: Path, workers: int) -> None:
    port = free_port()
    db = tmp_path / "serve.db"
    proc = subprocess.Popen(
        [*goldlabel_command(), "--database", f"sqlite:///{db}", "serve", "--port", str(port),
         "--workers", str(workers)],
        # Not strict: a deprecation inside uvicorn's protocol stack must not take the server down.
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=subprocess_env(strict=False), cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                res = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not answer within 60 s"
                time.sleep(0.2)
        assert res.status_code == 200 and res.json()["ok"] is True
        # migrations ran before the workers started: the API answers (401 without a token)
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/projects", timeout=5).status_code == 401
        assert db.exists()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def test_unwritable_output_is_a_message(database_url: str, project_id: int, tmp_path: Path) -> None:
    pytest.importorskip("goldlabel.services.exports")
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run(database_url, "export", str(project_id), "--format", "jsonl", "--output", str(blocker / "out.jsonl"))
    assert_failed(result, 1, "os_error")
