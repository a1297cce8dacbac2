"""The lint gate: ``ruff check src tests benchmarks`` (the same command as ``make lint``) finds
nothing. The rules are ruff's, configured under ``[tool.ruff]`` in pyproject.toml; ruff is in the
``test`` extra, so a missing ruff fails this test rather than skipping it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
COMMAND = [sys.executable, "-m", "ruff", "check", "src", "tests", "benchmarks"]


def test_ruff_finds_nothing():
    # The return code is the verdict; ruff's own output is the failure message.
    result = subprocess.run(COMMAND, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        pytest.fail(
            f"`ruff check src tests benchmarks` failed (rc {result.returncode}); fix the findings "
            f"(`ruff check --fix src tests benchmarks` applies the safe fixes):\n"
            f"{result.stdout}{result.stderr}",
            pytrace=False,
        )
