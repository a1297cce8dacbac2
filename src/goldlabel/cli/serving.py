"""``goldlabel serve`` and ``goldlabel demo``: the HTTP server (uvicorn)."""

from __future__ import annotations

import os
import secrets
import socket
import sys
from pathlib import Path

import click

from goldlabel.cli.root import CliState, fail, pass_state
from goldlabel.config import ENV_PREFIX, Settings

DEMO_DATABASE = "demo-data/demo.db"


def create_worker_app():
    """uvicorn's factory for ``--workers N``: each worker process builds its app from the
    GOLDLABEL_* environment the parent set. The parent migrated already; workers must not race
    each other doing it again."""
    from goldlabel.app import create_app

    return create_app(Settings.from_env(), migrate=False)


def _export_settings(settings: Settings) -> None:
    """Worker processes are spawned, not forked: they see the settings only through the environment."""
    for name in Settings.model_fields:
        os.environ[ENV_PREFIX + name.upper()] = str(getattr(settings, name))


def run_server(state: CliState, host: str, port: int, workers: int) -> None:
    import uvicorn

    settings = state.settings
    state.context()  # opens the database and runs the migrations, once, before any worker starts
    state.close()
    if workers > 1:
        if not settings.secret_key:
            # Sessions signed in one worker must verify in the others.
            settings = settings.model_copy(update={"secret_key": secrets.token_urlsafe(32)})
        _export_settings(settings)
        uvicorn.run(
            "goldlabel.cli.serving:create_worker_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=settings.log_level,
        )
        return
    from goldlabel.app import create_app

    uvicorn.run(create_app(settings, migrate=False), host=host, port=port, log_level=settings.log_level)


def _display_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # nosec B104  # compares the host to print a URL; binds nothing
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def check_port_free(host: str, port: int) -> None:
    """Fail with a clear message when the address cannot be bound, before anything says "serving".

    Binds and releases the address as uvicorn will (SO_REUSEADDR, so a port in TIME_WAIT counts
    as free). Another process may still take it in between; uvicorn then reports that itself.
    """
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror}")
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            hint = " (is another server running there? choose another --port)" if exc.errno in (98, 48) else ""
            fail(f"cannot listen on {_display_url(host, port)}: {exc.strerror}{hint}")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0: all).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="TCP port.")
@click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Server processes. Several work on SQLite too (WAL, one writer at a time); "
              "PostgreSQL scales further.")
@pass_state
def serve(state: CliState, host: str, port: int, workers: int) -> None:
    """Run the web server: the REST API under /api/v1 and the web UI.

    Migrations run once before the server starts.
    """
    check_port_free(host, port)
    click.echo(f"goldlabel serving {_display_url(host, port)} (database {state.settings.database_url}, "
               f"{workers} worker{'s' if workers > 1 else ''})", err=True)
    run_server(state, host, port, workers)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="TCP port.")
@click.option("--database", metavar="URL", default=None,
              help=f"Database for the demo [default: the global --database, else sqlite:///{DEMO_DATABASE} "
              "in the working directory].")
@click.option("--no-serve", is_flag=True, hidden=True, help="Seed and print, then exit (for tests).")
@pass_state
def demo(state: CliState, host: str, port: int, database: str | None, no_serve: bool) -> None:
    """Seed a demo (two projects, an admin, a manager and two annotators with some answers) and serve it.

    The data is generated at start from templates with a fixed seed: nothing is downloaded.
    Running it again reuses the database and creates only what is missing.
    """
    from goldlabel.demo import seed_demo

    if database is not None:
        state.with_database(database)
    elif state.database is None:
        state.with_database(f"sqlite:///{Path.cwd() / DEMO_DATABASE}")
    url = state.settings.database_url
    if not no_serve:
        check_port_free(host, port)
    seeded = seed_demo(state.context())
    base = _display_url(host, port)
    click.echo("")
    click.echo("goldlabel demo")
    click.echo(f"  database   {url}")
    for p in seeded.projects:
        gold = f", {p.gold} gold" if p.gold else ""
        seeded_answers = f"; {p.answers_seeded} answers by the demo annotators" if p.answers_seeded else ""
        click.echo(f"  project {p.id}  {p.name} ({p.items} items{gold}{seeded_answers})"
                   f"{'' if p.is_new else ', reused'}")
        if p.model:
            click.echo(f"             {p.model}")
    click.echo(f"  web        {base}/")
    click.echo(f"  API docs   {base}/api/v1/docs")
    click.echo("")
    click.echo("  logins (username / password):")
    width = max(len(u.username) for u in seeded.users)
    for u in seeded.users:
        password = u.password or "(printed at the first start)"
        click.echo(f"    {u.username.ljust(width)}  {password.ljust(16)}  {u.role}")
    click.echo("  (admin sees every project, also one made with `goldlabel projects create` and no --manager)")
    click.echo("")
    # Show the command as it was run (`.venv/bin/goldlabel` after `make demo`): it may not be on PATH.
    program = sys.argv[0] if Path(sys.argv[0]).name == "goldlabel" else "goldlabel"
    click.echo(f"  API token: {program} --database {url} users token manager")
    if no_serve:
        return
    click.echo("  Ctrl+C stops the server.")
    run_server(state, host, port, 1)
