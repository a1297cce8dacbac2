"""What `make demo` and `make test` would run on a fresh machine (make -n: nothing runs)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def dry_run(target: str, tmp_path: Path) -> str:
    # A virtualenv path that does not exist: make plans the whole set-up from scratch.
    result = subprocess.run(["make", "-n", target, f"VENV={tmp_path / 'venv'}"], cwd=REPO, capture_output=True,
                            text=True, timeout=60, check=True)
    return result.stdout


def test_demo_installs_goldlabel_without_the_test_tools(tmp_path: Path) -> None:
    planned = dry_run("demo", tmp_path)
    installs = [line for line in planned.splitlines() if "pip install" in line]
    assert installs and all("[test]" not in line and "playwright" not in line for line in installs), planned
    assert "goldlabel demo" in planned


def test_test_and_lint_install_the_test_extra(tmp_path: Path) -> None:
    for target in ("test", "lint"):
        planned = dry_run(target, tmp_path)
        assert any("pip install" in line and "'.[test" in line for line in planned.splitlines()), planned
