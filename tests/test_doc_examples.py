"""Docs examples are tests: every code block of README.md and docs/*.md runs as written.

Conventions (docs/development.md, "Docs examples are tests"):

- Every fenced block names its language. ``python`` blocks run in process, ``console`` blocks
  run their ``$ `` commands (a command whose shown output starts with ``error:`` must fail), and
  ``shell`` / ``sh`` / ``bash`` blocks run whole. Other languages (json, text, csv, http, ini,
  nginx, ...) are not run.
- The blocks of one page run in order and share state: one Python namespace and one bash
  process per page, so a later block uses what an earlier one made (``gl``, ``$PROJECT``).
- They run against a fresh demo (``goldlabel demo``'s seed) served on loopback, in an empty
  working directory that holds ``demo-data/demo.db`` (that server's database), ``.venv`` (this
  checkout's) and the sample files ``items.jsonl``, ``items.csv``, ``bad.jsonl`` (two bad
  rows), ``schema.json``, ``answers.csv`` and ``gold.csv`` (tests/test_doc_examples.py
  ``_sample_files``). ``http://localhost:8000`` and ``http://127.0.0.1:8000`` are that server.
  Python has ``MANAGER_TOKEN`` and ``ADMIN_TOKEN`` (tokens of the demo's ``manager`` and of an
  ``admin``); the shell has them as ``$MANAGER_TOKEN`` / ``$ADMIN_TOKEN``, ``$TOKEN`` (the
  manager's),
  ``GOLDLABEL_DATABASE_URL`` set to the demo's database and ``.venv/bin`` first on ``PATH``.
- ``<!-- docs-test: skip REASON -->`` on the line before a block skips it, only where running
  it is impossible here (``make demo``, a server that would not return, a path that is not
  there); the reason is required.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<lang>[\w+-]*)[^\n]*$")
SKIP = re.compile(r"^<!--\s*docs-test:\s*skip\b\s*(?P<reason>.*?)\s*-->\s*$")
RUN = {"python", "console", "shell", "sh", "bash"}
SHELLS = {"console", "shell", "sh", "bash"}
LOCAL_URLS = ("http://localhost:8000", "http://127.0.0.1:8000")
BLOCK_SECONDS = 60
DONE = "__goldlabel_docs_block_done__"


@dataclass
class Block:
    page: str
    line: int  # of the opening fence
    lang: str
    text: str
    skip: str | None  # the reason, when marked

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def parse_blocks(path: Path, page: str | None = None) -> list[Block]:
    page = page or str(path.relative_to(REPO))
    blocks: list[Block] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence = opening["fence"]
        start, body = i, []
        i += 1
        while i < len(lines) and not lines[i].lstrip().startswith(fence):
            body.append(lines[i].removeprefix(opening["indent"]))
            i += 1
        i += 1
        before = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marker = SKIP.match(before.strip())
        blocks.append(Block(page, start + 1, opening["lang"].lower(), "\n".join(body) + "\n",
                            marker["reason"] if marker else None))
    return blocks


BLOCKS = {str(p.relative_to(REPO)): parse_blocks(p) for p in PAGES}


def test_every_block_names_its_language_and_every_skip_its_reason():
    bare = [b.where for blocks in BLOCKS.values() for b in blocks if not b.lang]
    assert not bare, "blocks without a language (```python, ```console, ```json, ```text, ...): " + ", ".join(bare)
    unexplained = [b.where for blocks in BLOCKS.values() for b in blocks if b.skip == ""]
    assert not unexplained, "<!-- docs-test: skip --> without a reason: " + ", ".join(unexplained)


def test_the_parser_finds_blocks_and_markers(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("x\n\n```python\nprint(1)\n```\n\n<!-- docs-test: skip it serves forever -->\n"
                    "```shell\ngoldlabel serve\n```\n````text\n```\n````\n")
    blocks = parse_blocks(page, "page.md")
    assert [(b.line, b.lang, b.text, b.skip) for b in blocks] == [
        (3, "python", "print(1)\n", None), (8, "shell", "goldlabel serve\n", "it serves forever"),
        (11, "text", "```\n", None),
    ]


def console_script(text: str) -> str:
    """A console transcript as a script: its ``$ `` commands (with ``\\`` continuations); one
    whose shown output starts with ``error:`` must fail."""
    commands: list[list[str]] = []  # [command, first output line]
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.startswith("$ "):
            if commands and commands[-1][1] is None and line.strip():
                commands[-1][1] = line
            continue
        command = line[2:]
        while command.endswith("\\") and i < len(lines):
            command += "\n" + lines[i]
            i += 1
        commands.append([command, None])
    out = []
    for command, shown in commands:
        if shown is not None and shown.startswith("error:"):
            out.append(f"if {command}\nthen echo 'docs: this command should have failed' >&2; exit 1; fi")
        else:
            out.append(command)
    return "\n".join(out) + "\n"


def test_console_transcripts_become_scripts():
    text = "$ goldlabel import 1 a.jsonl\nerror: import rejected\n$ echo a \\\n  b\na b\n$ true\n"
    assert console_script(text) == (
        "if goldlabel import 1 a.jsonl\nthen echo 'docs: this command should have failed' >&2; exit 1; fi\n"
        "echo a \\\n  b\ntrue\n"
    )


class Shell:
    """One bash for a page: its blocks run in turn in it, so variables carry over; each block's
    stdin is /dev/null, so nothing in a block can read the next one."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-s"], cwd=cwd, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self._send("set -euo pipefail\n")

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _send(self, text: str) -> None:
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def run(self, block: Block, script: str) -> None:
        try:
            # The newline first: a block's output need not end with one.
            self._send(f"{{\n{script}\n}} </dev/null\nprintf '\\n{DONE}\\n'\n")
        except BrokenPipeError:
            pytest.fail(f"{block.where}: the page's shell had already exited")
        output: list[str] = []
        deadline = time.monotonic() + BLOCK_SECONDS
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self.close()
                pytest.fail(f"{block.where}: still running after {BLOCK_SECONDS} s\n{''.join(output)}")
            if line is None:
                code = self.proc.wait()
                pytest.fail(f"{block.where} failed (exit {code}):\n{script}\n--- output ---\n{''.join(output)}")
            if line.rstrip("\n") == DONE:
                return
            output.append(line)

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


