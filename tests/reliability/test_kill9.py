"""kill -9 in CI (issue 17, item 11): benchmarks/kill9.py drives a real ``goldlabel serve``
process on a real database (a SQLite file; a fresh PostgreSQL database it creates and drops)
under concurrent lease/submit load from retrying Bearer and browser (cookie + CSRF) clients,
SIGKILLs it at random moments and restarts it, then checks from the database that every
acknowledged answer is present, nothing is duplicated, Q1-Q3 hold, SQLite's integrity check
passes and the queue drained.

The negative control runs the same harness with a faulty proxy that acknowledges submissions
before the server has them: the harness must report lost answers and fail.

Each run prints its seed; ``benchmarks/kill9.py --seed N`` replays the same kill schedule.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "kill9.py"
KILLS = 10


def harness(tmp_path: Path, *args: str, timeout: float = 1200) -> tuple[int, dict, str]:
    out = tmp_path / "kill9.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--json", str(out), *args], capture_output=True,
                          text=True, timeout=timeout, check=False, cwd=REPO)
    text = done.stdout + done.stderr
    assert done.returncode != 2, f"the harness itself failed:\n{text}"
    return done.returncode, json.loads(out.read_text()), text


def _admin_url(pg_database: str) -> str:
    import sqlalchemy as sa

    return sa.make_url(pg_database).set(database="postgres").render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_args(request: pytest.FixtureRequest) -> list[str]:
    if request.param == "sqlite":
        return ["--backend", "sqlite"]
    # pg_database: the conftest's reachability rule (skip locally without a server, fail in CI).
    return ["--backend", "postgres", "--pg-admin", _admin_url(request.getfixturevalue("pg_database"))]


@pytest.mark.slow
def test_no_acknowledged_answer_is_lost_over_kills(backend_args, tmp_path):
    code, result, text = harness(tmp_path, *backend_args, "--kills", str(KILLS), "--max-up", "1.2")
    assert code == 0, text
    assert result["kills"] >= KILLS
    assert result["lost"] == 0 and result["duplicated"] == 0 and not result["failures"], text
    # The load was real: answers acknowledged across the kills, by both kinds of client.
    assert result["acknowledged"] > 5 * KILLS, text
    assert result["transport_retries"] > 0, text  # requests were cut by the kills and sent again
    assert result["bearer_clients"] > 0 and result["browser_clients"] > 0
    assert result["undrained_items"] == 0
    if "sqlite" in backend_args:
        assert result["integrity_check"] == "ok"


@pytest.mark.slow
def test_the_harness_catches_an_answer_acknowledged_before_commit(tmp_path):
    code, result, text = harness(tmp_path, "--backend", "sqlite", "--kills", "3", "--ack-before-commit",
                                 "--min-up", "0.5", "--max-up", "1.0")
    assert code == 1, text
    assert result["lost"] > 0, text
    assert any("acknowledged answers lost" in f for f in result["failures"]), text
