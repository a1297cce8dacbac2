"""The item types of the annotate workspace, server side: PDFs (page count at import, corrupt and
page-less PDFs refused, pages rendered to PNG, scoped and cached) and chat transcripts (checked
at import turn by turn, with the turns the questions are about). On both databases."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from goldlabel.services import media as media_service

CLASSIFY = {"questions": [{"name": "kind", "kind": "choice", "labels": ["invoice", "letter"]}]}
CHAT = {"questions": [
    {"name": "last_reply", "kind": "rating", "min": 1, "max": 5, "turn": -1},
    {"name": "first_reply", "kind": "choice", "labels": ["good", "bad"], "turn": 1},
]}


def pdf(pages=1) -> bytes:
    """A real PDF (Pillow's PDF writer): page i is a 200x280 pt sheet of grey 60*i."""
    sheets = [Image.new("RGB", (200, 280), (60 * i, 60 * i, 60 * i)) for i in range(1, pages + 1)]
    buf = io.BytesIO()
    sheets[0].save(buf, format="PDF", save_all=True, append_images=sheets[1:])
    return buf.getvalue()


def empty_pdf() -> bytes:
    """A well-formed PDF whose page tree is empty."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def make(factory, schema):
    annotator = factory.make_user()
    return factory.make_project(schema=schema, annotators=[annotator]), annotator


def items_of(factory, project) -> dict[str, dict]:
    res = factory.api_as(project["manager"]).get(f"/api/v1/projects/{project['id']}/items", params={"limit": 100})
    assert res.status_code == 200, res.text
    return {i["external_id"]: i for i in res.json()["items"]}


def test_corrupt_and_pageless_pdfs_are_refused_at_import(factory, tmp_path):
    project, _ = make(factory, CLASSIFY)
    tmp_path = tmp_path / "incoming"
    tmp_path.mkdir()
    (tmp_path / "good.pdf").write_bytes(pdf(pages=3))
    (tmp_path / "torn.pdf").write_bytes(pdf(pages=2)[:300])  # the start of a PDF, cut off
    (tmp_path / "empty.pdf").write_bytes(empty_pdf())
    with pytest.raises(Exception) as caught:
        media_service.import_media(factory.ctx, None, project["id"], tmp_path)
    codes = {e["loc"][1]: e["code"] for e in caught.value.extra["report"]["errors"]}
    assert codes == {"torn.pdf": "bad_pdf", "empty.pdf": "pdf_no_pages"}
    assert items_of(factory, project) == {}  # all or nothing
    report = media_service.import_media(factory.ctx, None, project["id"], tmp_path, partial=True)
    assert (report.created, report.error_count) == (1, 2)
    assert items_of(factory, project)["good.pdf"]["data"]["pages"] == 3


def test_pdf_pages_are_rendered_scoped_and_cached(factory, tmp_path):
    project, annotator = make(factory, CLASSIFY)
    tmp_path = tmp_path / "incoming"
    tmp_path.mkdir()
    (tmp_path / "doc.pdf").write_bytes(pdf(pages=2))
    (tmp_path / "pic.png").write_bytes(_png())
    media_service.import_media(factory.ctx, None, project["id"], tmp_path)
    items = items_of(factory, project)
    url, image_url = items["doc.pdf"]["data"]["pdf"], items["pic.png"]["data"]["image"]
    api = factory.api_as(annotator)
    shades = []
    for page in (1, 2):
        res = api.get(url, params={"page": page})
        assert res.status_code == 200, res.text
        assert res.headers["content-type"] == "image/png" and res.headers["x-content-type-options"] == "nosniff"
        with Image.open(io.BytesIO(res.content)) as image:
            assert image.size == (media_service.PDF_PAGE_WIDTH, round(media_service.PDF_PAGE_WIDTH * 280 / 200))
            shades.append(image.convert("L").getpixel((image.width // 2, image.height // 2)))
    assert shades == [pytest.approx(60, abs=3), pytest.approx(120, abs=3)]  # page 2 is page 2 (JPEG inside the PDF)
    cached = [p for p in factory.ctx.settings.media_root().rglob("*.page1.png")]
    assert len(cached) == 1
    assert api.get(url, params={"page": 1}).content == cached[0].read_bytes()
    missing = api.get(url, params={"page": 3})
    assert missing.status_code == 404 and missing.json()["code"] == "no_such_page"
    assert api.get(url, params={"page": 0}).status_code == 422
    assert api.get(image_url, params={"page": 1}).json()["code"] == "not_a_pdf"
    assert api.get(url, params={"page": 1, "thumb": 128}).json()["errors"][0]["code"] == "bad_query"
    assert factory.api_as(factory.make_user()).get(url, params={"page": 1}).status_code == 404


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 0, 0)).save(buf, format="PNG")
    return buf.getvalue()


def chat_row(external_id, messages, **data):
    return {"external_id": external_id, "data": {"messages": messages, **data}}


GOOD = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "**4**", "name": "model-a"}]


def test_chat_transcripts_are_checked_turn_by_turn_at_import(factory):
    project, _ = make(factory, CLASSIFY)
    api = factory.api_as(project["manager"])
    url = f"/api/v1/projects/{project['id']}/items"
    rows = [
        chat_row("ok", GOOD),
        chat_row("not-a-list", "Hi"),
        chat_row("empty", []),
        chat_row("no-content", [{"role": "user"}]),
        chat_row("extra-key", [{"role": "user", "content": "x", "html": "<b>"}]),
        chat_row("role", [{"role": "wizard", "content": "x"}]),
        chat_row("content", [{"role": "user", "content": ["parts"]}]),
        chat_row("name", [{"role": "user", "content": "x", "name": ""}]),
    ]
    res = api.post(url, json=rows)
    assert res.status_code == 422
    errors = res.json()["report"]["errors"]
    got = {(e["line"], e["code"], tuple(e["loc"])) for e in errors}
    assert got == {
        (2, "bad_messages", ("data", "messages")),
        (3, "bad_messages", ("data", "messages")),
        (4, "bad_turn", ("data", "messages", 0)),
        (5, "bad_turn", ("data", "messages", 0)),
        (6, "bad_turn_role", ("data", "messages", 0, "role")),
        (7, "bad_turn_content", ("data", "messages", 0, "content")),
        (8, "bad_turn_name", ("data", "messages", 0, "name")),
    }
    assert items_of(factory, project) == {}
    assert api.post(url, json=rows[:1]).status_code in (200, 201)
    assert items_of(factory, project)["ok"]["data"]["messages"] == GOOD


def test_questions_about_turns_need_those_turns(factory):
    project, annotator = make(factory, CHAT)
    api = factory.api_as(project["manager"])
    url = f"/api/v1/projects/{project['id']}/items"
    short = [{"role": "user", "content": "Hi"}]
    res = api.post(url, json=[chat_row("long", GOOD), chat_row("short", short),
                              {"external_id": "plain", "data": {"text": "no chat"}}])
    assert res.status_code == 422
    errors = {(e["line"], e["code"]) for e in res.json()["report"]["errors"]}
    assert errors == {(2, "missing_turn"), (3, "missing_turn")}
    assert api.post(url, json=[chat_row("long", GOOD)]).status_code in (200, 201)
    # The schema keeps the turns it addresses; an answer rates those turns like any question.
    schema = api.get(f"/api/v1/projects/{project['id']}").json()["label_schema"]
    assert [q.get("turn") for q in schema["questions"]] == [-1, 1]
    worker = factory.api_as(annotator)
    lease = worker.post(f"/api/v1/projects/{project['id']}/next").json()
    res = worker.post(f"/api/v1/projects/{project['id']}/answers",
                      json={"lease_token": lease["token"], "value": {"last_reply": 5, "first_reply": "good"}})
    assert res.status_code in (200, 201), res.text
