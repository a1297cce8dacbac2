"""Item types in the annotate workspace, in Chromium, as an annotator works them: a small dark
image fitted to the panel, zoomed, panned and brightened while boxes and polygons stay exact;
audio (play, seek, speed) beside classify / rate / transcribe; video frame steps and timestamped
notes; PDF pages rendered by the server; chat transcripts with per-turn questions and response
ranking. The media are made here: Pillow images and PDFs, a WAV from the wave module, a WebM
recorded by Chromium's own MediaRecorder."""

from __future__ import annotations

import base64
import io
import json
import math
import re
import struct
import wave

import pytest
from PIL import Image, ImageDraw

from goldlabel.services import media as media_service

pytestmark = pytest.mark.browser

BOXES = {"questions": [{"name": "objects", "kind": "boxes", "labels": ["person", "car"], "title": "Box every object"}]}
POLYGONS = {"questions": [{"name": "regions", "kind": "polygons", "labels": ["car"], "title": "Outline the car"}]}


def dark_png(width=320, height=200) -> bytes:
    """A night-camera frame: nearly black, with a dim car and a dim person."""
    image = Image.new("RGB", (width, height), (14, 16, 22))
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 110, 150, 160), fill=(60, 24, 22))
    draw.ellipse((225, 50, 245, 70), fill=(55, 48, 40))
    draw.rectangle((222, 72, 248, 140), fill=(24, 38, 60))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def import_files(server, project, folder, files: dict[str, bytes], sidecar: list[dict] | None = None) -> None:
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    side = None
    if sidecar:
        side = folder.parent / f"{folder.name}.jsonl"
        side.write_text("".join(json.dumps(row) + "\n" for row in sidecar))
    report = media_service.import_media(server.ctx, None, project["id"], folder, sidecar=side)
    assert report.error_count == 0 and report.created == len(files), report.to_dict()


def start(ui, project, annotator):
    ui.open_workspace(project, annotator)
    ui.page.keyboard.press("Enter")


def box(page, selector):
    return page.locator(selector).first.bounding_box()


def wait_for_fitted_image(page):
    page.wait_for_selector(".boxes-image")
    page.wait_for_function("() => { const i = document.querySelector('.boxes-image');"
                           " return i.complete && i.naturalWidth"
                           " && document.querySelector('.viewport-canvas').style.width; }")


def at(canvas, fx, fy):
    """The screen point of fraction (fx, fy) of the displayed image."""
    return canvas["x"] + fx * canvas["width"], canvas["y"] + fy * canvas["height"]


def drag(page, canvas, f0, f1):
    page.mouse.move(*at(canvas, *f0))
    page.mouse.down()
    page.mouse.move(*at(canvas, *f1), steps=5)
    page.mouse.up()


def visible_middle(page):
    """The fraction of the image at the middle of the panel (the image may be zoomed and panned)."""
    frame, canvas = box(page, "[data-testid=viewport]"), box(page, ".viewport-canvas")
    return ((frame["x"] + frame["width"] / 2 - canvas["x"]) / canvas["width"],
            (frame["y"] + frame["height"] / 2 - canvas["y"]) / canvas["height"])


def visible_range(page):
    """The fractions of the image in view: (left, top), (right, bottom)."""
    frame, canvas = box(page, "[data-testid=viewport]"), box(page, ".viewport-canvas")
    fx = lambda x: (x - canvas["x"]) / canvas["width"]
    fy = lambda y: (y - canvas["y"]) / canvas["height"]
    return ((max(0, fx(frame["x"])), max(0, fy(frame["y"]))),
            (min(1, fx(frame["x"] + frame["width"])), min(1, fy(frame["y"] + frame["height"]))))


