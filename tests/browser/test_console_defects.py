"""Small defects a new user met (issue 12, item 13), each driven in Chromium as a person would."""

from __future__ import annotations

import pytest

from goldlabel.services import projects as project_service
from goldlabel.services import review as review_service
from goldlabel.services.item_refs import decode_item

pytestmark = pytest.mark.browser

SCHEMA = {"questions": [{"name": "sentiment", "kind": "choice", "title": "Sentiment",
                         "labels": ["positive", "negative", "neutral"]}]}


def test_keyboard_word_selection_leaves_out_trailing_punctuation(page, server, ui):
    annotator = server.make_user()
    schema = {"questions": [{"name": "entities", "kind": "spans", "labels": ["PRODUCT"]}]}
    project = server.make_project(schema, annotators=[annotator], name="Products")
    text = "I bought the Anker PowerCore 10000, and (Anker) support helped."
    server.add_items(project, [{"external_id": "p1", "data": {"text": text}}])
    ui.open_workspace(project, annotator)
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=span-text]")
    # Word cursor: I, bought, the, Anker; extend over PowerCore and "10000,"; label it.
    for key in ["ArrowRight"] * 4 + ["Shift+ArrowRight"] * 2 + ["1"]:
        page.keyboard.press(key)
    # Then "(Anker)", the eighth word (labeling reset the cursor), without its brackets.
    for key in ["ArrowRight"] * 8 + ["1"]:
        page.keyboard.press(key)
    page.wait_for_selector(".span-chip >> nth=1")
    assert page.locator(".span-chip-text").all_inner_texts() == ["Anker PowerCore 10000", "Anker"]
    page.keyboard.press("Enter")
    page.wait_for_selector("#ws-message:not([hidden])")
    [answer] = server.answers_of(project, annotator)
    assert answer["value"]["entities"] == [
        {"start": 13, "end": 34, "label": "PRODUCT"}, {"start": 41, "end": 46, "label": "PRODUCT"}]


def test_review_fix_with_number_keys_and_the_page_shows_the_saved_outcome(page, server, ui):
    a1, a2 = server.make_user(), server.make_user()
    reviewer = server.make_user("reviewer")
    project = server.make_project(SCHEMA, annotators=[a1, a2], name="Tweets to fix", overlap_min=2, overlap_max=2)
    project_service.set_member(server.ctx, project["manager"], project["id"], reviewer.id, "reviewer")
    server.add_items(project, [{"external_id": "t1", "data": {"text": "Great, another Monday."}}])
    for annotator, label in ((a1, "positive"), (a2, "negative")):
        with server.api_as(annotator) as api:
            lease = api.post(f"/api/v1/projects/{project['id']}/next").json()
            assert api.post(f"/api/v1/projects/{project['id']}/answers",
                            json={"lease_token": lease["token"], "value": {"sentiment": label}}).status_code == 201
    item_id = decode_item(server.ctx, project["id"], a2.id, lease["item"]["id"])
    ui.login(reviewer, f"/console/projects/{project['id']}/items/{item_id}?review=1")
    assert "needs review" in page.inner_text("h2 .badge")
    page.click("[data-testid=review-fix-open]")
    page.wait_for_selector("#fix-questions .question.active")
    page.keyboard.press("3")  # the hint on the button: 3 = neutral
    pressed = page.locator("#fix-questions button.opt[aria-pressed=true]")
    assert pressed.inner_text().endswith("neutral")
    ui.screenshot("console-review-fix-keys")
    page.click("[data-testid=review-fix-save]")
    page.wait_for_selector("[data-testid=review-done]:not([hidden])")
    # Without a manual reload: the status badge and the consensus are the saved ones.
    assert "final" in page.inner_text("h2 .badge")
    assert "neutral" in page.inner_text("[data-testid=consensus]")
    assert "final" in page.inner_text("[data-testid=consensus]")
    assert "fixed" in page.inner_text("[data-testid=review-history]")
    assert "final" in page.inner_text("[data-testid=review-done]")
    reviews = review_service.list_reviews(server.ctx, reviewer, project["id"], item_id)
    assert [(r["action"], r["value"]) for r in reviews] == [("fix", {"sentiment": "neutral"})]


def test_users_page_new_user_can_be_suspended_and_errors_read_as_sentences(page, server, ui):
    manager = server.make_user("manager")
    ui.login(manager, "/console/users")
    # Too short a password: a sentence about the field, not the validator's code.
    page.allowed_problems = ("422",)
    page.fill("[data-testid=new-username]", "shorty")
    page.fill("[data-testid=new-password]", "short")
    page.click("[data-testid=create-user]")
    page.wait_for_selector("#user-errors:not([hidden])")
    message = page.inner_text("#user-errors")
    assert "Password must have at least 8 characters" in message, message
    assert "string_too_short" not in message and "invalid field(s)" not in message
    ui.screenshot("console-users-error")
    # A user created here gets a Suspend button at once, and it works.
    page.fill("[data-testid=new-password]", "copper meadow drifts 58")
    page.click("[data-testid=create-user]")
    page.wait_for_selector("[data-testid=suspend-shorty]")
    assert page.is_hidden("#user-errors")
    row = page.locator("tr[data-user]", has_text="shorty")
    page.click("[data-testid=suspend-shorty]")
    page.wait_for_selector("tr[data-user]:has-text('shorty') >> text=suspended")
    # In place, without a reload (which would show page 1, where the row may not be), and back.
    row.locator("button", has_text="Reactivate").click()
    page.wait_for_selector("tr[data-user]:has-text('shorty') .badge >> text=active")
    assert row.locator("button").first.inner_text() == "Suspend"
    # Action cells stay table cells: the row borders line up across the row.
    assert row.locator("td.actions").evaluate("td => getComputedStyle(td).display") == "table-cell"
    bottoms = row.locator("td").evaluate_all("tds => tds.map(td => Math.round(td.getBoundingClientRect().bottom))")
    assert len(set(bottoms)) == 1, bottoms
