"""Objects referenced in place (s3:// from a real S3-protocol server, moto in server mode on
loopback; file:// under a root): an import points the item at a same-origin media path, the
server fetches the object through the outbound guard when it is served. On both databases."""

from __future__ import annotations

import io

import boto3
import pytest
from PIL import Image

from goldlabel.domain.media_sources import check_image_source

SCHEMA = {"questions": [{"name": "objects", "kind": "boxes", "labels": ["cat", "dog"], "source": "image"}]}
BUCKET = "datasets-in-place"


def png(width: int = 48, height: int = 24) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (30, 60, 90)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(("url", "schemes", "code"), [
    ("s3://my-bucket/cats/1.png", {"s3"}, None),
    ("s3://my-bucket/cats/1.png", set(), "unsupported_scheme"),  # the browser's answer (dom.js)
    ("s3://my-bucket/cats/1.png", {"file"}, "fetch_scheme_not_allowed"),
    ("s3://My_Bucket/1.png", {"s3"}, "bad_fetch_url"),
    ("s3://my-bucket/", {"s3"}, "bad_fetch_url"),
    ("file:///data/images/1.png", {"file"}, None),
    ("file:///data/../etc/passwd", {"file"}, "bad_fetch_url"),
    ("file://host/share/1.png", {"file"}, "bad_fetch_url"),
    ("file:///data/images/1.png", {"s3"}, "fetch_scheme_not_allowed"),
    ("gs://bucket/1.png", {"s3", "file"}, "fetch_scheme_not_allowed"),
    ("https://example.com/1.png", set(), None),
])
def test_the_one_source_rule_knows_objects_in_place(url, schemes, code):
    assert check_image_source(url, (), schemes) == code


@pytest.fixture
def bucket(s3_endpoint):
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    try:
        client.create_bucket(Bucket=BUCKET)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    return client


def _fetching(ctx, **settings):
    ctx.settings = ctx.settings.model_copy(update=settings)


def test_s3_objects_in_place_are_fetched_through_the_guard_and_served_same_origin(factory, bucket, s3_endpoint,
                                                                                  tmp_path):
    image = png()
    bucket.put_object(Bucket=BUCKET, Key=f"{tmp_path.name}/cats/one.png", Body=image)
    ctx = factory.ctx
    annotator = factory.make_user()
    project = factory.make_project(schema=SCHEMA, annotators=[annotator])
    manager = factory.api_as(project["manager"])
    source = f"s3://{BUCKET}/{tmp_path.name}/cats/one.png"
    rows = [{"external_id": "one", "data": {"image": source}},
            {"external_id": "gone", "data": {"image": f"s3://{BUCKET}/{tmp_path.name}/missing.png"}}]

    # Not enabled: the import refuses the URL with the rule's code, nothing is imported.
    res = manager.post(f"/api/v1/projects/{project['id']}/items", json=rows)
    assert res.status_code == 422, res.text
    assert {e["code"] for e in res.json()["report"]["errors"]} == {"unsupported_scheme"}
    _fetching(ctx, media_fetch_schemes="file", media_fetch_root=str(tmp_path))
    res = manager.post(f"/api/v1/projects/{project['id']}/items", json=rows)
    assert {e["code"] for e in res.json()["report"]["errors"]} == {"fetch_scheme_not_allowed"}

    _fetching(ctx, media_fetch_schemes="s3", media_fetch_s3_endpoint_url=s3_endpoint)
    res = manager.post(f"/api/v1/projects/{project['id']}/items", json=rows)
    assert res.status_code == 201, res.text
    listed = {i["external_id"]: i for i in manager.get(f"/api/v1/projects/{project['id']}/items").json()["items"]}
    data = listed["one"]["data"]
    assert data["image_source"] == source
    url = data["image"]
    assert url.startswith(f"/api/v1/projects/{project['id']}/media/") and url.endswith(".png")
    assert check_image_source(url) is None  # what the workspace shows: a same-origin media path

    # The moto server is on loopback: the guard refuses it until its network is allowed.
    res = factory.api_as(annotator).get(url)
    assert (res.status_code, res.json()["code"]) == (502, "media_fetch_refused")
    _fetching(ctx, media_fetch_allowed_networks="127.0.0.0/8")
    res = factory.api_as(annotator).get(url)
    assert res.status_code == 200, res.text
    assert res.content == image and res.headers["content-type"] == "image/png"
    assert res.headers["x-content-type-options"] == "nosniff" and "no-cache" in res.headers["cache-control"]
    part = factory.api_as(annotator).get(url, headers={"Range": "bytes=0-7"})
    assert part.status_code == 206 and part.content == image[:8]
    thumb = factory.api_as(annotator).get(url, params={"thumb": 128})
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"

    # Changed where it lies: the next fetch serves the new bytes (nothing was copied).
    bigger = png(64, 64)
    bucket.put_object(Bucket=BUCKET, Key=f"{tmp_path.name}/cats/one.png", Body=bigger)
    assert factory.api_as(annotator).get(url).content == bigger
    assert factory.api_as(annotator).get(listed["gone"]["data"]["image"]).status_code == 404
    _fetching(ctx, media_fetch_max_bytes=100)
    res = factory.api_as(annotator).get(url)
    assert (res.status_code, res.json()["code"]) == (502, "media_too_large")
    # Scoped like every media object: an outsider gets 404 and no fetch.
    assert factory.api_as(factory.make_user()).get(url).status_code == 404


