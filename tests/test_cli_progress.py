"""Progress of long commands: a bar on a terminal, plain lines elsewhere, nothing with --quiet."""

from __future__ import annotations

import io

import orjson
from click.testing import CliRunner

from goldlabel.cli import cli
from goldlabel.cli.progress import Progress, Steps


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_every_few_seconds_with_rate_and_time_left():
    out, clock = io.StringIO(), Clock()
    with Progress("import a.jsonl", 4 << 20, "B", stream=out, clock=clock) as progress:
        for _ in range(4):
            clock.now += 2.5
            progress.update(1 << 20)
    lines = out.getvalue().splitlines()
    # 2.5 s per MiB: a line at 5 s (2 MiB) and one at the end; never a carriage return.
    assert lines == [
        "import a.jsonl: 2.0 MiB of 4.0 MiB (50%), 409.6 KiB/s, 5 s left, 5 s",
        "import a.jsonl: 4.0 MiB of 4.0 MiB (100%), 409.6 KiB/s, 10 s, done",
    ]
    assert "\r" not in out.getvalue()


def test_quiet_prints_nothing_and_a_terminal_gets_a_bar():
    quiet = Terminal()
    with Progress("export project 1", 10, "items", quiet=True, stream=quiet) as progress:
        progress.update(10)
    assert quiet.getvalue() == ""
    tty = Terminal()
    with Progress("export project 1", 10, "items", stream=tty) as progress:
        progress.update(4)
    bar = tty.getvalue()
    assert "\r" in bar and "export project 1:  40%" in bar and "items/s" in bar


def test_steps_say_what_runs_and_how_long_it_took():
    out, clock = io.StringIO(), Clock()
    steps = Steps(stream=out, clock=clock)
    steps.start("reading a.csv")
    clock.now += 1.25
    steps.start("fitting ds")
    clock.now += 3
    steps.finish()
    assert out.getvalue().splitlines() == [
        "reading a.csv…", "reading a.csv: 1.2 s", "fitting ds…", "fitting ds: 3.0 s"]


def test_import_export_and_aggregate_report_progress_unless_quiet(tmp_path):
    db = f"sqlite:///{tmp_path / 'p.db'}"
    runner = CliRunner()
    (tmp_path / "schema.json").write_text(
        '{"questions": [{"name": "s", "kind": "choice", "labels": ["a", "b"]}]}')
    made = runner.invoke(cli, ["--database", db, "projects", "create", "--name", "p",
                               "--schema", str(tmp_path / "schema.json")])
    assert made.exit_code == 0, made.output
    project = made.stdout.strip()
    items = tmp_path / "items.jsonl"
    items.write_bytes(b"".join(orjson.dumps({"external_id": f"x{i}", "data": {"text": "t"}}) + b"\n"
                               for i in range(50)))
    assert 1024 < items.stat().st_size < 10 * 1024
    res = runner.invoke(cli, ["--database", db, "import", project, str(items)])
    assert res.exit_code == 0, res.output
    assert "import items.jsonl: 2.0 KiB of 2.0 KiB (100%)" in res.stderr and "done" in res.stderr
    res = runner.invoke(cli, ["--database", db, "import", project, str(items), "--quiet"])
    assert res.exit_code == 0 and "import items.jsonl" not in res.stderr
    res = runner.invoke(cli, ["--database", db, "export", project, "--format", "csv", "-o",
                              str(tmp_path / "out.csv")])
    assert res.exit_code == 0, res.output
    assert f"export project {project}: 50 items of 50 items (100%)" in res.stderr
    (tmp_path / "answers.csv").write_text("item,annotator,label\ni1,a,x\ni1,b,x\ni2,a,y\n")
    res = runner.invoke(cli, ["aggregate", str(tmp_path / "answers.csv"), "-o", str(tmp_path / "l.csv")])
    assert res.exit_code == 0, res.output
    assert "fitting auto on 3 answers by 2 annotators on 2 items…" in res.stderr
    res = runner.invoke(cli, ["aggregate", str(tmp_path / "answers.csv"), "-o", str(tmp_path / "l.csv"), "-q"])
    assert res.exit_code == 0 and res.stderr == ""
