"""The console's item page shows every kind of item as the workspace does: audio and video in
the workspace's players (a same-origin source that plays), a PDF's pages rendered by the server
and paged, a chat transcript turn by turn (Markdown rendered, markup left as text), and
polygons and skeletons drawn over the image. Everything under the page's CSP (the page fixture
fails a test on any CSP violation or script error)."""

from __future__ import annotations

import base64

import pytest
import sqlalchemy as sa

from goldlabel.storage.tables import items
from tests.browser.test_workspace_item_types import CHAT_ITEM, INJECTION, RECORD_WEBM, import_files, pdf, wav

pytestmark = pytest.mark.browser

SCHEMA = {"questions": [{"name": "kind", "kind": "choice", "labels": ["speech", "music", "document", "chat"]}]}


def item_ids(server, project) -> dict[str, int]:
    with server.ctx.engine.connect() as conn:
        rows = conn.execute(sa.select(items.c.external_id, items.c.id).where(items.c.project_id == project["id"]))
        return dict(rows.all())


def same_origin_status(page, selector: str) -> tuple[str, int]:
    """The element's source and the status the media route answers for it, fetched by the page."""
    return page.eval_on_selector(selector, "async (m) => [m.getAttribute('src'), "
                                           "(await fetch(m.src, {headers: {Range: 'bytes=0-15'}})).status]")


def test_console_item_page_plays_pages_and_reads_every_media_kind(page, server, ui, tmp_path):
    project = server.make_project(SCHEMA, name="Mixed media")
    page.goto("/login")
    webm = base64.b64decode(page.evaluate(RECORD_WEBM))
    import_files(server, project, tmp_path / "media",
                 {"call.wav": wav(), "clip.webm": webm, "invoice.pdf": pdf()},
                 sidecar=[{"file": "clip.webm", "data": {"fps": 10}}])
    server.add_items(project, [CHAT_ITEM])
    ids = item_ids(server, project)
    base = f"/console/projects/{project['id']}/items"
    ui.login(project["manager"], f"{base}/{ids['call.wav']}")

    # Audio: the workspace's player, its source our media route (206 for a range), and it plays.
    player = "[data-testid=media-audio] [data-testid=audio-player]"
    page.wait_for_function(f"() => {{ const a = document.querySelector('{player}'); return a && a.readyState >= 1; }}")
    src, status = same_origin_status(page, player)
    assert src.startswith(f"/api/v1/projects/{project['id']}/media/") and src.endswith(".wav") and status == 206
    assert abs(page.eval_on_selector(player, "a => a.duration") - 2.0) < 0.01
    page.click("[data-testid=media-audio] [data-testid=player-play]")
    page.wait_for_function(f"() => document.querySelector('{player}').currentTime > 0.2")
    page.click("[data-testid=media-audio] [data-testid=player-play]")
    page.wait_for_function(f"() => document.querySelector('{player}').paused")
    ui.screenshot("console-item-audio")

    # Video: frame steps with the player's keys while the focus is in it.
    page.goto(f"{base}/{ids['clip.webm']}")
    video = "[data-testid=media-video] [data-testid=video-player]"
    page.wait_for_function(f"() => {{ const v = document.querySelector('{video}'); return v && v.readyState >= 2; }}")
    src, status = same_origin_status(page, video)
    assert src.endswith(".webm") and status == 206
    page.focus(video)
    page.keyboard.press(".")
    page.click("[data-testid=media-video] button:has-text('frame ▶')")
    page.wait_for_function(f"() => Math.abs(document.querySelector('{video}').currentTime - 0.2) < 0.011")
    assert page.eval_on_selector(video, "v => v.paused")
    page.wait_for_function(f"() => {{ const v = document.querySelector('{video}');"
                           " return !v.seeking && v.readyState >= 2; }")
    ui.screenshot("console-item-video")

    # PDF: page 1 rendered by the server (?page=1), then the next page.
    page.goto(f"{base}/{ids['invoice.pdf']}")
    sheet = "[data-testid=media-pdf] [data-testid=pdf-page]"
    page.wait_for_function(f"() => {{ const i = document.querySelector('{sheet}');"
                           " return i && i.complete && i.naturalWidth; }")
    assert page.get_attribute(sheet, "src").endswith(".pdf?page=1")
    assert page.inner_text("[data-testid=media-pdf] [data-testid=pdf-where]") == "Page 1 of 3"
    page.click("[data-testid=media-pdf] button:has-text('Next')")
    page.wait_for_function(f"() => {{ const i = document.querySelector('{sheet}');"
                           " return i.src.endsWith('page=2') && i.complete && i.naturalWidth; }")
    assert page.inner_text("[data-testid=media-pdf] [data-testid=pdf-where]") == "Page 2 of 3"
    ui.screenshot("console-item-pdf")

    # Chat: turn by turn, as the workspace renders it; markup in a message stays text.
    page.goto(f"{base}/{ids['conv-1']}")
    chat = "[data-testid=media-messages] [data-testid=chat]"
    page.wait_for_selector(chat)
    assert page.locator(f"{chat} .turn").count() == 5
    assert [page.get_attribute(f"{chat} .turn[data-turn='{i}']", "class") for i in (0, 1, 2)] == \
        ["turn role-system", "turn role-user", "turn role-assistant"]
    assert INJECTION in page.inner_text(f"{chat} .turn[data-turn='3']")
    assert page.locator(f"{chat} img, {chat} script").count() == 0
    assert page.locator(f"{chat} .turn[data-turn='4'] pre").count() == 1
    ui.screenshot("console-item-chat")


def test_console_item_page_says_when_media_cannot_be_loaded(page, server, ui):
    project = server.make_project(SCHEMA, name="Lost media")
    missing = f"/api/v1/projects/{project['id']}/media/{'0' * 64}.wav"
    server.add_items(project, [{"external_id": "lost", "data": {"audio": missing}}])
    page.allowed_problems = ("404",)
    ui.login(project["manager"], f"/console/projects/{project['id']}/items/{item_ids(server, project)['lost']}")
    page.wait_for_selector("[data-testid=media-audio] [data-testid=media-failed]:not([hidden])")
    assert "could not be loaded" in page.inner_text("[data-testid=media-audio]")
