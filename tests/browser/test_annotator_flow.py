"""The workspace around the answer: predictions as a starting point, my answers (edit while
open), skip, the empty queue and an expired lease; nothing shown reveals gold."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

SENTIMENT = {"questions": [{"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"]}]}


def start(ui, project, annotator):
    ui.open_workspace(project, annotator)
    ui.page.keyboard.press("Enter")


def test_predictions_prefill_and_edit_history(page, server, ui):
    annotator = server.make_user()
    # A second annotator who has not answered yet keeps the items open (with nobody left to answer
    # them they would go to review, and an answer to a closed item cannot be changed).
    project = server.make_project(SENTIMENT, annotators=[annotator, server.make_user()], name="Pre-labeled reviews",
                                  overlap_min=2, settings={"show_predictions": True})
    server.add_items(project, [
        {"external_id": f"q{i}", "data": {"text": f"Review {i}"},
         "predictions": [{"value": {"sentiment": "negative"}, "score": 0.81, "model_version": "clf-v3"}]}
        for i in range(3)
    ])
    start(ui, project, annotator)
    page.wait_for_selector("#ws-prediction-note:not([hidden])")
    assert "clf-v3" in page.inner_text("#ws-prediction-note")
    assert page.get_attribute(".opt[aria-pressed=true]", "aria-pressed") == "true"
    assert "negative" in page.inner_text(".opt[aria-pressed=true]")
    ui.screenshot("workspace-prediction")
    first = page.inner_text(".item-data .field-text")
    page.keyboard.press("Enter")  # accept the prediction as it is
    ui.wait_for_next(".item-data .field-text", first)
    second = page.inner_text(".item-data .field-text")
    page.keyboard.press("1")  # correct it
    page.keyboard.press("Enter")
    ui.wait_for_next(".item-data .field-text", second)
    third = page.inner_text(".item-data .field-text")
    page.wait_for_function("() => document.getElementById('stat-today').textContent === '2'")

    # My answers: the newest first; open the older one and change it (its item is still open).
    page.keyboard.press("h")
    page.wait_for_selector(".history-entry")
    ui.screenshot("workspace-history")
    entries = page.locator(".history-entry")
    assert entries.count() == 2
    entries.nth(1).click()
    page.wait_for_selector("#ws-mode:not([hidden])")
    assert page.inner_text(".item-data .field-text") == first
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.wait_for_selector(".history-list .notice")
    page.keyboard.press("Escape")  # back to the item that was being answered, still leased
    page.wait_for_selector("#ws-task:not([hidden])")
    assert page.inner_text(".item-data .field-text") == third
    answers = {a["item"]["data"]["text"]: a["value"]["sentiment"] for a in server.answers_of(project, annotator)}
    assert answers == {first: "positive", second: "positive"}


def test_skip_then_empty_queue(page, server, ui):
    annotator = server.make_user()
    project = server.make_project(SENTIMENT, annotators=[annotator], name="Skip me")
    server.add_items(project, [{"external_id": f"k{i}", "data": {"text": f"Text {i}"}} for i in range(3)])
    start(ui, project, annotator)
    page.wait_for_selector(".item-data .field-text")
    skipped = page.inner_text(".item-data .field-text")
    page.keyboard.press("s")
    ui.wait_for_next(".item-data .field-text", skipped)
    seen = []
    for _ in range(2):
        text = page.inner_text(".item-data .field-text")
        seen.append(text)
        page.keyboard.press("2")
        page.keyboard.press("Enter")
        if len(seen) < 2:
            ui.wait_for_next(".item-data .field-text", text)
    page.wait_for_selector("#ws-message:not([hidden])")
    ui.screenshot("workspace-empty-queue")
    assert "No items need your answer" in page.inner_text("#ws-message")
    assert skipped not in seen
    assert len(server.answers_of(project, annotator)) == 2


def test_expired_lease_is_reported(page, server, ui):
    slow, fast = server.make_user(), server.make_user()
    project = server.make_project(SENTIMENT, annotators=[slow, fast], name="Short leases", lease_ttl_s=5)
    server.add_items(project, [{"external_id": "only", "data": {"text": "The only item"}}])
    start(ui, project, slow)
    page.wait_for_selector(".item-data .field-text")
    page.wait_for_function("() => document.getElementById('lease-countdown').textContent === 'lease expired'",
                           timeout=10_000)
    # Someone else takes the free slot and answers; the late answer is refused.
    with server.api_as(fast) as api:
        lease = api.post(f"/api/v1/projects/{project['id']}/next").json()
        assert api.post(f"/api/v1/projects/{project['id']}/answers",
                        json={"lease_token": lease["token"], "value": {"sentiment": "positive"}}).status_code == 201
    page.allowed_problems = ("409",)  # the browser logs the refused request
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.wait_for_selector("#ws-failure:not([hidden])")
    assert "lease expired" in page.inner_text("#ws-failure")
    assert server.answers_of(project, slow) == []


def test_gold_items_look_like_any_item(page, server, ui):
    annotator = server.make_user()
    project = server.make_project(SENTIMENT, annotators=[annotator], name="Gold mix",
                                  settings={"gold_rate": 1.0})
    server.add_items(project, [
        {"external_id": "g", "data": {"text": "Known answer here"}, "gold": {"sentiment": "negative"}},
        {"external_id": "n", "data": {"text": "Normal text"}},
    ])
    start(ui, project, annotator)
    shown = []
    for _ in range(3):
        page.wait_for_selector(".item-data .field-text, #ws-message:not([hidden])")
        if not page.is_hidden("#ws-message"):
            break
        text = page.inner_text(".item-data .field-text")
        shown.append(text)
        html = page.content().lower().replace("gold mix", "").replace("goldlabel", "")
        assert "gold" not in html  # no flag, no class, no hint, no known answer
        page.keyboard.press("1")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "(t) => !document.getElementById('ws-message').hidden || "
            "document.querySelector('.item-data .field-text')?.textContent !== t", arg=text)
    assert sorted(shown) == ["Known answer here", "Normal text"]
