"""A Parquet file cannot decode to more than its limits (issue 17, item 9): a 24 KB file used to
import 1 GB of item data."""

from __future__ import annotations

import io
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from goldlabel.domain.errors import FieldError
from goldlabel.formats import parquet
from goldlabel.formats.parquet import ReadLimits

VALUE = "x" * 10_000  # 10 KB, repeated: dictionary + zstd make it almost free on disk


def bomb(rows: int, *, store_schema: bool) -> bytes:
    """``rows`` rows whose ``data.text`` is the same 10 KB string, built without expanding it."""
    text = pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), pa.array([VALUE]))
    ext = pa.array([f"e{i}" for i in range(rows)])
    table = pa.table({"external_id": ext, "data.text": text})
    out = io.BytesIO()
    pq.write_table(table, out, compression="zstd", use_dictionary=True, store_schema=store_schema,
                   row_group_size=50_000)
    return out.getvalue()


def read_all(payload: bytes, limits: ReadLimits | None = None) -> tuple[int, list[FieldError]]:
    rows, errors = 0, []
    for _, row in parquet.read_rows(io.BytesIO(payload), limits):
        if isinstance(row, FieldError):
            errors.append(row)
        else:
            rows += 1
    return rows, errors


@pytest.mark.parametrize("store_schema", [True, False])
def test_a_compression_bomb_stops_at_the_decoded_limit(store_schema):
    payload = bomb(100_000, store_schema=store_schema)  # 1 GB of text once decoded
    assert len(payload) < 400_000  # ~4,000x expansion
    started = time.perf_counter()
    rows, errors = read_all(payload)
    elapsed = time.perf_counter() - started
    assert [e.code for e in errors] == ["too_large"]
    limit = ReadLimits().max_bytes(len(payload))
    assert limit == ReadLimits().min_bytes  # a small file may still decode to 64 MiB
    # What was handed on stays within the limit (one batch of overshoot is decoded, never read out).
    assert rows * len(VALUE) <= limit
    assert elapsed < 30


def test_row_count_limit_from_metadata_and_while_reading():
    payload = bomb(1_000, store_schema=False)
    rows, errors = read_all(payload, ReadLimits(max_rows=999))
    assert rows == 0 and [e.code for e in errors] == ["too_many_rows"]
    rows, errors = read_all(payload, ReadLimits(max_rows=1_000))
    assert rows == 1_000 and errors == []


def test_expansion_scales_with_the_file_size():
    payload = bomb(2_000, store_schema=False)  # 20 MB decoded
    _, errors = read_all(payload, ReadLimits(expansion=1.0, min_bytes=1024 * 1024))
    assert [e.code for e in errors] == ["too_large"]
    rows, errors = read_all(payload, ReadLimits(expansion=1.0, min_bytes=32 * 1024 * 1024))
    assert rows == 2_000 and errors == []


def test_import_reports_the_bomb(factory):
    project = factory.make_project()
    api = factory.api_as(project["manager"])
    payload = bomb(20_000, store_schema=False)  # 200 MB decoded, 64 MiB allowed
    res = api.post(f"/api/v1/projects/{project['id']}/imports",
                   files={"file": ("bomb.parquet", payload, "application/octet-stream")})
    assert res.status_code == 422, res.text
    assert [e["code"] for e in res.json()["report"]["errors"]] == ["too_large"]
