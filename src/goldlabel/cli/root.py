"""The root command group: the global ``--database`` option, the lazily opened context, and the
one place where errors turn into a message on stderr and an exit code (never a traceback)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NoReturn

import click
import pydantic

from goldlabel import __version__
from goldlabel.config import Settings
from goldlabel.domain.errors import GoldlabelError
from goldlabel.services.access import Actor
from goldlabel.services.context import Context
from goldlabel.storage.handles import DatabaseError

# Exit codes: 1 = the operation failed (bad input, not found, conflict, unreachable database);
# 2 = the command line itself is wrong (click's usage errors use 2 as well).
EXIT_FAILED = 1
EXIT_USAGE = 2

# Services take ``actor=None`` for the local operator where they write; the listing services
# always want an actor, so the CLI reads as an admin: whoever runs it owns the database file.
LOCAL_OPERATOR = Actor(id=0, username="local-operator", role="admin")


class CliFailure(click.ClickException):
    """An error message already worded for the terminal."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def format_validation_error(exc: pydantic.ValidationError) -> str:
    lines = [f"{exc.error_count()} invalid field(s) [validation_failed]"]
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "(input)"
        lines.append(f"  {path}: {err['msg']} [{err['type']}]")
    return "\n".join(lines)


@dataclass
class CliState:
    """What every command gets: the settings (from --database and GOLDLABEL_*) and a context
    opened on first use, with the schema brought up to date."""

    database: str | None
    _settings: Settings | None = None
    _context: Context | None = None
    _closers: list[Any] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = Settings.from_env(database_url=self.database)
            except pydantic.ValidationError as exc:
                raise CliFailure("bad GOLDLABEL_* setting: " + format_validation_error(exc)) from exc
        return self._settings

    def with_database(self, database: str | None) -> None:
        """A command-level --database (``demo --database``) overrides the global one."""
        if database is not None:
            self.database = database
            self._settings = None

    def context(self, *, migrate: bool = True) -> Context:
        if self._context is None:
            from goldlabel.storage.migrate import is_up_to_date, upgrade_database

            try:
                ctx = Context.from_settings(self.settings)
            except ValueError as exc:  # unsupported URL
                raise CliFailure(str(exc)) from exc
            self._context = ctx
            if migrate and not is_up_to_date(ctx.engine):
                upgrade_database(ctx.engine)
        return self._context

    def close(self) -> None:
        if self._context is not None:
            self._context.close()
            self._context = None


class GoldlabelGroup(click.Group):
    """Turns the errors a command can meet into one message on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GoldlabelError as exc:
            raise CliFailure(str(exc)) from exc
        except pydantic.ValidationError as exc:
            raise CliFailure(format_validation_error(exc)) from exc
        except DatabaseError as exc:
            first = str(exc.orig or exc).strip().splitlines()[0]
            raise CliFailure(f"database error: {first} [database_error]") from exc
        except OSError as exc:  # a file that cannot be read or written, a port in use
            raise CliFailure(f"{exc} [os_error]") from exc


@click.group(cls=GoldlabelGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database",
    metavar="URL",
    envvar="GOLDLABEL_DATABASE_URL",
    show_envvar=True,
    default=None,
    help="sqlite:///FILE or postgresql+psycopg://USER@HOST/DB [default: sqlite:///goldlabel.db "
    "in the working directory]",
)
@click.version_option(__version__, prog_name="goldlabel")
@click.pass_context
def cli(ctx: click.Context, database: str | None) -> None:
    """goldlabel: a self-hosted data engine for high-quality training labels."""
    state = CliState(database=database)
    ctx.obj = state
    ctx.call_on_close(state.close)


pass_state = click.make_pass_decorator(CliState)


def iter_pages(fetch_page: Callable[[int, int], list[dict]], page_size: int = 500) -> Iterator[dict]:
    """Every row of a keyset-paged service listing: ``fetch_page(after, limit)``."""
    after = 0
    while True:
        page = fetch_page(after, page_size)
        yield from page
        if len(page) < page_size:
            return
        after = page[-1]["id"]


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def echo_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """A plain aligned table; an empty list prints only the header."""
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def fail(message: str, exit_code: int = EXIT_FAILED) -> NoReturn:
    raise CliFailure(message, exit_code)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="goldlabel")
