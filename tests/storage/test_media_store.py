"""One suite for both media stores: a local directory and S3, the latter against a real
S3-protocol server on loopback (moto in server mode) that the tests start themselves."""

from __future__ import annotations

import io

import pytest

from goldlabel.storage.media import LocalMediaStore, S3MediaStore, object_key

BUCKET = "goldlabel-media"  # made by the s3_endpoint fixture (tests/conftest.py)


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalMediaStore(tmp_path / "media")
    endpoint = request.getfixturevalue("s3_endpoint")
    return S3MediaStore(BUCKET, prefix=f"t/{tmp_path.name}", endpoint_url=endpoint)


def test_put_size_read_and_ranges(store):
    payload = bytes(range(256)) * 4000  # 1 MB: several read chunks
    key = object_key(7, "ab" * 32)
    assert not store.exists(key) and store.size(key) is None
    store.put(key, io.BytesIO(payload), len(payload))
    assert store.exists(key) and store.size(key) == len(payload)
    assert b"".join(store.read(key)) == payload
    assert b"".join(store.read(key, 10, 20)) == payload[10:20]
    assert b"".join(store.read(key, len(payload) - 5)) == payload[-5:]


def test_put_replaces_whole_objects(store):
    key = object_key(1, "cd" * 32)
    store.put(key, io.BytesIO(b"first"), 5)
    store.put(key, io.BytesIO(b"second!"), 7)
    assert b"".join(store.read(key)) == b"second!"


def test_local_store_refuses_keys_that_escape(tmp_path):
    store = LocalMediaStore(tmp_path / "media")
    with pytest.raises(ValueError):
        store.put("../outside", io.BytesIO(b"x"), 1)
    assert not (tmp_path / "outside").exists()


def test_signed_urls(store):
    key = object_key(3, "ef" * 32)
    store.put(key, io.BytesIO(b"\x89PNG\r\n\x1a\n"), 8)
    url = store.signed_url(key, 60, "image/png", "inline")
    if isinstance(store, LocalMediaStore):
        assert url is None  # served through the server
        return
    import httpx

    res = httpx.get(url)
    assert res.status_code == 200 and res.content == b"\x89PNG\r\n\x1a\n"
    assert res.headers["content-type"] == "image/png"
