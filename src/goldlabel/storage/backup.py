"""Backups of a live database: SQLite's online backup API, PostgreSQL's ``pg_dump``.

Both copy a consistent snapshot while servers keep writing: SQLite's backup API copies the pages
of one read transaction (WAL mode lets writers go on; the copy restarts only if this connection
is written to, and it never is), ``pg_dump`` reads in one repeatable-read transaction.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess  # nosec B404  # runs pg_dump with a fixed argument list, never a shell
from pathlib import Path

import sqlalchemy as sa

from goldlabel.domain.errors import GoldlabelError

# Pages copied per step: small steps let writers in between them.
SQLITE_PAGES_PER_STEP = 1024


def BackupError(detail: str) -> GoldlabelError:  # named as the exception it builds
    return GoldlabelError(detail, code="backup_failed", status=500)


def backend_of(url: str) -> str:
    return sa.make_url(url).get_backend_name()


def backup(url: str, dest: Path) -> str:
    """Write a backup of the database at ``url`` to ``dest`` (which must not exist); return the
    format written: ``sqlite`` (a database file) or ``pg_dump-custom`` (for ``pg_restore``)."""
    if dest.exists():
        raise BackupError(f"{dest} exists; choose a new file (a backup never overwrites one)")
    backend = backend_of(url)
    if backend == "sqlite":
        backup_sqlite(url, dest)
        return "sqlite"
    if backend == "postgresql":
        backup_postgres(url, dest)
        return "pg_dump-custom"
    raise BackupError(f"no backup for {backend} databases")


def sqlite_path(url: str) -> Path:
    database = sa.make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database has nothing to back up")
    return Path(database)


def backup_sqlite(url: str, dest: Path) -> None:
    source_path = sqlite_path(url)
    if not source_path.exists():
        raise BackupError(f"no database file at {source_path}")
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
    try:
        source.execute("PRAGMA busy_timeout = 30000")
        target = sqlite3.connect(partial)
        try:
            source.backup(target, pages=SQLITE_PAGES_PER_STEP)
            # The copy is one file: no WAL beside it.
            target.execute("PRAGMA journal_mode = DELETE")
            status = target.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            target.close()
    finally:
        source.close()
    if status != "ok":
        partial.unlink(missing_ok=True)
        raise BackupError(f"the copy failed its integrity check: {status}")
    os.replace(partial, dest)


def libpq_url(url: str) -> tuple[str, dict[str, str]]:
    """The libpq URL ``pg_dump`` takes, and the environment carrying the password (a password
    on a command line is visible to every user of the machine)."""
    parsed = sa.make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def backup_postgres(url: str, dest: Path) -> None:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise BackupError("pg_dump not found on PATH; install the PostgreSQL client tools "
                          "(Debian: postgresql-client)")
    target, env = libpq_url(url)
    partial = dest.with_name(dest.name + ".partial")
    argv = [pg_dump, "--format=custom", "--no-owner", "--no-privileges", f"--file={partial}", target]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)  # nosec B603  # fixed argv, no shell
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {done.stderr.strip() or done.returncode}")
    os.replace(partial, dest)