def test_file_objects_in_place_must_lie_under_the_root(factory, tmp_path):
    root = tmp_path / "shared-images"
    (root / "cats").mkdir(parents=True)
    image = png(20, 10)
    (root / "cats" / "a.png").write_bytes(image)
    (tmp_path / "secret.png").write_bytes(png(5, 5))
    (root / "cats" / "link.png").symlink_to(tmp_path / "secret.png")
    ctx = factory.ctx
    _fetching(ctx, media_fetch_schemes="file", media_fetch_root=str(root))
    project = factory.make_project(schema=SCHEMA)
    manager = factory.api_as(project["manager"])
    res = manager.post(f"/api/v1/projects/{project['id']}/items", json=[
        {"external_id": "out", "data": {"image": f"file://{tmp_path}/secret.png"}},
        {"external_id": "link", "data": {"image": f"file://{root}/cats/link.png"}},
        {"external_id": "none", "data": {"image": f"file://{root}/cats/none.png"}},
    ])
    assert res.status_code == 422, res.text
    assert [e["code"] for e in res.json()["report"]["errors"]] == [
        "path_escapes_root", "path_escapes_root", "unreadable_file"]
    res = manager.post(f"/api/v1/projects/{project['id']}/items",
                       json=[{"external_id": "a", "data": {"image": f"file://{root}/cats/a.png"}}])
    assert res.status_code == 201, res.text
    [item] = manager.get(f"/api/v1/projects/{project['id']}/items").json()["items"]
    res = manager.get(item["data"]["image"])
    assert res.status_code == 200 and res.content == image
    # The file replaced by a link out of the root after the import: refused when served.
    (root / "cats" / "a.png").unlink()
    (root / "cats" / "a.png").symlink_to(tmp_path / "secret.png")
    res = manager.get(item["data"]["image"])
    assert (res.status_code, res.json()["code"]) == (502, "media_fetch_refused")


def wav(n_bytes: int) -> bytes:
    """A WAV file of ``n_bytes`` (8-bit mono): audio by its bytes, whatever it is called."""
    import random
    import struct

    samples = random.Random(n_bytes).randbytes(n_bytes - 44)
    return (b"RIFF" + struct.pack("<I", n_bytes - 8) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 8000, 1, 8)
            + b"data" + struct.pack("<I", len(samples)) + samples)


