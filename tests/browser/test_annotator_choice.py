"""The annotate loop for choice-like questions, keyboard only, with the submit -> next timing."""

from __future__ import annotations

import statistics

import pytest

pytestmark = pytest.mark.browser

SENTIMENT = {"questions": [{"name": "sentiment", "kind": "choice", "title": "Sentiment of the review",
                            "labels": ["positive", "negative", "neutral"]}]}
INSTRUCTIONS = """# How to label
Pick the **overall** sentiment of the review.

- *positive*: the customer is happy
- *negative*: the customer complains
- *neutral*: neither

See the [guide](https://example.com/guide) for edge cases."""


def item_text(page) -> str:
    return page.locator(".item-data .field-text").first.inner_text()


def test_choice_keyboard_only_ten_items(page, server, ui):
    annotator = server.make_user()
    project = server.make_project(SENTIMENT, annotators=[annotator], instructions=INSTRUCTIONS,
                                  name="Product reviews")
    reviews = [f"Review {i}: the blender {'works great' if i % 2 else 'broke after a week'}." for i in range(10)]
    server.add_items(project, [{"external_id": f"r{i}", "data": {"text": t}} for i, t in enumerate(reviews)])
    ui.open_workspace(project, annotator)
    ui.screenshot("workspace-start")
    page.keyboard.press("Enter")  # Start
    expected = {}
    for n in range(10):
        page.wait_for_selector(".question[data-kind=choice]")
        text = item_text(page)
        label_key = "1" if "great" in text else "2"
        if n == 0:
            page.keyboard.press(label_key)
            ui.screenshot("workspace-choice")
        else:
            page.keyboard.press(label_key)
        expected[text] = "positive" if label_key == "1" else "negative"
        page.keyboard.press("Enter")
        if n < 9:
            ui.wait_for_next(".item-data .field-text", text)
    page.wait_for_selector("#ws-message:not([hidden])")
    assert "No items need your answer" in page.inner_text("#ws-message")
    page.wait_for_function("() => document.getElementById('stat-today').textContent === '10'")
    assert page.inner_text("#stat-streak") == "1"
    answers = server.answers_of(project, annotator)
    assert len(answers) == 10
    for answer in answers:
        assert answer["value"] == {"sentiment": expected[answer["item"]["data"]["text"]]}
    transitions = page.evaluate("window.__goldlabel.transitions")
    assert len(transitions) == 9  # the 10th submit found the queue empty
    median = statistics.median(transitions)
    print(f"\nsubmit -> next item rendered: median {median:.1f} ms, max {max(transitions):.1f} ms, "
          f"n={len(transitions)}: {[round(t, 1) for t in transitions]}")
    assert median < 100, transitions


def test_multi_choice_and_rating(page, server, ui):
    annotator = server.make_user()
    schema = {"questions": [
        {"name": "topics", "kind": "multi_choice", "labels": ["sport", "politics", "tech", "culture"],
         "max_selections": 2},
        {"name": "quality", "kind": "rating", "min": 1, "max": 5, "title": "Writing quality",
         "scale_labels": ["awful", "poor", "ok", "good", "great"]},
    ]}
    project = server.make_project(schema, annotators=[annotator], name="News topics")
    server.add_items(project, [{"external_id": f"n{i}", "data": {"text": f"Headline {i}: chips and elections"}}
                               for i in range(10)])
    ui.open_workspace(project, annotator)
    page.keyboard.press("Enter")
    for n in range(10):
        page.wait_for_selector(".item-data .field-text")
        text = page.locator(".item-data .field-text").inner_text()
        page.keyboard.press("3")  # tech
        page.keyboard.press("2")  # politics
        page.keyboard.press("4")  # a third one is refused: max 2
        page.keyboard.press("]")  # next question: the rating
        if n % 2:
            page.keyboard.press("4")
        else:
            page.keyboard.press("ArrowRight")  # from unset: the minimum
            page.keyboard.press("ArrowRight")  # 2
        if n == 0:
            ui.screenshot("workspace-multi-choice-rating")
        page.keyboard.press("Enter")
        if n < 9:
            ui.wait_for_next(".item-data .field-text", text)
    page.wait_for_selector("#ws-message:not([hidden])")
    answers = server.answers_of(project, annotator)
    assert len(answers) == 10
    assert [a["value"] for a in answers] == [
        {"topics": ["politics", "tech"], "quality": 4 if n % 2 else 2} for n in range(10)
    ]


def test_login_logout(page, server, ui):
    annotator = server.make_user()
    server.make_project(SENTIMENT, annotators=[annotator], name="Support tickets",
                        description="Route incoming tickets")
    page.goto("/")
    page.wait_for_url("**/login?next=/")
    ui.screenshot("login")
    page.fill("input[name=username]", annotator.username)
    page.fill("input[name=password]", "wrong password")
    page.keyboard.press("Enter")
    assert "Wrong username or password" in page.inner_text(".alert")
    page.allowed_problems = ("401",)  # the browser logs the failed login's status
    page.fill("input[name=password]", "plum-otter-canvas-42")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: url.endswith("/"))
    assert "Support tickets" in page.inner_text(".project-list")
    ui.screenshot("projects")
    page.click("[data-testid=logout]")
    page.wait_for_url("**/login")
    page.goto("/")
    page.wait_for_url("**/login?next=/")
