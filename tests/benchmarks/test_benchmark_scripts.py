"""Smoke test: every quality-engine benchmark script runs end to end on a tiny subset (--quick).

Skipped when the crowd datasets are not present (they are not shipped with goldlabel).
``--quick`` skips the crowd-kit worker (seconds of pandas/crowd-kit imports), so this file stays
well under 20 s; the full runs (and ``--quick --crowdkit``) compare against crowd-kit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "benchmarks"
DATASETS = Path(os.environ.get("GOLDLABEL_DATASETS") or REPO / ".." / "shared" / "datasets")


def run(script: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    # The tests assert on the return code themselves, with the script's stderr as the message.
    return subprocess.run([sys.executable, str(BENCHMARKS / script), *args], capture_output=True,
                          text=True, timeout=120, env=env, check=False)


needs_datasets = pytest.mark.skipif(not (DATASETS / "dog" / "answers.csv").exists(),
                                    reason="crowd datasets not found (set GOLDLABEL_DATASETS)")


@needs_datasets
def test_aggregation_quick():
    result = run("aggregation.py", "--quick")
    assert result.returncode == 0, result.stderr
    assert "**Accuracy (%)" in result.stdout
    assert "| gl " in result.stdout and "crowd-kit: skipped" in result.stdout
    assert "Goals (issue 3)" in result.stdout
    assert "PASS" in result.stdout or "FAIL" in result.stdout


@needs_datasets
def test_adaptive_overlap_quick():
    result = run("adaptive_overlap.py", "--quick")
    assert result.returncode == 0, result.stderr
    assert "fixed k=5, DS" in result.stdout
    assert "adaptive P>=0.95" in result.stdout
    assert "cross-checked against `item_posterior`" in result.stdout


def test_aggregation_speed_quick():
    result = run("aggregation_speed.py", "--quick")
    assert result.returncode == 0, result.stderr
    assert "goldlabel DawidSkene" in result.stdout
    assert "memory: goldlabel peak RSS" in result.stdout
    assert "Load average" in result.stdout


def test_scripts_exit_zero_without_datasets(tmp_path):
    env = dict(os.environ, GOLDLABEL_DATASETS=str(tmp_path / "absent"))
    for script in ("aggregation.py", "adaptive_overlap.py"):
        result = run(script, "--quick", env=env)
        assert result.returncode == 0, result.stderr
        assert "datasets not found" in result.stdout


def test_item_search_quick():
    """The text-search benchmark runs, and the index finds what the scan finds (it exits
    non-zero when they differ)."""
    result = run("item_search.py", "--quick")
    assert result.returncode == 0, result.stderr
    assert "| sqlite | search: no match (0 on the page) |" in result.stdout
    assert "| sqlite | import (head, text index filled afterwards) |" in result.stdout
    assert "| sqlite | index catch-up after the import (index_text) |" in result.stdout
