"""Media import (folder, zip, upload), the media store behind it, and serving: scoped, typed by
the bytes, ranges, thumbnails. On both databases."""

from __future__ import annotations

import io
import os
import zipfile

import pytest
from PIL import Image

from goldlabel.services import media as media_service

IMAGE_SCHEMA = {"questions": [{"name": "objects", "kind": "boxes", "labels": ["cat", "dog"], "source": "image"}]}
CHOICE_ON_ANYTHING = {"questions": [{"name": "ok", "kind": "choice", "labels": ["yes", "no"]}]}


def png(width=40, height=20, color=(10, 120, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format="PNG")
    return buf.getvalue()


def pdf(pages=1) -> bytes:
    """A real PDF of ``pages`` pages (Pillow's PDF writer), each a different grey."""
    sheets = [Image.new("RGB", (200, 280), (60 * i, 60 * i, 60 * i)) for i in range(1, pages + 1)]
    buf = io.BytesIO()
    sheets[0].save(buf, format="PDF", save_all=True, append_images=sheets[1:])
    return buf.getvalue()


def rotated_jpeg() -> bytes:
    """A 60x20 JPEG whose EXIF says: rotate 90 degrees to show it upright (so 20x60)."""
    image = Image.new("RGB", (60, 20), (200, 10, 10))
    exif = image.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW
    buf = io.BytesIO()
    image.save(buf, format="JPEG", exif=exif)
    return buf.getvalue()


@pytest.fixture
def media_dir(tmp_path):
    root = tmp_path / "incoming"
    (root / "cats").mkdir(parents=True)
    (root / "cats" / "01.png").write_bytes(png())
    (root / "cats" / "02.jpg").write_bytes(rotated_jpeg())
    (root / "notes.txt").write_text("a caption, ünïcødé", encoding="utf-8")
    (root / "scan.pdf").write_bytes(pdf(pages=2))
    (root / ".hidden.png").write_bytes(png())  # dotfiles are skipped
    return root


def project_for(factory, schema=CHOICE_ON_ANYTHING, **kw):
    annotator = factory.make_user()
    project = factory.make_project(schema=schema, annotators=[annotator], **kw)
    return project, annotator


def items_by_external_id(factory, project) -> dict[str, dict]:
    res = factory.api_as(project["manager"]).get(f"/api/v1/projects/{project['id']}/items", params={"limit": 100})
    assert res.status_code == 200, res.text
    return {i["external_id"]: i for i in res.json()["items"]}


def test_folder_import_makes_one_item_per_file_and_is_idempotent(factory, media_dir):
    project, _ = project_for(factory)
    sidecar = media_dir.parent / "sidecar.jsonl"
    sidecar.write_text('{"file": "cats/01.png", "priority": 7, "meta": {"camera": "A"}, "data": {"site": "north"}}\n')
    report = media_service.import_media(factory.ctx, None, project["id"], media_dir, sidecar=sidecar)
    assert (report.created, report.error_count) == (4, 0), report.to_dict()
    items = items_by_external_id(factory, project)
    assert set(items) == {"cats/01.png", "cats/02.jpg", "notes.txt", "scan.pdf"}
    cat = items["cats/01.png"]
    assert cat["data"]["image"].startswith(f"/api/v1/projects/{project['id']}/media/")
    assert cat["data"]["image"].endswith(".png") and cat["data"]["site"] == "north"
    assert cat["priority"] == 7 and cat["meta"] == {"camera": "A"}
    assert items["notes.txt"]["data"]["text"] == "a caption, ünïcødé"
    assert items["scan.pdf"]["data"]["pdf"].endswith(".pdf") and items["scan.pdf"]["data"]["pages"] == 2
    stored = sorted(p for p in (factory.ctx.settings.media_root()).rglob("*") if p.is_file())
    again = media_service.import_media(factory.ctx, None, project["id"], media_dir)
    assert (again.created, again.skipped) == (0, 4)
    assert sorted(p for p in factory.ctx.settings.media_root().rglob("*") if p.is_file()) == stored


def test_refusals_are_reported_per_file_and_nothing_is_half_imported(factory, media_dir, tmp_path):
    project, _ = project_for(factory)
    (media_dir / "fake.png").write_bytes(b"<html><script>alert(1)</script></html>")
    outside = tmp_path / "secret.png"
    outside.write_bytes(png())
    os.symlink(outside, media_dir / "link.png")
    with pytest.raises(Exception) as caught:
        media_service.import_media(factory.ctx, None, project["id"], media_dir)
    report = caught.value.extra["report"]
    codes = {e["loc"][1]: e["code"] for e in report["errors"]}
    assert codes == {"fake.png": "unsupported_media", "link.png": "symlink_outside_root"}
    assert items_by_external_id(factory, project) == {}
    partial = media_service.import_media(factory.ctx, None, project["id"], media_dir, partial=True)
    assert (partial.created, partial.error_count) == (4, 2)


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_zip_entries_that_escape_or_explode_are_refused(factory, tmp_path):
    project, _ = project_for(factory)
    archive = tmp_path / "batch.zip"
    archive.write_bytes(zip_bytes({
        "ok/a.png": png(), "../evil.png": png(), "/abs.png": png(), "bad\x07name.png": png(),
        "bomb.txt": b"0" * (3 * 1024 * 1024),  # 3 MB of zeros, a few KB compressed
    }))
    ctx = factory.ctx
    limited = ctx.settings.model_copy(update={"max_media_bytes": 1024 * 1024})
    ctx.settings = limited
    report = media_service.import_media(ctx, None, project["id"], archive, partial=True)
    codes = sorted((e["loc"][1], e["code"]) for e in report.to_dict()["errors"])
    assert codes == [("../evil.png", "path_escapes_root"), ("/abs.png", "path_escapes_root"),
                     ("bad\x07name.png", "bad_file_name"), ("bomb.txt", "file_too_large")]
    assert set(items_by_external_id(factory, project)) == {"ok/a.png"}


def test_serving_is_scoped_typed_ranged_and_thumbnailed(factory, media_dir):
    project, annotator = project_for(factory, schema=IMAGE_SCHEMA)
    media_service.import_media(factory.ctx, None, project["id"], media_dir / "cats")
    items = items_by_external_id(factory, project)
    png_url, jpg_url = items["01.png"]["data"]["image"], items["02.jpg"]["data"]["image"]
    api = factory.api_as(annotator)
    res = api.get(png_url)
    assert res.status_code == 200 and res.content == (media_dir / "cats" / "01.png").read_bytes()
    assert res.headers["content-type"] == "image/png"
    assert res.headers["x-content-type-options"] == "nosniff"
    assert res.headers["content-disposition"].startswith("inline")
    assert "sandbox" in res.headers["content-security-policy"]
    part = api.get(png_url, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == res.content[:10]
    assert part.headers["content-range"] == f"bytes 0-9/{len(res.content)}"
    tail = api.get(png_url, headers={"Range": "bytes=-4"})
    assert tail.status_code == 206 and tail.content == res.content[-4:]
    assert api.get(png_url, headers={"Range": f"bytes={len(res.content)}-"}).status_code == 416
    thumb = api.get(jpg_url, params={"thumb": 128})
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumb.content)) as image:
        assert image.size == (20, 60)  # EXIF orientation applied: portrait
    outsider = factory.api_as(factory.make_user())
    assert outsider.get(png_url).status_code == 404
    assert api.get(png_url.rsplit("/", 1)[0] + "/" + "0" * 64).status_code == 404
    assert api.get(png_url.rsplit("/", 1)[0] + "/..%2F..%2Fetc").status_code == 404
    assert factory.api_as(None).get(png_url).status_code == 401


