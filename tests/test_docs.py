"""The docs cover what the code has (Datasette-style): every CLI command and option is in
docs/cli.md, every setting in docs/deployment.md, and the README's links resolve.

``python tests/test_docs.py`` (or ``make docs``) rewrites the generated settings table.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click
import pytest

from goldlabel.cli import cli
from goldlabel.config import ENV_PREFIX, Settings

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def iter_commands(group: click.Group = cli, path: tuple[str, ...] = ("goldlabel",)):
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from iter_commands(command, (*path, name))
        else:
            yield " ".join((*path, name)), command


COMMANDS = dict(iter_commands())


def _default_text(name: str) -> str:
    field = Settings.model_fields[name]
    if name == "database_url":
        return "`sqlite:///goldlabel.db` in the working directory"
    if field.default == "":
        return "empty"
    return f"`{field.default}`"


def settings_table() -> str:
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        description = (field.description or "").replace("|", "\\|")
        lines.append(f"| `{ENV_PREFIX}{name.upper()}` | {_default_text(name)} | {description} |")
    return "\n".join(lines)


def render_deployment(text: str) -> str:
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{settings_table()}\n{END}{tail}"


def test_the_cli_has_the_contracted_commands() -> None:
    # Scripts depend on these spellings (issue 2, deliverable 9): renaming one is a breaking change.
    assert {
        "goldlabel serve", "goldlabel demo", "goldlabel projects create", "goldlabel projects list",
        "goldlabel import", "goldlabel export", "goldlabel users create", "goldlabel users token",
        "goldlabel users list", "goldlabel db upgrade", "goldlabel aggregate",
    } <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_and_option_is_documented(name: str) -> None:
    text = (DOCS / "cli.md").read_text()
    section = re.search(rf"^## `{re.escape(name)}`\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert section, f"docs/cli.md has no section '## `{name}`'"
    for param in COMMANDS[name].params:
        if isinstance(param, click.Option) and not param.hidden:
            assert f"`{param.opts[0]}" in section.group(1), f"{name}: option {param.opts[0]} is not documented"


def test_global_options_are_documented() -> None:
    text = (DOCS / "cli.md").read_text()
    for param in cli.params:
        if isinstance(param, click.Option):
            assert f"`{param.opts[0]}" in text


def test_every_setting_is_documented() -> None:
    text = (DOCS / "deployment.md").read_text()
    for name in Settings.model_fields:
        assert f"`{ENV_PREFIX}{name.upper()}`" in text, f"setting {name} is not in docs/deployment.md"
    assert text == render_deployment(text), "the settings table is out of date: run `make docs`"


def test_readme_quick_start_and_links() -> None:
    readme = (REPO / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    for doc in re.findall(r"\]\(((?:docs/)?[\w./-]+\.md)(?:#[\w-]+)?\)", readme):
        assert (REPO / doc).exists(), f"README links to missing {doc}"
    for name in COMMANDS:
        assert name.removeprefix("goldlabel ") in readme, f"README's CLI summary lacks {name}"


OWN_PAGES = ("README.md", "CHANGELOG.md", "docs/quickstart.md", "docs/cli.md", "docs/deployment.md")


@pytest.mark.parametrize("name", OWN_PAGES)
def test_links_between_pages_resolve(name: str) -> None:
    page = REPO / name
    for target in re.findall(r"\]\(([\w./-]+\.md)(?:#[\w-]+)?\)", page.read_text()):
        assert (page.parent / target).resolve().exists(), f"{name} links to missing {target}"


if __name__ == "__main__":
    path = DOCS / "deployment.md"
    path.write_text(render_deployment(path.read_text()))
    sys.exit(0)