def _free_socket() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def _sample_files(directory: Path) -> None:
    """The files the examples name, shaped for the demo's sentiment project (project 1)."""
    texts = ["Works perfectly.", "Broke after a week.", "Does the job.", "Love it!"]
    (directory / "items.jsonl").write_text("".join(
        f'{{"external_id": "doc-{i}", "data": {{"text": "{t}"}}}}\n' for i, t in enumerate(texts)))
    (directory / "items.csv").write_text("external_id,text\n" + "".join(
        f"doc-csv-{i},{t}\n" for i, t in enumerate(texts)))
    labels = {"i1": "cat", "i2": "dog", "i3": "cat", "i4": "dog", "i5": "cat", "i6": "dog"}
    rows = ["item,annotator,label"]
    for n, (item, label) in enumerate(labels.items()):
        other = "dog" if label == "cat" else "cat"
        rows += [f"{item},ann1,{label}", f"{item},ann2,{label}", f"{item},ann3,{other if n % 3 == 0 else label}"]
    (directory / "answers.csv").write_text("\n".join(rows) + "\n")
    (directory / "gold.csv").write_text("item,label\ni1,cat\ni2,dog\n")
    (directory / "bad.jsonl").write_text(
        '{"external_id": "b1", "data": {"text": "Fine."}}\n'
        '{"external_id": "b2", "data": "Not an object."}\n'
        '{"external_id": "b3", "data": {"text": "Meh."}, "gold": {"sentiment": "meh"}}\n')
    (directory / "schema.json").write_text(
        '{"questions": [{"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"]}]}\n')
    # Media: two pictures, a folder and a zip of them, and sidecars naming them (docs/import-export.md#media).
    import io
    import zipfile

    from PIL import Image

    def picture(color: tuple[int, int, int], fmt: str) -> bytes:
        buf = io.BytesIO()
        Image.new("RGB", (64, 48), color).save(buf, format=fmt)
        return buf.getvalue()

    (directory / "cat.png").write_bytes(picture((200, 120, 40), "PNG"))
    (directory / "dog.jpg").write_bytes(picture((60, 60, 60), "JPEG"))
    (directory / "labels.csv").write_text("file,priority\ncat.png,5\n")
    (directory / "photos").mkdir()
    for i in range(3):
        (directory / "photos" / f"p{i}.png").write_bytes(picture((40 * i, 90, 200), "PNG"))
    with zipfile.ZipFile(directory / "photos.zip", "w") as archive:
        for i in range(2):
            archive.writestr(f"batch/z{i}.png", picture((10, 40 * i, 90), "PNG"))
    (directory / "meta.csv").write_text("file,priority,meta.camera\nbatch/z0.png,3,north\n")


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory):
    """The demo database as ``goldlabel demo`` seeds it, plus tokens, seeded once and copied per
    page: every page starts from a fresh demo, whatever the pages before it changed."""
    from goldlabel.config import Settings
    from goldlabel.demo import seed_demo
    from goldlabel.services import users as user_service
    from goldlabel.services.context import Context
    from goldlabel.storage.migrate import upgrade_database

    path = tmp_path_factory.mktemp("docs-demo") / "demo.db"
    ctx = Context.from_settings(Settings(database_url=f"sqlite:///{path}", secret_key="docs-examples"))
    try:
        upgrade_database(ctx.engine)
        seed_demo(ctx)
        users = user_service.list_users(ctx, _operator(), 0, 100)
        admin = next((u for u in users if u["role"] == "admin"), None) or user_service.create_user(
            ctx, None, "docs-admin", "admin", None)
        manager = next(u for u in users if u["username"] == "manager")
        tokens = {
            "MANAGER_TOKEN": user_service.create_token(ctx, None, manager["id"], "docs")["token"],
            "ADMIN_TOKEN": user_service.create_token(ctx, None, admin["id"], "docs")["token"],
        }
    finally:
        ctx.close()  # checkpoints the WAL: the file alone is the whole database
    return path, tokens