def test_upload_over_the_api_files_and_zip(factory):
    project, annotator = project_for(factory)
    api = factory.api_as(project["manager"])
    files = [("file", ("one.png", png(), "image/png")), ("file", ("two.png", png(color=(0, 0, 0)), "image/png"))]
    res = api.post(f"/api/v1/projects/{project['id']}/media", files=files)
    assert res.status_code == 201, res.text
    assert res.json()["created"] == 2
    res = api.post(f"/api/v1/projects/{project['id']}/media",
                   files=[("file", ("batch.zip", zip_bytes({"z/a.png": png(width=3)}), "application/zip"))])
    assert res.status_code == 201 and res.json()["created"] == 1, res.text
    assert set(items_by_external_id(factory, project)) == {"one.png", "two.png", "z/a.png"}
    # Annotators cannot import.
    res = factory.api_as(annotator).post(f"/api/v1/projects/{project['id']}/media", files=files)
    assert res.status_code == 403
    # Scriptable bytes are refused whatever the name says.
    res = api.post(f"/api/v1/projects/{project['id']}/media",
                   files=[("file", ("x.png", b"<svg onload=alert(1)>", "image/png"))])
    assert res.status_code == 422 and res.json()["code"] == "import_failed"


def test_cli_imports_a_folder(factory, media_dir, tmp_path):
    from click.testing import CliRunner

    from goldlabel.cli import cli

    project, _ = project_for(factory)
    env = {"GOLDLABEL_DATABASE_URL": factory.ctx.settings.database_url,
           "GOLDLABEL_MEDIA_DIR": factory.ctx.settings.media_dir}
    result = CliRunner().invoke(cli, ["import", str(project["id"]), str(media_dir)], env=env)
    assert result.exit_code == 0, result.output
    assert "4 created" in result.output


@pytest.mark.parametrize("serve", ["proxy", "redirect"])
def test_s3_store_behind_the_server(factory, media_dir, s3_endpoint, tmp_path, serve):
    import httpx

    from goldlabel.services.context import Context

    project, annotator = project_for(factory, schema=IMAGE_SCHEMA)
    ctx = factory.ctx
    ctx.settings = ctx.settings.model_copy(update={
        "media_store": "s3", "media_s3_bucket": "goldlabel-media", "media_s3_prefix": f"srv/{tmp_path.name}",
        "media_s3_endpoint_url": s3_endpoint, "media_serve": serve,
    })
    assert isinstance(ctx, Context)
    ctx._media = None  # rebuilt from the new settings
    report = media_service.import_media(ctx, None, project["id"], media_dir / "cats")
    assert report.created == 2
    assert not any(ctx.settings.media_root().rglob("*.png")), "nothing may land in the local store"
    url = items_by_external_id(factory, project)["01.png"]["data"]["image"]
    res = factory.api_as(annotator).get(url)
    expected = (media_dir / "cats" / "01.png").read_bytes()
    if serve == "proxy":
        assert res.status_code == 200 and res.content == expected
        assert res.headers["content-type"] == "image/png"
    else:
        assert res.status_code == 307
        signed = httpx.get(res.headers["location"])
        assert signed.status_code == 200 and signed.content == expected
        assert signed.headers["content-type"] == "image/png"
    assert factory.api_as(factory.make_user()).get(url).status_code == 404
