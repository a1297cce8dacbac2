"""Smoke test: every quality-engine benchmark script runs end to end on a tiny subset (--quick).

Skipped when the crowd datasets are not present (they are not shipped with goldlabel).
``--quick`` skips the crowd-kit worker (seconds of pandas/crowd-kit imports), so this file stays
well under 20 s; the full runs (and ``--quick --crowdkit``) compare against crowd-kit. The
login-spray benchmark (a real server, marked slow) runs with tiny parameters.
"""

from __future__ import annotations

import json
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


@pytest.mark.slow
def test_login_spray_tiny(tmp_path):
    """The login-spray benchmark runs end to end against a real server (SQLite), and its figures
    hold what the throttle promises: from one client address, at most the address bucket's
    ``login_attempts_per_minute`` (10) wrong passwords are checked in a short phase; the rest are
    refused with 429 before any hashing, and the annotator keeps answering through it."""
    out = tmp_path / "spray.json"
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "login_spray.py"), "--backend", "sqlite", "--duration", "5",
         "--clients", "3", "--usernames", "6", "--accounts", "2", "--addresses", "1", "--items", "20000",
         "--warm-up", "0.5", "--json", str(out)],
        capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| annotator | cycles |" in result.stdout and "Login spray: sqlite" in result.stdout
    figures = json.loads(out.read_text())
    statuses = figures["spray"]["statuses"]
    # How many attempts a short phase gets through depends on the machine's load (each checked
    # one is an Argon2 hash); whatever the number, no more than 10 are checked.
    assert figures["spray"]["attempts"] > 0 and set(statuses) <= {"401", "429"}, statuses
    assert statuses.get("401", 0) <= 10, statuses
    assert statuses.get("429", 0) == figures["spray"]["attempts"] - statuses.get("401", 0)
    assert figures["spray"]["addresses_seen"] == 1
    # enough items for both phases (2,000 ran out within the quiet phase once the loop got faster)
    assert "next 204" not in figures["annotator_errors"], figures["annotator_errors"]
    assert figures["quiet"]["cycles"] > 0 and figures["under_spray"]["cycles"] > 0
    assert figures["rss_mb"]["peak_spray"] > 0 and figures["rss_mb"]["peak_quiet"] > 0
