"""Browser tests: a real ``goldlabel`` server in a subprocess and Debian's Chromium driven by
Playwright, as an annotator would use them.

One server and one browser serve the whole session (starting them is the slow part); every test
seeds its own users and project through the services, on the same SQLite file, so tests do not
see each other's work. If Chromium cannot start the tests FAIL: a UI that is not tested is not
known to work.
"""

from __future__ import annotations

import base64
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import LiveServer

from goldlabel.config import Settings
from goldlabel.services import import_rows
from goldlabel.services import projects as project_service
from goldlabel.services import users as user_service
from goldlabel.services.access import Actor
from goldlabel.services.context import Context
from goldlabel.storage.migrate import upgrade_database

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("GOLDLABEL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PASSWORD = "plum-otter-canvas-42"
SCREENSHOT_DIR = REPO / "docs" / "screenshots"


class Server:
    """A running goldlabel server plus a service context on the same database for seeding."""

    def __init__(self, base_url: str, ctx: Context) -> None:
        self.base_url = base_url
        self.ctx = ctx
        self._ids = itertools.count(1)

    def make_user(self, role: str = "annotator", username: str | None = None) -> Actor:
        name = username or f"{role}{next(self._ids)}"
        row = user_service.create_user(self.ctx, None, name, role, PASSWORD)
        return Actor(row["id"], row["username"], row["role"])

    def make_project(self, schema: dict, *, annotators: list[Actor] = (), name: str | None = None,
                     instructions: str = "", **spec: Any) -> dict:
        manager = self.make_user("manager")
        project = project_service.create_project(
            self.ctx, manager, name or f"project {next(self._ids)}", schema, instructions=instructions, **spec,
        )
        for annotator in annotators:
            project_service.set_member(self.ctx, manager, project["id"], annotator.id, "annotator")
        project["manager"] = manager
        return project

    def add_items(self, project: dict, rows: list[dict]) -> None:
        report = import_rows.ingest_rows(self.ctx, None, project["id"], enumerate(rows, 1))
        assert report.error_count == 0, report

    def answers_of(self, project: dict, annotator: Actor) -> list[dict]:
        """The annotator's answers, oldest first, read through the services."""
        from goldlabel.services.queue import answers as answers_service

        rows = answers_service.list_my_answers(self.ctx, annotator, project["id"], 0, 1000)
        return list(reversed(rows))

    def api_as(self, actor: Actor) -> httpx.Client:
        token = user_service.create_token(self.ctx, None, actor.id)["token"]
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    db = tmp_path_factory.mktemp("browser") / "goldlabel.db"
    settings = Settings(database_url=f"sqlite:///{db}", secret_key="browser-test-secret")
    ctx = Context.from_settings(settings)
    upgrade_database(ctx.engine)
    env = {  # Every browser test logs in from 127.0.0.1: the per-address throttle would refuse the
           # suite itself (tests/web/test_login_security.py tests the throttle).
           "GOLDLABEL_LOGIN_ATTEMPTS_PER_MINUTE": "100000",
           # The model worker stays off: a test that wants a model trains it (Train now, or the service).
           "GOLDLABEL_MODEL_INTERVAL_S": "0"}
    live = LiveServer(settings.database_url, db.parent, env=env, secret_key=settings.secret_key, uvicorn=True)
    try:
        live.start().wait_ready()
    except AssertionError as exc:
        live.stop()
        ctx.close()
        pytest.fail(f"goldlabel server did not start: {exc}")
    yield Server(live.base, ctx)
    live.stop()
    ctx.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    except PlaywrightError as exc:
        playwright.stop()
        pytest.fail(f"Chromium could not start from {CHROMIUM} (apt-get install chromium): {exc}")
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    """A fresh browser profile per test. JavaScript errors and CSP violations fail the test."""
    context = browser.new_context(base_url=server.base_url, viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" and "favicon" not in msg.text else None)
    page.on("response", lambda r: problems.append(f"HTTP {r.status} {r.request.method} {r.url}")
            if r.status >= 400 else None)
    page.problems = problems
    yield page
    context.close()
    allowed = getattr(page, "allowed_problems", ())
    unexpected = [p for p in problems if not any(a in p for a in allowed)]
    assert not unexpected, unexpected


class UI:
    """What the tests do through the browser, over and over."""

    def __init__(self, page: Any, server: Server, tmp_path: Path) -> None:
        self.page = page
        self.server = server
        self.tmp_path = tmp_path

    def login(self, user: Actor, next_path: str = "/") -> None:
        self.page.goto(f"/login?next={next_path}")
        self.page.fill("input[name=username]", user.username)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.keyboard.press("Enter")
        target = self.server.base_url + next_path
        self.page.wait_for_url(lambda url: url == target)

    def open_workspace(self, project: dict, user: Actor) -> None:
        self.login(user, f"/projects/{project['id']}/annotate")
        self.page.wait_for_selector("#start-button:focus")

    def screenshot(self, name: str) -> Path:
        """Into docs/screenshots when GOLDLABEL_SCREENSHOTS=1 (to refresh the docs), else next to
        the test's temporary files."""
        folder = SCREENSHOT_DIR if os.environ.get("GOLDLABEL_SCREENSHOTS") == "1" else self.tmp_path
        path = folder / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def wait_for_next(self, selector: str, previous: str) -> None:
        """Wait until the element's text differs from ``previous`` (the next item is shown)."""
        try:
            self.page.wait_for_function(
                "([sel, prev]) => { const el = document.querySelector(sel); return el && el.textContent !== prev; }",
                arg=[selector, previous],
            )
        except Exception:
            print("DEBUG", self.page.inner_text("main"), self.page.problems)
            raise


@pytest.fixture
def ui(page: Any, server: Server, tmp_path: Path) -> UI:
    return UI(page, server, tmp_path)


def svg_data_url(width: int = 640, height: int = 400) -> str:
    """A test image that needs no network: a street scene of flat shapes."""
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 640 400">'
        '<rect width="640" height="400" fill="#cfe3f3"/><rect y="260" width="640" height="140" fill="#8a8f98"/>'
        '<rect x="60" y="190" width="220" height="90" rx="18" fill="#c0392b"/>'
        '<circle cx="110" cy="285" r="24" fill="#222"/><circle cx="230" cy="285" r="24" fill="#222"/>'
        '<circle cx="430" cy="150" r="26" fill="#f1c27d"/><rect x="405" y="178" width="50" height="100" rx="10" '
        'fill="#2e86c1"/>'
        '</svg>'
    )
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


@pytest.fixture(scope="session")
def image_url() -> str:
    return svg_data_url()