def test_small_dark_image_fits_zooms_pans_and_boxes_stay_exact(page, server, ui, tmp_path):
    annotator = server.make_user()
    project = server.make_project(BOXES, annotators=[annotator], name="Night cameras")
    import_files(server, project, tmp_path / "night", {"cam1.png": dark_png()})
    start(ui, project, annotator)
    wait_for_fitted_image(page)
    frame, canvas = box(page, "[data-testid=viewport]"), box(page, ".viewport-canvas")
    # Fitted: a 320 px image fills the panel's width (about 880 px here), not 320 px of it.
    assert canvas["width"] > 2 * 320
    assert abs(canvas["width"] - frame["width"]) < 1.5 or abs(canvas["height"] - frame["height"]) < 1.5
    assert abs(canvas["width"] / canvas["height"] - 320 / 200) < 0.01
    drag(page, canvas, (0.125, 0.55), (0.47, 0.80))  # the car, drawn at the fitted size

    # Zoom: two wheel notches over the person, then the + key: the box stays on the same pixels.
    page.mouse.move(*at(canvas, 0.73, 0.5))
    page.mouse.wheel(0, -100)
    page.mouse.wheel(0, -100)
    page.keyboard.press("Escape")  # deselect the box: the arrow keys pan instead of nudging it
    page.keyboard.press("+")
    zoomed = box(page, ".viewport-canvas")
    assert abs(zoomed["width"] / canvas["width"] - 1.25 ** 3) < 0.02
    assert page.inner_text(".zoom-value") == f"{round(zoomed['width'] / 320 * 100)}%"
    car = box(page, ".box")
    assert abs((car["x"] - zoomed["x"]) / zoomed["width"] - 0.125) < 0.004
    assert abs((car["y"] + car["height"] - zoomed["y"]) / zoomed["height"] - 0.80) < 0.004

    # Pan with the arrow keys, then with Space + drag.
    page.keyboard.press("ArrowLeft")
    panned = box(page, ".viewport-canvas")
    assert panned["x"] > zoomed["x"] + 30 or panned["x"] == zoomed["x"] == frame["x"]  # at the left edge already
    page.mouse.move(frame["x"] + frame["width"] / 2, frame["y"] + frame["height"] / 2)
    page.keyboard.down(" ")
    page.mouse.down()
    page.mouse.move(frame["x"] + frame["width"] / 2 - 120, frame["y"] + frame["height"] / 2 - 40, steps=4)
    page.mouse.up()
    page.keyboard.up(" ")
    moved = box(page, ".viewport-canvas")
    assert moved["x"] < panned["x"] - 60

    # Draw the person (pixels 222-248 x 50-140 of the image) while zoomed in: the part in view.
    (vx0, vy0), (vx1, vy1) = visible_range(page)
    person = ((max(222 / 320, vx0 + 0.01), max(50 / 200, vy0 + 0.01)),
              (min(248 / 320, vx1 - 0.01), min(140 / 200, vy1 - 0.01)))
    assert person[1][0] - person[0][0] > 0.05 and person[1][1] - person[0][1] > 0.2, "the person is out of view"
    drag(page, moved, *person)
    # Brighter, more contrast: the dark frame becomes readable; the shapes do not change.
    for key in "bbbbbbbbbbcc":
        page.keyboard.press(key)
    assert page.eval_on_selector(".boxes-image", "i => i.style.filter") == "brightness(200%) contrast(120%)"
    ui.screenshot("workspace-image-zoom")
    page.keyboard.press("0")  # fit again
    refit = box(page, ".viewport-canvas")
    assert abs(refit["width"] - canvas["width"]) < 1
    page.keyboard.press("Enter")
    page.wait_for_selector("text=No items need your answer right now")
    (answer,) = server.answers_of(project, annotator)
    car_box, person_box = answer["value"]["objects"]
    assert car_box["label"] == person_box["label"] == "person"
    got_box = [car_box["x"], car_box["y"], car_box["w"], car_box["h"]]
    for got, want in zip(got_box, [0.125, 0.55, 0.345, 0.25], strict=True):
        assert abs(got - want) < 0.003, (car_box, want)
    (x0, y0), (x1, y1) = person
    # Drawn at about 3.5 display pixels per image pixel: far finer than at the fitted size.
    for got, want in zip([person_box["x"], person_box["y"], person_box["w"], person_box["h"]],
                         [x0, y0, x1 - x0, y1 - y0], strict=True):
        assert abs(got - want) < 0.001, (person_box, person)


def outline_fractions(page):
    """The drawn outline's vertices as fractions of the image (the SVG is drawn in display pixels)."""
    points = page.get_attribute(".shapes-layer .polygon polygon", "points")
    _, _, w, h = map(float, page.get_attribute(".shapes-layer", "viewBox").split())
    return [v for x, y in (p.split(",") for p in points.split()) for v in (float(x) / w, float(y) / h)]


