"""``goldlabel users``: create users, set passwords, issue API tokens, list users."""

from __future__ import annotations

import sys
from typing import get_args

import click

from goldlabel.cli.root import (
    LOCAL_OPERATOR,
    CliState,
    echo_json,
    echo_table,
    fail,
    iter_pages,
    pass_state,
)
from goldlabel.schemas import Role
from goldlabel.services import totp as totp_service
from goldlabel.services import users as user_service
from goldlabel.services.context import Context

ROLE_CHOICE = click.Choice(get_args(Role))


def iter_users(ctx: Context):
    return iter_pages(lambda after, limit: user_service.list_users(ctx, LOCAL_OPERATOR, after, limit))


def find_user(ctx: Context, username: str) -> dict:
    return user_service.find_user(ctx, LOCAL_OPERATOR, username)


def _read_password(password: str | None, password_stdin: bool) -> str | None:
    if password is not None and password_stdin:
        fail("give --password or --password-stdin, not both", 2)
    if password_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            fail("--password-stdin: standard input gave no password", 2)
        return value
    if password is not None:
        return password
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return None


@click.group()
def users() -> None:
    """Create users, set passwords, issue API tokens, list users."""


@users.command("create")
@click.argument("username")
@click.option("--role", type=ROLE_CHOICE, required=True, help="Global role of the user.")
@click.option("--password", default=None, help="Password (at least 8 characters). Visible to other "
              "local users in the process list: prefer --password-stdin.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@click.option("--display-name", default="", help="Name shown in the UI.")
@pass_state
def create_user(state: CliState, username: str, role: str, password: str | None, password_stdin: bool,
                display_name: str) -> None:
    """Create user USERNAME with a global ROLE.

    Without --password or --password-stdin the password is asked for on a terminal; with no
    terminal the user gets no password and signs in with API tokens only.
    """
    secret = _read_password(password, password_stdin)
    user = user_service.create_user(state.context(), None, username, role, secret, display_name)
    click.echo(f"created user {user['username']} (id {user['id']}, role {user['role']})")
    if secret is None:
        click.echo("no password set: this user authenticates with API tokens only "
                   f"(goldlabel users token {username})", err=True)


@users.command("set-password")
@click.argument("username")
@click.option("--password", default=None, help="The new password (at least 8 characters). Visible to other "
              "local users in the process list: prefer --password-stdin.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@pass_state
def set_password(state: CliState, username: str, password: str | None, password_stdin: bool) -> None:
    """Set the password of USERNAME (the way back in for a forgotten one).

    Without --password or --password-stdin it is asked for on a terminal. The user's browser
    sessions end; their API tokens keep working (revoke those on the Users page or over the API).
    """
    secret = _read_password(password, password_stdin)
    if secret is None:
        fail("no terminal to ask for the password: give --password-stdin", 2)
    ctx = state.context()
    user = find_user(ctx, username)
    user_service.update_user(ctx, LOCAL_OPERATOR, user["id"], {"password": secret})
    click.echo(f"password of {username} set; their browser sessions have ended")


@users.command("disable-totp")
@click.argument("username")
@pass_state
def disable_totp(state: CliState, username: str) -> None:
    """Turn off two-factor login for USERNAME (a lost phone and no recovery codes left).

    They log in with their password alone until they enrol again (at once, if their role
    requires it). Recorded in the audit log.
    """
    ctx = state.context()
    user = find_user(ctx, username)
    totp_service.disable(ctx, LOCAL_OPERATOR, user["id"], None, "")
    click.echo(f"two-factor login of {username} is off")


@users.command("token")
@click.argument("username")
@click.option("--name", default="", help="A label for the token, e.g. the script that uses it.")
@pass_state
def create_token(state: CliState, username: str, name: str) -> None:
    """Issue a new API token for USERNAME and print it.

    The token is shown this once (only its hash is stored): keep it now.
    """
    ctx = state.context()
    user = find_user(ctx, username)
    token = user_service.create_token(ctx, None, user["id"], name)
    click.echo(token["token"])
    click.echo(f"token for {username} shown once, only its hash is stored: keep it now", err=True)


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def list_users(state: CliState, as_json: bool) -> None:
    """List users."""
    rows = list(iter_users(state.context()))
    if as_json:
        echo_json(rows)
        return
    echo_table(rows, ["id", "username", "role", "is_active", "display_name"])