@pytest.fixture
def demo(demo_template, tmp_path):
    """A fresh copy of the demo served on loopback (as ``make demo`` serves it) from
    ``tmp_path/work/demo-data/demo.db``."""
    import uvicorn

    from goldlabel.app import create_app
    from goldlabel.config import Settings
    from goldlabel.services.context import Context

    template, tokens = demo_template
    work = tmp_path / "work"
    (work / "demo-data").mkdir(parents=True)
    shutil.copyfile(template, work / "demo-data" / "demo.db")
    url = f"sqlite:///{work / 'demo-data' / 'demo.db'}"
    ctx = Context.from_settings(Settings(database_url=url, secret_key="docs-examples"))
    sock = _free_socket()
    server = uvicorn.Server(uvicorn.Config(create_app(context=ctx, migrate=False), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the docs server did not start"
        time.sleep(0.02)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    yield {"work": work, "url": url, "base": base, "tokens": tokens}
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()
    ctx.close()


def _operator():
    from goldlabel.services.access import Actor

    return Actor(id=0, username="docs", role="admin")


def _localize(text: str, base: str) -> str:
    for url in LOCAL_URLS:
        text = text.replace(url, base)
    return text


def test_a_failing_block_fails_the_page(tmp_path):
    shell = Shell(tmp_path, {"PATH": os.environ["PATH"]})
    try:
        shell.run(Block("page.md", 1, "shell", "", None), "X=1\n")
        with pytest.raises(pytest.fail.Exception, match=r"page.md:2 failed \(exit 3\)"):
            shell.run(Block("page.md", 2, "shell", "", None), 'echo "$X"\nexit 3\n')
    finally:
        shell.close()


RUNNABLE = {page: [b for b in blocks if b.lang in RUN and b.skip is None] for page, blocks in BLOCKS.items()}


@pytest.mark.parametrize("page", [page for page, blocks in RUNNABLE.items() if blocks])
def test_page_examples_run_as_written(page, demo, monkeypatch):
    blocks = RUNNABLE[page]
    work = demo["work"]
    (work / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    _sample_files(work)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDLABEL_")}
    env.update(demo["tokens"], TOKEN=demo["tokens"]["MANAGER_TOKEN"])
    env["GOLDLABEL_DATABASE_URL"] = demo["url"]
    env["PATH"] = f"{Path(sys.prefix) / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    for key, value in env.items():
        if key.startswith("GOLDLABEL_") or key.endswith("_TOKEN") or key == "PATH":
            monkeypatch.setenv(key, value)
    monkeypatch.chdir(work)
    namespace: dict = {"__name__": "__docs__", **demo["tokens"]}
    shell = None
    try:
        for block in blocks:
            text = _localize(block.text, demo["base"])
            if block.lang == "python":
                try:
                    exec(compile(text, block.where, "exec"), namespace)  # noqa: S102 - the docs' own examples
                except Exception as exc:
                    raise AssertionError(f"{block.where} failed: {exc!r}\n{text}") from exc
                continue
            if shell is None:
                shell = Shell(work, env)
            shell.run(block, console_script(text) if block.lang == "console" else text)
    finally:
        if shell is not None:
            shell.close()
        client = namespace.get("gl")
        if client is not None and hasattr(client, "close"):
            client.close()