def test_polygons_drawn_zoomed_in_keep_their_place(page, server, ui, tmp_path):
    annotator = server.make_user()
    project = server.make_project(POLYGONS, annotators=[annotator])
    import_files(server, project, tmp_path / "cars", {"car.png": dark_png()})
    start(ui, project, annotator)
    wait_for_fitted_image(page)
    fitted = box(page, ".viewport-canvas")
    for _ in range(4):
        page.keyboard.press("=")  # zoom in (the + key without Shift)
    canvas = box(page, ".viewport-canvas")
    mx, my = visible_middle(page)
    points = [(mx - 0.05, my - 0.05), (mx + 0.05, my - 0.05), (mx, my + 0.06)]
    for p in points:
        page.mouse.click(*at(canvas, *p))
    page.keyboard.press("Enter")
    assert outline_fractions(page) == pytest.approx([v for p in points for v in p], abs=0.0005)
    page.keyboard.press("0")
    # Redrawn at the fitted size: the outline sits on the same fractions of the image.
    assert abs(box(page, ".viewport-canvas")["width"] - fitted["width"]) < 1
    assert outline_fractions(page) == pytest.approx([v for p in points for v in p], abs=0.0005)
    page.keyboard.press("Enter")
    page.wait_for_selector("text=No items need your answer right now")
    (answer,) = server.answers_of(project, annotator)
    (polygon,) = answer["value"]["regions"]
    for (gx, gy), (wx, wy) in zip(polygon["points"], points, strict=True):
        assert abs(gx - wx) < 0.001 and abs(gy - wy) < 0.001, (polygon, points)


