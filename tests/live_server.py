"""One way for a test to run a real goldlabel server process (``goldlabel serve`` or uvicorn's
factory over ``goldlabel.app:create_app``) on a loopback port, and to know at once when it answers.

Starting the process (the interpreter, goldlabel's imports, the app) is the slow part and is what
it is; the wait for it is not: /healthz is asked every ``POLL_S`` on one kept client (a refused
connection costs microseconds), so a test carries on within a few milliseconds of the server
being up, and a server that exits at start fails the test at once with its log's tail.

The server gets the parent's environment without any ``GOLDLABEL_*`` variable (a test's server
sees exactly the settings the test gives it), and dies with the test process (PR_SET_PDEATHSIG)
should that be killed.

Imported by the tests as ``live_server`` (tests/ is on sys.path, as for every conftest), and by
benchmarks/kill9.py and benchmarks/login_spray.py, which put tests/ on sys.path: the tests and the
kill -9 harness start and wait for a server one way.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

import httpx

POLL_S = 0.02
START_TIMEOUT_S = 120.0  # a loaded CI machine once took 90 s to start a server

try:  # resolved here, before any fork: the child makes only the one call
    import ctypes

    _PRCTL = ctypes.CDLL("libc.so.6", use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _PRCTL = None


def _die_with_parent() -> None:
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command(port: int, *extra: str) -> list[str]:
    """``goldlabel serve`` (the CLI, as an operator starts it)."""
    return [sys.executable, "-m", "goldlabel.cli", "serve", "--port", str(port), *extra]


def uvicorn_command(port: int) -> list[str]:
    """uvicorn's factory over ``create_app`` (settings from the environment), one process."""
    return [sys.executable, "-m", "uvicorn", "goldlabel.app:create_app", "--factory", "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning"]


class LiveServer:
    """A server process on ``database_url``; ``start()`` launches it, ``wait_ready()`` waits for
    its /healthz. ``uvicorn=True`` runs uvicorn's factory instead of ``goldlabel serve``.
    Restartable (``kill9()`` then ``start()`` again, on the same port and log)."""

    def __init__(self, database_url: str, workdir: Path, *, env: dict[str, str] | None = None,
                 secret_key: str = "live-server-test-secret", uvicorn: bool = False, port: int | None = None,
                 name: str = "server") -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.uvicorn = uvicorn
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDLABEL_")}
        self.env.update(GOLDLABEL_DATABASE_URL=database_url, GOLDLABEL_SECRET_KEY=secret_key,
                        GOLDLABEL_LOG_LEVEL="warning")
        self.env.update(env or {})
        self.log_path = workdir / f"{name}-{self.port}.log"
        self.proc: subprocess.Popen | None = None
        self.clients: list[httpx.Client] = []
        self.starts = 0  # processes launched (restarts included)
        self.started_at = 0.0  # time.monotonic() of the last start()

    def start(self) -> Self:
        command = uvicorn_command(self.port) if self.uvicorn else serve_command(self.port)
        self.started_at = time.monotonic()
        self.starts += 1
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.log_path.parent,
                                         preexec_fn=_die_with_parent)  # noqa: PLW1509 - one prctl call
        return self

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> float:
        """Seconds from ``start()`` until /healthz answered 200; fails the test if the process
        exits or does not answer within ``timeout`` of now."""
        assert self.proc is not None, "start() first"
        started = time.monotonic()
        with httpx.Client(timeout=2.0) as probe:
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError(f"the server exited at start ({self.proc.returncode}):\n{self.log_tail()}")
                try:
                    if probe.get(f"{self.base}/healthz").status_code == 200:
                        return time.monotonic() - self.started_at
                except httpx.TransportError:
                    pass
                if time.monotonic() - started > timeout:
                    raise AssertionError(f"the server did not answer /healthz in {timeout} s:\n{self.log_tail()}")
                time.sleep(POLL_S)

    def client(self, token: str | None = None, **kw) -> httpx.Client:
        """An HTTP client on this server (closed by ``stop()``), with a Bearer token if given."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.clients.append(httpx.Client(base_url=self.base, headers=headers, timeout=30.0, **kw))
        return self.clients[-1]

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def terminate(self) -> None:
        """SIGTERM (a graceful shutdown) without waiting for it; ``stop()`` waits."""
        for c in self.clients:
            c.close()
        self.clients.clear()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        self.terminate()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Self:
        if self.proc is None:
            self.start()
        self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_all(servers: list[LiveServer]) -> list[LiveServer]:
    """Launch every server, then wait for each: their starts overlap."""
    for s in servers:
        s.start()
    try:
        for s in servers:
            s.wait_ready()
    except BaseException:
        stop_all(servers)
        raise
    return servers


def stop_all(servers: list[LiveServer]) -> None:
    """SIGTERM to every server, then wait for each: their shutdowns overlap."""
    for s in servers:
        s.terminate()
    for s in servers:
        s.stop()
