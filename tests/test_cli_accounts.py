"""The command line a new user meets first: `serve` on a busy port, account commands, and what
`projects create` and `demo` print."""

from __future__ import annotations

import socket
from pathlib import Path

from click.testing import CliRunner

from goldlabel.cli import cli


def test_serve_on_a_busy_port_says_so_before_anything_else(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["--database", f"sqlite:///{tmp_path / 'x.db'}", "serve",
                                          "--port", str(port)])
    assert result.exit_code == 1, result.output
    assert "serving" not in result.output
    assert f"cannot listen on http://127.0.0.1:{port}" in result.stderr
    assert "choose another --port" in result.stderr
    assert "Traceback" not in result.output
