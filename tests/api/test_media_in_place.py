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
