"""The console's views of answer values (no database, no browser)."""

from __future__ import annotations

from goldlabel.web.annotation_views import AnnotationViews, safe_image_url

SCHEMA = {"questions": [
    {"name": "ents", "kind": "spans", "labels": ["PER", "ORG"]},
    {"name": "objs", "kind": "boxes", "labels": ["car"], "coordinates": "pixel"},
    {"name": "order", "kind": "ranking", "source": "responses", "allow_ties": True},
    {"name": "stars", "kind": "rating", "min": 0, "max": 1, "step": 0.5},
    {"name": "tags", "kind": "multi_choice", "labels": ["a", "b"]},
]}
VIEWS = AnnotationViews(SCHEMA)


def test_spans_cut_the_text_at_every_boundary_by_code_point():
    text = "😀 Ada at ACME"
    view = VIEWS.view("ents", [{"start": 2, "end": 5, "label": "PER"}, {"start": 2, "end": 13, "label": "ORG"}],
                      {"text": text})
    assert [(s["text"], s["labels"]) for s in view["segments"]] == [
        ("😀 ", []), ("Ada", ["PER", "ORG"]), (" at ACME", ["ORG"])]
    assert "".join(s["text"] for s in view["segments"]) == text
    assert [c["text"] for c in view["chips"]] == ["Ada", "Ada at ACME"]
    assert view["segments"][1]["color"] == "c0"


def test_spans_without_their_text_show_offsets():
    view = VIEWS.view("ents", [{"start": 1, "end": 4, "label": "ORG"}], {})
    assert view["segments"] is None and view["chips"][0]["text"] == "1–4"


def test_pixel_boxes_become_percentages_of_the_image():
    data = {"image": "https://example.com/a.png", "width": 200, "height": 100}
    view = VIEWS.view("objs", [{"x": 50, "y": 25, "w": 100, "h": 50, "label": "car"}], data)
    assert view["image"] == data["image"]
    assert {k: view["boxes"][0][k] for k in "xywh"} == {"x": "25.000%", "y": "25.000%", "w": "50.000%", "h": "50.000%"}


def test_unsafe_images_are_not_shown():
    assert safe_image_url("javascript:alert(1)") is None
    assert safe_image_url("http://example.com/a.png") is None
    assert safe_image_url("//evil.example/a.png") is None
    assert safe_image_url("data:text/html,<script>") is None
    assert safe_image_url("data:image/png;base64,AAAA") == "data:image/png;base64,AAAA"
    # The console shows what import accepts (goldlabel.domain.media_sources), no other path.
    media = "/api/v1/projects/3/media/" + "f" * 64 + ".jpg"
    assert safe_image_url(media) == media
    assert safe_image_url("/static/a.png") is None
    view = VIEWS.view("objs", [], {"image": "javascript:alert(1)", "width": 1, "height": 1})
    assert view["image"] is None


def test_ranking_places_ties_and_candidate_texts():
    data = {"responses": [{"id": "x", "text": "first answer"}, {"id": "y", "text": "second"}, {"id": "z", "text": "z"}]}
    view = VIEWS.view("order", [["y"], ["x", "z"]], data)
    assert [(r["place"], r["id"], r["text"]) for r in view["rows"]] == [
        ("1", "y", "second"), ("2=", "x", "first answer"), ("2=", "z", "z")]


def test_rating_multi_choice_and_values_the_schema_does_not_fit():
    assert VIEWS.view("stars", 0.5, {})["value"] == "0.5"
    assert [lab["text"] for lab in VIEWS.view("tags", ["b", "a"], {})["labels"]] == ["b", "a"]
    assert VIEWS.view("stars", "high", {}) == {"kind": "text", "text": "high"}
    assert VIEWS.view("gone", {"k": 1}, {}) == {"kind": "json", "text": '{"k": 1}'}
    assert VIEWS.view("ents", [{"start": "?"}], {"text": "t"})["kind"] == "json"
    assert VIEWS.view("stars", None, {}) == {"kind": "none"}


def test_previews_show_a_thumbnail_and_text_never_base64():
    image = "data:image/png;base64," + "A" * 5000
    preview = VIEWS.preview({"image": image, "caption": "a red car"})
    assert preview == {"thumb": image, "text": "a red car"}
    assert VIEWS.preview({"image": image})["text"] == ""
    fields = VIEWS.data_fields({"photo": image, "text": "hi", "meta": {"a": 1}})
    assert [(f["name"], f["kind"]) for f in fields] == [("photo", "image"), ("text", "text"), ("meta", "json")]


def test_audio_video_pdf_and_chat_fields_get_a_viewer_slot():
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    fields = VIEWS.data_fields({"audio": "/api/v1/projects/1/media/" + "a" * 64 + ".wav", "video": 7,
                                "pdf": "/api/v1/projects/1/media/" + "b" * 64 + ".pdf", "pages": 2,
                                "messages": messages, "notes": "messages elsewhere"})
    assert [(f["name"], f["kind"]) for f in fields] == [
        ("audio", "media"), ("video", "json"), ("pdf", "media"), ("pages", "json"), ("messages", "media"),
        ("notes", "text")]
    assert fields[4]["value"] == "2 turns"  # the stand-in until console/item_media.js mounts the transcript