def wav(seconds=2.0, rate=8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        frames = (int(9000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(int(seconds * rate)))
        out.writeframes(b"".join(struct.pack("<h", f) for f in frames))
    return buf.getvalue()


AUDIO = {"questions": [
    {"name": "speaker", "kind": "choice", "labels": ["adult", "child"], "title": "Who speaks?"},
    {"name": "clarity", "kind": "rating", "min": 1, "max": 5, "title": "How clear is it?"},
    {"name": "transcript", "kind": "text", "title": "Transcribe it"},
]}


def test_audio_plays_seeks_and_changes_speed_beside_the_questions(page, server, ui, tmp_path):
    annotator = server.make_user()
    project = server.make_project(AUDIO, annotators=[annotator], name="Call centre audio")
    import_files(server, project, tmp_path / "calls", {"call-001.wav": wav()})
    start(ui, project, annotator)
    page.wait_for_function("() => { const a = document.querySelector('[data-testid=audio-player]');"
                           " return a && a.readyState >= 1; }")
    player = "[data-testid=audio-player]"
    assert abs(page.eval_on_selector(player, "a => a.duration") - 2.0) < 0.01
    page.keyboard.press("l")  # +5 s, held at the end
    page.wait_for_function("() => document.querySelector('[data-testid=audio-player]').currentTime >= 1.99")
    page.keyboard.press("j")  # -5 s, held at the start
    page.wait_for_function("() => document.querySelector('[data-testid=audio-player]').currentTime === 0")
    page.keyboard.press(">")
    page.keyboard.press(">")
    page.keyboard.press("<")
    assert page.eval_on_selector(player, "a => a.playbackRate") == 1.25
    assert page.input_value("[data-testid=player-speed]") == "1.25"
    page.keyboard.press("k")  # play
    page.wait_for_function("() => document.querySelector('[data-testid=audio-player]').currentTime > 0.3")
    page.keyboard.press("k")  # pause
    page.wait_for_function("() => document.querySelector('[data-testid=audio-player]').paused")
    assert re.fullmatch(r"0:0\d\.\d / 0:02\.0", page.inner_text("[data-testid=player-time]"))
    page.keyboard.press("2")  # speaker: child, on to clarity
    page.keyboard.press("4")  # clarity 4, on to the transcript (focused)
    page.keyboard.type("hello there ")
    page.keyboard.press("Escape")
    page.keyboard.press("t")  # the current time goes into the transcript, which keeps the focus
    page.keyboard.type("bye")
    ui.screenshot("workspace-audio")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("text=No items need your answer right now")
    (answer,) = server.answers_of(project, annotator)
    value = answer["value"]
    assert value["speaker"] == "child" and value["clarity"] == 4
    assert re.fullmatch(r"hello there \[0:0\d\.\d\] bye", value["transcript"]), value


RECORD_WEBM = """async () => {
  // 1.2 s of a moving square at 10 frames per second, recorded by Chromium itself.
  const canvas = document.createElement('canvas');
  canvas.width = 160; canvas.height = 120;
  const g = canvas.getContext('2d');
  const stream = canvas.captureStream(10);
  const recorder = new MediaRecorder(stream, { mimeType: 'video/webm;codecs=vp8' });
  const chunks = [];
  recorder.ondataavailable = (e) => chunks.push(e.data);
  const done = new Promise((resolve) => { recorder.onstop = resolve; });
  let frame = 0;
  const draw = () => {
    g.fillStyle = '#1e3a8a'; g.fillRect(0, 0, 160, 120);
    g.fillStyle = '#f59e0b'; g.fillRect(10 + frame * 10, 40, 30, 30);
    frame += 1;
  };
  draw();
  recorder.start();
  const timer = setInterval(draw, 100);
  await new Promise((r) => setTimeout(r, 1200));
  clearInterval(timer);
  recorder.stop();
  await done;
  const bytes = new Uint8Array(await new Blob(chunks, { type: 'video/webm' }).arrayBuffer());
  let text = '';
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text);
}"""

VIDEO = {"questions": [
    {"name": "action", "kind": "choice", "labels": ["walks", "runs"], "title": "What does the square do?"},
    {"name": "notes", "kind": "text", "required": False, "title": "Notes (T inserts the current time)"},
]}


def test_video_steps_frames_and_takes_timestamped_notes(page, server, ui, tmp_path):
    annotator = server.make_user()
    project = server.make_project(VIDEO, annotators=[annotator], name="Clips")
    page.goto("/login")
    webm = base64.b64decode(page.evaluate(RECORD_WEBM))
    assert webm[:4] == b"\x1aE\xdf\xa3" and len(webm) < 200_000
    import_files(server, project, tmp_path / "clips", {"clip.webm": webm},
                 sidecar=[{"file": "clip.webm", "data": {"fps": 10}}])
    start(ui, project, annotator)
    video = "[data-testid=video-player]"
    page.wait_for_function("() => { const v = document.querySelector('[data-testid=video-player]');"
                           " return v && v.readyState >= 2; }")
    for _ in range(3):
        page.keyboard.press(".")  # one frame (1/10 s) forward, paused
    page.wait_for_function("() => Math.abs(document.querySelector('[data-testid=video-player]')"
                           ".currentTime - 0.3) < 0.011")
    page.keyboard.press(",")
    page.wait_for_function("() => Math.abs(document.querySelector('[data-testid=video-player]')"
                           ".currentTime - 0.2) < 0.011")
    assert page.eval_on_selector(video, "v => v.paused")
    assert page.locator(".item-data [data-field=fps]").count() == 0  # read by the player, not shown
    page.keyboard.press("1")  # walks; on to the notes
    page.keyboard.press("Escape")
    page.keyboard.press("t")
    page.keyboard.type("square enters")
    assert page.input_value(".text-answer") == "[0:00.2] square enters"
    page.click("[data-testid=insert-time]")  # the button does the same
    assert page.input_value(".text-answer") == "[0:00.2] square enters[0:00.2] "
    ui.screenshot("workspace-video")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("text=No items need your answer right now")
    (answer,) = server.answers_of(project, annotator)
    assert answer["value"] == {"action": "walks", "notes": "[0:00.2] square enters[0:00.2] "}


def pdf(pages=3) -> bytes:
    sheets = []
    for n in range(1, pages + 1):
        sheet = Image.new("RGB", (612, 792), "white")
        draw = ImageDraw.Draw(sheet)
        draw.rectangle((50, 50, 562, 130), fill=(30, 60, 120))
        draw.text((70, 70), f"INVOICE - page {n} of {pages}", fill="white", font_size=36)
        for line in range(12):
            draw.rectangle((60, 180 + line * 40, 60 + (line * 37) % 400 + 100, 196 + line * 40), fill=(150, 150, 150))
        sheets.append(sheet)
    buf = io.BytesIO()
    sheets[0].save(buf, format="PDF", save_all=True, append_images=sheets[1:])
    return buf.getvalue()


PDF_SCHEMA = {"questions": [{"name": "doc_type", "kind": "choice", "labels": ["invoice", "receipt", "letter"],
                             "title": "What is this document?"}]}


def test_pdf_pages_are_shown_and_paged_with_the_keyboard(page, server, ui, tmp_path):
    annotator = server.make_user()
    project = server.make_project(PDF_SCHEMA, annotators=[annotator], name="Scanned mail")
    import_files(server, project, tmp_path / "mail", {"invoice.pdf": pdf()})
    # An item pointing at a PDF the store does not have: the workspace says so.
    missing = f"/api/v1/projects/{project['id']}/media/{'0' * 64}.pdf"
    server.add_items(project, [{"external_id": "lost.pdf", "data": {"pdf": missing, "pages": 2}, "priority": -1}])
    start(ui, project, annotator)
    page.wait_for_function("() => { const i = document.querySelector('[data-testid=pdf-page]');"
                           " return i && i.complete && i.naturalWidth; }")
    assert page.inner_text("[data-testid=pdf-where]") == "Page 1 of 3"
    assert page.eval_on_selector("[data-testid=pdf-page]", "i => i.naturalWidth") == media_service.PDF_PAGE_WIDTH
    assert page.locator(".item-data [data-field=pages]").count() == 0
    page.keyboard.press("PageDown")
    page.keyboard.press("PageDown")
    page.keyboard.press("PageDown")  # no page 4: stays on 3
    assert page.inner_text("[data-testid=pdf-where]") == "Page 3 of 3"
    page.wait_for_function("() => { const i = document.querySelector('[data-testid=pdf-page]');"
                           " return i.src.endsWith('page=3') && i.complete && i.naturalWidth; }")
    page.keyboard.press("PageUp")
    assert page.inner_text("[data-testid=pdf-where]") == "Page 2 of 3"
    page.wait_for_function("() => { const i = document.querySelector('[data-testid=pdf-page]');"
                           " return i.src.endsWith('page=2') && i.complete && i.naturalWidth; }")
    ui.screenshot("workspace-pdf")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.allowed_problems = ("404",)
    page.wait_for_selector("[data-testid=media-failed]:not([hidden])")
    assert page.is_disabled("#submit-button")
    (answer,) = server.answers_of(project, annotator)
    assert answer["value"] == {"doc_type": "invoice"}


CHAT_SCHEMA = {"questions": [
    {"name": "final", "kind": "rating", "min": 1, "max": 5, "turn": -1, "title": "Rate this reply"},
    {"name": "first", "kind": "choice", "labels": ["helpful", "unhelpful"], "turn": 2,
     "title": "Was this reply helpful?"},
    {"name": "next_reply", "kind": "ranking", "source": "responses",
     "title": "Rank the candidate next replies, best first"},
]}
INJECTION = "<img src=x onerror=alert(1)> and <script>alert(2)</script>"
CHAT_ITEM = {"external_id": "conv-1", "data": {
    "messages": [
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "How do I undo my last git commit?"},
        {"role": "assistant", "content": "Use `git reset --soft HEAD~1` to keep the changes staged."},
        {"role": "user", "content": f"And if I already pushed it? {INJECTION}"},
        {"role": "assistant", "content": "Then **revert** it:\n\n```\ngit revert HEAD\n```\n"
                                          "Rewriting pushed history breaks your teammates' clones."},
    ],
    "responses": [
        {"id": "a", "content": "Force-push with `git push -f`."},
        {"id": "b", "content": "Run `git revert HEAD` and push the new commit."},
        {"id": "c", "content": "Delete the repository and clone it again."},
    ],
}}


def test_chat_transcript_turn_ratings_and_response_ranking(page, server, ui):
    annotator = server.make_user()
    project = server.make_project(CHAT_SCHEMA, annotators=[annotator], name="Assistant replies")
    server.add_items(project, [CHAT_ITEM])
    page.on("dialog", lambda d: pytest.fail(f"a dialog opened: {d.message}"))
    start(ui, project, annotator)
    page.wait_for_selector("[data-testid=chat]")
    assert page.locator(".chat .turn").count() == 5
    assert [page.get_attribute(f".turn[data-turn='{i}']", "class") for i in (0, 1, 2)] == \
        ["turn role-system", "turn role-user", "turn role-assistant"]
    # Markup in a message is text: shown as typed, never run or rendered.
    assert INJECTION in page.inner_text(".turn[data-turn='3']")
    assert page.locator(".chat img, .chat script").count() == 0
    assert page.locator(".turn[data-turn='4'] pre").count() == 1  # Markdown is rendered
    # Each per-turn question sits under its turn; the ranking follows the conversation.
    assert page.locator(".turn[data-turn='4'] .question[data-question=final]").count() == 1
    assert page.locator(".turn[data-turn='2'] .question[data-question=first]").count() == 1
    assert page.locator(".chat .question[data-question=next_reply]").count() == 0
    page.keyboard.press("4")  # final reply: 4, on to the first reply
    page.keyboard.press("1")  # helpful, on to the ranking
    page.keyboard.press("2")  # select candidate b ...
    page.keyboard.press("ArrowUp")  # ... and move it first
    page.keyboard.press("c")  # confirm the order
    ui.screenshot("workspace-chat")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=No items need your answer right now")
    (answer,) = server.answers_of(project, annotator)
    assert answer["value"] == {"final": 4, "first": "helpful", "next_reply": ["b", "a", "c"]}
