"""The restore drill of docs/operations.md, on both backends: a live database with answers (and a
writer still answering while the backup runs), backed up with ``goldlabel db backup``, restored
with the documented commands, every answer of the snapshot compared.

PostgreSQL needs ``pg_dump`` / ``pg_restore`` (the PostgreSQL client tools, there wherever the
server is installed): missing, the test skips, or fails with a clear message when CI is set.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from goldlabel.storage.backup import libpq_url

ANSWERED_BEFORE = 40


def goldlabel(*args: str, database: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDLABEL_")}
    return subprocess.run([sys.executable, "-m", "goldlabel.cli", "--database", database, *args],
                          capture_output=True, text=True, timeout=120, env=env, check=False)


def answers_of(url: str) -> dict[int, tuple]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, item_id, annotator_id, value FROM answers")).all()
    finally:
        engine.dispose()
    return {r[0]: (r[1], r[2], str(r[3])) for r in rows}


def answer_all(client, project_id: int, n: int | None = None) -> int:
    done = 0
    while n is None or done < n:
        lease = client.post(f"/api/v1/projects/{project_id}/next")
        if lease.status_code == 204:
            break
        res = client.post(f"/api/v1/projects/{project_id}/answers",
                          json={"lease_token": lease.json()["token"], "value": {"sentiment": "positive"}})
        assert res.status_code == 201, res.text
        done += 1
    return done


def need_pg_tools() -> None:
    missing = [tool for tool in ("pg_dump", "pg_restore") if shutil.which(tool) is None]
    if missing:
        message = f"{', '.join(missing)} not on PATH: install the PostgreSQL client tools (Debian: postgresql-client)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def test_backup_restore_drill(backend, database_url, factory, tmp_path):
    if backend == "postgres":
        need_pg_tools()
    annotators = [factory.make_user() for _ in range(3)]
    project = factory.make_project(annotators=annotators, overlap_min=2)
    factory.add_items(project, 120)
    for annotator in annotators[:2]:
        assert answer_all(factory.api_as(annotator), project["id"], ANSWERED_BEFORE // 2) == ANSWERED_BEFORE // 2
    before = answers_of(database_url)
    assert len(before) == ANSWERED_BEFORE

    # A writer keeps answering while the backup runs: the backup is of a live database.
    stop = threading.Event()
    writer_done: list[int] = []

    def writer() -> None:
        client = factory.api_as(annotators[2])
        n = 0
        while not stop.is_set() and answer_all(client, project["id"], 1):
            n += 1
        writer_done.append(n)

    thread = threading.Thread(target=writer)
    thread.start()
    backup = tmp_path / ("backup.db" if backend == "sqlite" else "backup.dump")
    try:
        done = goldlabel("db", "backup", str(backup), database=database_url)
    finally:
        stop.set()
        thread.join()
    assert done.returncode == 0, done.stderr
    assert f"backup written to {backup}" in done.stdout
    again = goldlabel("db", "backup", str(backup), database=database_url)
    assert again.returncode == 1 and "[backup_failed]" in again.stderr

    after = answers_of(database_url)
    if backend == "sqlite":
        # The documented restore: the file in place (no -wal / -shm of an older file beside it).
        restored = tmp_path / "restored.db"
        shutil.copyfile(backup, restored)
        assert not Path(f"{backup}-wal").exists()
        assert sqlite3.connect(restored).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        restored_url = f"sqlite:///{restored}"
        drop = None
    else:
        name = f"goldlabel_restore_{uuid.uuid4().hex[:8]}"
        admin_url = sa.make_url(database_url).set(database="postgres").render_as_string(hide_password=False)
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        restored_url = sa.make_url(database_url).set(database=name).render_as_string(hide_password=False)

        def drop() -> None:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

        target, env = libpq_url(restored_url)
        res = subprocess.run([shutil.which("pg_restore"), "--no-owner", f"--dbname={target}", str(backup)],
                             capture_output=True, text=True, timeout=120, env=env, check=False)
        assert res.returncode == 0, res.stderr
    try:
        upgraded = goldlabel("db", "upgrade", database=restored_url)
        assert upgraded.returncode == 0 and "up to date" in upgraded.stdout, upgraded.stdout + upgraded.stderr
        listed = goldlabel("projects", "list", database=restored_url)
        assert listed.returncode == 0 and "test project" in listed.stdout, listed.stderr
        restored_answers = answers_of(restored_url)
    finally:
        if drop is not None:
            drop()
    # Every answer acknowledged before the backup started is in it, unchanged; whatever the
    # writer added during the backup is either in it whole or not at all.
    assert {k: restored_answers.get(k) for k in before} == before
    assert all(after[k] == v for k, v in restored_answers.items())
    assert writer_done and len(after) == ANSWERED_BEFORE + writer_done[0]
