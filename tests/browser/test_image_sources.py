"""Images in the workspace: the browser applies the import's source rule (one table, both rules),
and an item whose image fails to load cannot be answered, only skipped."""

from __future__ import annotations

from goldlabel.domain.media_sources import check_image_source
from tests.domain.test_media_sources import HOSTS, TABLE

RULE_JS = """async ([values, hosts]) => {
  const dom = await import('/static/js/dom.js');
  return values.map((v) => dom.imageSourceProblem(v, hosts));
}"""


def test_workspace_rule_is_the_import_rule(page, server):
    values = [v for v, _ in TABLE] + ["http://images.lan/a.jpg", " https://x.example/a b.png "]
    page.goto("/login")
    in_browser = page.evaluate(RULE_JS, [values, list(HOSTS)])
    assert in_browser == [check_image_source(v, HOSTS) for v in values]
    assert page.evaluate(RULE_JS, [["http://images.lan/a.jpg"], []]) == ["http_host_not_allowed"]


def test_an_image_that_fails_to_load_cannot_be_submitted_only_skipped(page, server, ui, image_url):
    annotator = server.make_user()
    schema = {"questions": [{"name": "objects", "kind": "boxes", "labels": ["car", "person"],
                             "title": "Box every car and person"}]}
    project = server.make_project(schema, annotators=[annotator], name="Broken images")
    missing = f"/api/v1/projects/{project['id']}/media/{'0' * 64}.png"  # allowed, but 404s
    page.allowed_problems = (missing, "status of 404")  # the failure this test is about
    server.add_items(project, [{"external_id": "broken", "data": {"image": missing}, "priority": 10},
                               {"external_id": "fine", "data": {"image": image_url}}])
    ui.open_workspace(project, annotator)
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=media-failed]:not([hidden])")
    assert "The image could not be loaded" in page.inner_text("[data-testid=media-failed]")
    assert page.is_disabled("#submit-button")
    page.keyboard.press("Enter")  # "no objects" would be a wrong answer: Enter does nothing
    page.click(".boxes-layer", force=True)
    ui.screenshot("workspace-image-failed")
    assert server.answers_of(project, annotator) == []
    page.click("#skip-button")
    page.wait_for_function("() => document.querySelector('.boxes-image')?.complete"
                           " && document.querySelector('.boxes-image').naturalWidth > 0")
    assert page.locator("[data-testid=media-failed]").is_hidden()
    assert page.is_enabled("#submit-button")
    page.keyboard.press("Enter")
    page.wait_for_selector("#ws-message:not([hidden])")
    answers = server.answers_of(project, annotator)
    assert [a["value"] for a in answers] == [{"objects": []}]
