"""``goldlabel db``: schema migrations and backups."""

from __future__ import annotations

from pathlib import Path

import click

from goldlabel.cli.root import CliState, pass_state


@click.group()
def db() -> None:
    """Database schema management."""


@db.command("upgrade")
@pass_state
def upgrade(state: CliState) -> None:
    """Bring the database schema up to date (creates the SQLite file if needed).

    Every other command does this on its own when the schema is behind; run it explicitly
    before starting several servers on one PostgreSQL database, or in a deploy step.
    """
    from goldlabel.storage.migrate import fetch_revision, upgrade_database

    ctx = state.context(migrate=False)
    before = fetch_revision(ctx.engine)
    upgrade_database(ctx.engine)
    after = fetch_revision(ctx.engine)
    if before == after:
        click.echo(f"database is up to date (revision {after})")
    else:
        click.echo(f"database upgraded from {before or 'empty'} to revision {after}")


@db.command("backup")
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@pass_state
def backup(state: CliState, dest: Path) -> None:
    """Write a consistent backup of the live database to DEST (a new file).

    SQLite: a database file made with SQLite's online backup API (servers keep running; restore
    by copying it into place while they are stopped). PostgreSQL: a pg_dump archive in its
    custom format (restore with pg_restore); needs pg_dump on PATH.
    """
    from goldlabel.storage.backup import backup as backup_database

    kind = backup_database(state.settings.database_url, dest)
    size = dest.stat().st_size
    click.echo(f"backup written to {dest} ({kind}, {size:,} bytes)")
