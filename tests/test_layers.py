"""The layers as a checked contract: ``lint-imports`` (import-linter, in the ``test`` extra)
keeps every contract in ``[tool.importlinter]`` of pyproject.toml — cli -> app -> api | web ->
services -> formats | storage -> domain; SQLAlchemy only in storage/; quality/, models/ and
client/ standing alone; schemas.py and config.py below every layer. A missing import-linter
fails this test rather than skipping it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = REPO / "pyproject.toml"


def _lint_imports(config: Path) -> subprocess.CompletedProcess:
    program = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    command = [sys.executable, "-c", program, "--config", str(config), "--no-cache"]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


def test_every_contract_is_kept():
    result = _lint_imports(PYPROJECT)
    if result.returncode != 0:
        pytest.fail(f"`lint-imports` found a broken import contract (rc {result.returncode}):\n"
                    f"{result.stdout}{result.stderr}", pytrace=False)
    assert "0 broken" in result.stdout


def test_the_layers_name_every_package():
    # A new top-level package must be placed in a layer or given a contract of its own.
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    layered = {m.strip() for layer in next(c for c in config["contracts"] if c["id"] == "layers")["layers"]
               for m in layer.replace(":", "|").split("|")}
    standing_alone = {m for c in config["contracts"] if c["type"] == "forbidden" for m in c["source_modules"]}
    package = REPO / "src" / "goldlabel"
    modules = {f"goldlabel.{p.stem}" for p in package.iterdir()
               if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.stem != "__init__")}
    assert modules - layered - standing_alone == set()


def test_a_leak_breaks_the_contract(tmp_path):
    # The contract can fail: the same contracts over a copy of the package in which the
    # library imports the server.
    src = tmp_path / "src"
    shutil.copytree(REPO / "src" / "goldlabel", src / "goldlabel",
                    ignore=shutil.ignore_patterns("__pycache__", "static", "templates"))
    leak = src / "goldlabel" / "quality" / "leak.py"
    leak.write_text("from goldlabel.services import context\n")
    config = tmp_path / "contracts.toml"
    config.write_text(PYPROJECT.read_text())
    program = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
               "from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())")
    command = [sys.executable, "-c", program, str(src), "--config", str(config), "--no-cache", "--contract",
               "quality-stands-alone"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "goldlabel.quality.leak -> goldlabel.services.context" in result.stdout