def serve_raw(app, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], list[int], int]:
    """GET ``path`` from the ASGI app as a server would: the status, the headers (plus the
    body's sha256, the body itself is not kept), the size of every body message as it was sent,
    and the peak of Python memory while serving."""
    import asyncio
    import hashlib
    import tracemalloc

    sizes: list[int] = []
    digest = hashlib.sha256()
    start: dict = {}

    requested = []

    async def receive() -> dict:
        if not requested:
            requested.append(True)
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client stays connected (the app cancels this wait when done)
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body" and message.get("body"):
            sizes.append(len(message["body"]))
            digest.update(message["body"])

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in {"host": "goldlabel.test", **headers}.items()],
             "client": ("127.0.0.1", 50000), "server": ("goldlabel.test", 80)}
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        asyncio.run(app(scope, receive, send))
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    answer = {k.decode(): v.decode() for k, v in start["headers"]}
    answer["x-test-sha256"] = digest.hexdigest()
    return start["status"], answer, sizes, peak


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_file_objects_in_place_are_streamed_in_chunks_with_ranges(factory, tmp_path, monkeypatch):
    from goldlabel.services import media_in_place

    chunk = 16 * 1024
    monkeypatch.setattr(media_in_place, "CHUNK", chunk)
    root = tmp_path / "recordings"
    root.mkdir()
    audio = wav(3 * 1024 * 1024 + 77)  # 190-odd chunks: memory that grew with it would show
    (root / "clip.bin").write_bytes(audio)  # the name says nothing: the bytes say audio/wav
    (root / "page.png").write_bytes(b"<html><script>alert(1)</script></html>")
    _fetching(factory.ctx, media_fetch_schemes="file", media_fetch_root=str(root))
    project = factory.make_project(schema=SCHEMA)
    manager = factory.api_as(project["manager"])
    res = manager.post(f"/api/v1/projects/{project['id']}/items", json=[
        {"external_id": "clip", "data": {"audio": f"file://{root}/clip.bin"}},
        {"external_id": "page", "data": {"image": f"file://{root}/page.png"}}])
    assert res.status_code == 201, res.text
    listed = manager.get(f"/api/v1/projects/{project['id']}/items").json()["items"]
    items = {i["external_id"]: i["data"] for i in listed}
    url = items["clip"]["audio"]
    auth = {"authorization": f"Bearer {factory.token_for(project['manager'])}"}

    status, headers, sizes, peak = serve_raw(factory.app, url, auth)
    assert status == 200 and headers["content-type"] == "audio/wav"
    assert headers["x-test-sha256"] == _sha(audio) and int(headers["content-length"]) == len(audio)
    assert len(sizes) == -(-len(audio) // chunk) and max(sizes) == chunk  # sent as read, chunk by chunk
    assert peak < 1024 * 1024, f"serving a {len(audio)}-byte object held {peak} bytes"
    assert headers["x-content-type-options"] == "nosniff" and headers["content-disposition"].startswith("inline")
    assert headers["accept-ranges"] == "bytes" and "no-cache" in headers["cache-control"]

    # Ranges: inside one chunk, across chunks, to the end, the last N bytes; past the end is 416.
    for asked, (first, last) in {"bytes=5-20": (5, 20),
                                 f"bytes={chunk - 3}-{3 * chunk + 9}": (chunk - 3, 3 * chunk + 9),
                                 f"bytes={len(audio) - 1000}-": (len(audio) - 1000, len(audio) - 1),
                                 "bytes=-300": (len(audio) - 300, len(audio) - 1),
                                 f"bytes=100-{len(audio) + 50}": (100, len(audio) - 1)}.items():
        status, headers, sizes, _ = serve_raw(factory.app, url, {**auth, "range": asked})
        assert status == 206, asked
        assert headers["content-range"] == f"bytes {first}-{last}/{len(audio)}", asked
        assert headers["x-test-sha256"] == _sha(audio[first:last + 1]), asked
        assert int(headers["content-length"]) == last + 1 - first and max(sizes) <= chunk
        assert headers["content-type"] == "audio/wav"  # typed by the first bytes, not those of the range
    res = manager.get(url, headers={"Range": f"bytes={len(audio)}-"})
    assert res.status_code == 416 and res.headers["content-range"] == f"bytes */{len(audio)}"

    # Markup named .png: an attachment, never sniffed by the browser, sandboxed.
    res = manager.get(items["page"]["image"])
    assert res.status_code == 200 and res.headers["content-type"] == "application/octet-stream"
    assert res.headers["content-disposition"].startswith("attachment")
    assert res.headers["x-content-type-options"] == "nosniff" and "sandbox" in res.headers["content-security-policy"]

    # Over the limit: refused before a byte is sent.
    _fetching(factory.ctx, media_fetch_max_bytes=len(audio) - 1)
    res = manager.get(url)
    assert (res.status_code, res.json()["code"]) == (502, "media_too_large")


def test_a_file_that_grows_while_it_is_served_is_cut_at_its_size(factory, tmp_path):
    from goldlabel.services import media as media_service

    root = tmp_path / "growing"
    root.mkdir()
    audio = wav(50_000)
    (root / "a.wav").write_bytes(audio)
    _fetching(factory.ctx, media_fetch_schemes="file", media_fetch_root=str(root))
    project = factory.make_project(schema=SCHEMA)
    manager = factory.api_as(project["manager"])
    res = manager.post(f"/api/v1/projects/{project['id']}/items",
                       json=[{"external_id": "a", "data": {"audio": f"file://{root}/a.wav"}}])
    assert res.status_code == 201, res.text
    [item] = manager.get(f"/api/v1/projects/{project['id']}/items").json()["items"]
    name = item["data"]["audio"].rsplit("/", 1)[1]
    obj = media_service.open_media(factory.ctx, project["manager"], project["id"], name)
    try:
        with (root / "a.wav").open("ab") as f:
            f.write(b"\0" * 100_000)
        assert b"".join(media_service.read_media(factory.ctx, obj)) == audio
    finally:
        obj.close()


def test_s3_objects_in_place_are_streamed_with_ranges_asked_of_s3(factory, bucket, s3_endpoint, tmp_path,
                                                                   monkeypatch):
    from goldlabel.services import media_in_place

    chunk = 16 * 1024
    monkeypatch.setattr(media_in_place, "CHUNK", chunk)
    audio = wav(400_000 + 13)
    bucket.put_object(Bucket=BUCKET, Key=f"{tmp_path.name}/long.wav", Body=audio)
    _fetching(factory.ctx, media_fetch_schemes="s3", media_fetch_s3_endpoint_url=s3_endpoint,
              media_fetch_allowed_networks="127.0.0.0/8")
    project = factory.make_project(schema=SCHEMA)
    manager = factory.api_as(project["manager"])
    res = manager.post(f"/api/v1/projects/{project['id']}/items",
                       json=[{"external_id": "long", "data": {"audio": f"s3://{BUCKET}/{tmp_path.name}/long.wav"}}])
    assert res.status_code == 201, res.text
    [item] = manager.get(f"/api/v1/projects/{project['id']}/items").json()["items"]
    url = item["data"]["audio"]
    auth = {"authorization": f"Bearer {factory.token_for(project['manager'])}"}

    status, headers, sizes, _ = serve_raw(factory.app, url, auth)
    assert status == 200 and headers["content-type"] == "audio/wav"
    assert headers["x-test-sha256"] == _sha(audio) and int(headers["content-length"]) == len(audio)
    assert len(sizes) > len(audio) // (2 * chunk) and max(sizes) <= chunk  # streamed, not one body
    first, last = 150_001, 300_000
    status, headers, sizes, _ = serve_raw(factory.app, url, {**auth, "range": f"bytes={first}-{last}"})
    assert status == 206 and headers["content-range"] == f"bytes {first}-{last}/{len(audio)}"
    assert headers["x-test-sha256"] == _sha(audio[first:last + 1]) and headers["content-type"] == "audio/wav"
    status, headers, _, _ = serve_raw(factory.app, url, {**auth, "range": "bytes=-10"})
    assert status == 206 and headers["x-test-sha256"] == _sha(audio[-10:])

    # The range is S3's to cut: what came over the wire is the range, not the object.
    obj = media_in_place.open_reference(factory.ctx, f"s3://{BUCKET}/{tmp_path.name}/long.wav")
    try:
        assert obj.size == len(audio) and obj.head == audio[:512]
        assert b"".join(obj.read(first, last + 1)) == audio[first:last + 1]
        assert obj._response.status_code == 206  # white box: the ranged GET S3 answered
        assert obj._response.headers["content-range"] == f"bytes {first}-{last}/{len(audio)}"
    finally:
        obj.close()
