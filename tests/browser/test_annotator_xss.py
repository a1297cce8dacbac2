"""Hostile item data, instructions, labels and names render as text and never execute."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

IMG = '<img src=x onerror="window.__xss=1">'
SCRIPT = "<script>window.__xss=1</script>"
SVG = '<svg onload="window.__xss=1"></svg>'
MD_LINKS = ("[click me](javascript:window.__xss=1) [tab](java\tscript:window.__xss=1) "
            "[data](data:text/html,<script>window.__xss=1</script>) [ok](https://example.com/safe)")
PAYLOAD = f"{IMG} {SCRIPT} {SVG} {MD_LINKS} \" onmouseover=\"window.__xss=1"


def test_xss_payloads_never_execute(page, server, ui):
    annotator = server.make_user()
    schema = {"questions": [
        {"name": "verdict", "kind": "choice", "labels": [IMG, SCRIPT], "title": IMG, "description": MD_LINKS},
        {"name": "entities", "kind": "spans", "labels": [SVG]},
        {"name": "preference", "kind": "ranking"},
    ]}
    project = server.make_project(schema, annotators=[annotator], name=f"Evil {IMG}",
                                  instructions=f"# Rules {SCRIPT}\n\n{PAYLOAD}\n\n- {IMG}\n\n```\n{SCRIPT}\n```")
    server.add_items(project, [{"external_id": "x", "data": {
        "text": PAYLOAD, "prompt": PAYLOAD, IMG: PAYLOAD, "image": "javascript:window.__xss=1",
        "responses": [{"id": SCRIPT, "text": PAYLOAD}, {"id": "b", "text": f"**bold** {IMG}"}],
    }}])
    page.add_init_script("window.__xss = undefined;")
    ui.login(annotator)
    assert IMG in page.inner_text(".project-list")  # the name shows as text
    page.goto(f"/projects/{project['id']}/annotate")
    page.wait_for_selector("#start-button:focus")
    page.keyboard.press("Enter")
    page.wait_for_selector(".pairwise .prompt")
    # Interact with everything that could fire a handler.
    page.hover(".pairwise .prompt")
    page.click("text=click me")
    page.click("text=tab")
    page.keyboard.press("2")
    page.wait_for_timeout(300)
    ui.screenshot("workspace-xss")
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("img[src=x], svg[onload], script:not([src]):not([type='application/json'])").count() == 0
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    assert not [h for h in hrefs if not h.startswith(("/", "https:"))], hrefs
    assert "https://example.com/safe" in hrefs
    assert SCRIPT in page.inner_text("#instructions-body")
    assert IMG in page.inner_text(".question[data-kind=choice] legend")
    assert page.locator(".item-data .field-name", has_text=IMG).count() == 1
