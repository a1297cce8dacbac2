"""Ten items of each remaining question kind, end to end in Chromium: text, spans, boxes,
ranking (pairwise and ordered lists)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

SELECT_RECT_JS = """
(sub) => {
  const el = document.querySelector('[data-testid=span-text]');
  for (const seg of el.children) {
    const i = seg.textContent.indexOf(sub);
    if (i < 0) continue;
    const range = document.createRange();
    range.setStart(seg.firstChild, i);
    range.setEnd(seg.firstChild, i + sub.length);
    const rects = range.getClientRects();
    const a = rects[0], b = rects[rects.length - 1];
    return [a.left + 1, (a.top + a.bottom) / 2, b.right - 1, (b.top + b.bottom) / 2];
  }
  return null;
}
"""


def select_with_mouse(page, substring: str) -> None:
    x0, y0, x1, y1 = page.evaluate(SELECT_RECT_JS, substring)
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=4)
    page.mouse.up()


def start(ui, project, annotator):
    ui.open_workspace(project, annotator)
    ui.page.keyboard.press("Enter")


def test_text_ten_items(page, server, ui):
    annotator = server.make_user()
    schema = {"questions": [{"name": "summary", "kind": "text", "min_length": 1, "max_length": 200,
                             "title": "Summarize the ticket in one line"}]}
    project = server.make_project(schema, annotators=[annotator], name="Ticket summaries")
    server.add_items(project, [{"external_id": f"t{i}", "data": {"text": f"Ticket {i}: my order arrived broken."}}
                               for i in range(10)])
    start(ui, project, annotator)
    for n in range(10):
        page.wait_for_selector("textarea.text-answer:focus")
        text = page.inner_text(".item-data .field-text")
        page.keyboard.type(f"Broken order — résumé {n} 😀")
        if n == 0:
            ui.screenshot("workspace-text")
        page.keyboard.press("Control+Enter")
        if n < 9:
            ui.wait_for_next(".item-data .field-text", text)
    page.wait_for_selector("#ws-message:not([hidden])")
    answers = server.answers_of(project, annotator)
    assert [a["value"]["summary"] for a in answers] == [f"Broken order — résumé {n} 😀" for n in range(10)]


def test_spans_ten_items_mouse_and_keyboard(page, server, ui):
    annotator = server.make_user()
    schema = {"questions": [{"name": "entities", "kind": "spans", "labels": ["PER", "LOC", "ORG"],
                             "title": "Mark people and places"}]}
    project = server.make_project(schema, annotators=[annotator], name="Named entities")
    # The emoji before the names is two UTF-16 units but one code point: offsets must convert.
    texts = [f"🙂 Ada Lovelace met Charles Babbage in London, {1830 + i} 🎉." for i in range(10)]
    server.add_items(project, [{"external_id": f"s{i}", "data": {"text": t}} for i, t in enumerate(texts)])
    start(ui, project, annotator)
    for n in range(10):
        page.wait_for_selector("[data-testid=span-text]")
        text = page.inner_text("[data-testid=span-text]")
        if n % 2 == 0:
            select_with_mouse(page, "Ada Lovelace")
            page.keyboard.press("1")
            select_with_mouse(page, "London")
            page.keyboard.press("2")
        else:
            # Keyboard: word cursor on "Ada", extend over "Lovelace", label; then a sticky label.
            for key in ("ArrowRight", "ArrowRight", "Shift+ArrowRight", "1", "2"):
                page.keyboard.press(key)
            select_with_mouse(page, "London")
        if n == 0:
            select_with_mouse(page, "Charles")
            page.keyboard.press("3")
            assert page.locator(".span-chip").count() == 3
            page.locator(".span-chip", has_text="Charles").locator("button.remove").click()
            assert page.locator(".span-chip").count() == 2
            ui.screenshot("workspace-spans")
        page.keyboard.press("Enter")
        if n < 9:
            ui.wait_for_next("[data-testid=span-text]", text)
    page.wait_for_selector("#ws-message:not([hidden])")
    answers = server.answers_of(project, annotator)
    assert len(answers) == 10
    for answer in answers:
        t = answer["item"]["data"]["text"]
        per, loc = t.index("Ada Lovelace"), t.index("London")  # Python indexes code points
        assert answer["value"]["entities"] == [
            {"start": per, "end": per + len("Ada Lovelace"), "label": "PER"},
            {"start": loc, "end": loc + len("London"), "label": "LOC"},
        ]


def test_boxes_ten_items(page, server, ui, image_url):
    annotator = server.make_user()
    schema = {"questions": [{"name": "objects", "kind": "boxes", "labels": ["car", "person"],
                             "title": "Box every car and person"}]}
    project = server.make_project(schema, annotators=[annotator], name="Street scenes")
    server.add_items(project, [{"external_id": f"b{i}", "data": {"image": image_url, "caption": f"scene {i}"}}
                               for i in range(10)])
    start(ui, project, annotator)

    def drag(layer, a, b, steps=5):
        page.mouse.move(layer["x"] + a[0] * layer["width"], layer["y"] + a[1] * layer["height"])
        page.mouse.down()
        page.mouse.move(layer["x"] + b[0] * layer["width"], layer["y"] + b[1] * layer["height"], steps=steps)
        page.mouse.up()

    for n in range(10):
        page.wait_for_selector(".boxes-image")
        page.wait_for_function("() => document.querySelector('.boxes-image').complete")
        caption = page.inner_text(".item-data .field-text")
        layer = page.locator("[data-testid=boxes-layer]").bounding_box()
        # Draw, then label: a number key labels the box just drawn (and the next ones).
        drag(layer, (0.10, 0.45), (0.40, 0.70))
        page.keyboard.press("1")
        drag(layer, (0.62, 0.35), (0.72, 0.70))
        page.keyboard.press("2")
        if n == 0:
            drag(layer, (0.30, 0.05), (0.50, 0.20))  # a wrong box, then delete it (it is selected)
            page.keyboard.press("Delete")
            drag(layer, (0.25, 0.575), (0.30, 0.625))  # move the car box by +0.05, +0.05
            page.locator(".box.c0").click(position={"x": 3, "y": 3})  # select the car
            se = page.locator(".box.selected .handle.se").bounding_box()
            page.mouse.move(se["x"] + se["width"] / 2, se["y"] + se["height"] / 2)
            page.mouse.down()
            page.mouse.move(layer["x"] + 0.50 * layer["width"], layer["y"] + 0.80 * layer["height"], steps=4)
            page.mouse.up()
            ui.screenshot("workspace-boxes")
        page.keyboard.press("Enter")
        if n < 9:
            ui.wait_for_next(".item-data .field-text", caption)
    page.wait_for_selector("#ws-message:not([hidden])")
    answers = server.answers_of(project, annotator)
    assert len(answers) == 10
    for i, answer in enumerate(answers):
        car, person = answer["value"]["objects"]
        scene_0 = answer["item"]["data"]["caption"] == "scene 0"
        want_car = (0.15, 0.50, 0.35, 0.30) if scene_0 else (0.10, 0.45, 0.30, 0.25)
        assert car["label"] == "car" and person["label"] == "person"
        assert [car[k] for k in "xywh"] == pytest.approx(want_car, abs=0.01), (i, car)
        assert [person[k] for k in "xywh"] == pytest.approx((0.62, 0.35, 0.10, 0.35), abs=0.01), (i, person)


MARKDOWN_RESPONSE = "DNS maps **names** to addresses.\n\n1. resolver\n2. root\n\n`dig example.com`"


def test_pairwise_llm_comparison_ten_items(page, server, ui):
    annotator = server.make_user()
    schema = {"questions": [{"name": "preference", "kind": "ranking", "title": "Which response is better?"}]}
    project = server.make_project(schema, annotators=[annotator], name="LLM preferences")
    server.add_items(project, [
        {"external_id": f"p{i}", "data": {"prompt": f"Explain DNS, variant {i}", "responses": [
            {"id": "model_a", "text": MARKDOWN_RESPONSE}, {"id": "model_b", "text": f"It is a *phone book* ({i})."}]}}
        for i in range(10)
    ])
    start(ui, project, annotator)
    keys = ["1", "2", "a", "b", "2", "1", "b", "a", "1", "2"]
    for n, key in enumerate(keys):
        page.wait_for_selector(".pairwise .prompt")
        prompt = page.inner_text(".pairwise .prompt .markdown")
        assert page.locator(".response[data-side=A] strong").inner_text() == "names"
        assert page.locator(".response[data-side=B] em").inner_text() == "phone book"
        assert "model_a" not in page.inner_text(".pairwise")  # ids would bias the judgment
        page.keyboard.press(key)
        if n == 1:
            ui.screenshot("workspace-pairwise")
        page.keyboard.press("Enter")
        if n < 9:
            ui.wait_for_next(".pairwise .prompt .markdown", prompt)
    page.wait_for_selector("#ws-message:not([hidden])")
    answers = server.answers_of(project, annotator)
    expected = [["model_a", "model_b"] if k in "1a" else ["model_b", "model_a"] for k in keys]
    assert [a["value"]["preference"] for a in answers] == expected


def test_ranking_list_ten_items_keys_and_drag(page, server, ui):
    annotator = server.make_user()
    schema = {"questions": [{"name": "rank", "kind": "ranking", "candidates": ["fast", "cheap", "good"],
                             "title": "Rank what matters most to this customer"}]}
    project = server.make_project(schema, annotators=[annotator], name="Priorities")
    server.add_items(project, [{"external_id": f"k{i}", "data": {"text": f"Customer note {i}"}} for i in range(10)])
    start(ui, project, annotator)
    for n in range(10):
        page.wait_for_selector(".ranking-list")
        text = page.inner_text(".item-data .field-text")
        if n % 2 == 0:
            for key in ("3", "ArrowUp", "ArrowUp"):  # "good" to the top
                page.keyboard.press(key)
        else:
            cards = page.locator(".rank-card")
            cards.nth(2).drag_to(cards.nth(0))
        if n == 0:
            ui.screenshot("workspace-ranking")
        page.keyboard.press("Enter")
        if n < 9:
            ui.wait_for_next(".item-data .field-text", text)
    page.wait_for_selector("#ws-message:not([hidden])")
    answers = server.answers_of(project, annotator)
    assert [a["value"]["rank"] for a in answers] == [["good", "fast", "cheap"]] * 10
