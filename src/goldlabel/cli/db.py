"""``goldlabel db``: schema migrations."""

from __future__ import annotations

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
