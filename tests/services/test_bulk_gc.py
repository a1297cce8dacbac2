"""Bulk jobs run with fewer garbage-collector passes, and put the collector back as it was."""

from __future__ import annotations

import gc
import io

import pytest

from goldlabel.services.bulk_gc import BULK_GC_THRESHOLD, fewer_gc_passes
from goldlabel.services.exports import prepare_export
from goldlabel.services.import_rows import ingest_rows


@pytest.fixture(autouse=True)
def default_thresholds():
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_overlapping_jobs_restore_the_threshold_when_the_last_one_ends():
    first, second = fewer_gc_passes(), fewer_gc_passes()
    first.__enter__()
    assert gc.get_threshold() == (BULK_GC_THRESHOLD, 10, 10)
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold() == (BULK_GC_THRESHOLD, 10, 10)  # the second job still runs
    second.__exit__(None, None, None)
    assert gc.get_threshold() == (700, 10, 10)


def test_automatic_collection_left_off_when_it_was_off():
    gc.set_threshold(0)
    with fewer_gc_passes():
        assert gc.get_threshold()[0] == 0


def test_import_and_export_run_with_the_raised_threshold(factory):
    project = factory.make_project()
    seen = []

    def rows():
        for i in range(3):
            seen.append(gc.get_threshold()[0])
            yield i + 1, {"external_id": f"g{i}", "data": {"text": str(i)}}

    ingest_rows(factory.ctx, None, project["id"], rows())
    assert seen == [BULK_GC_THRESHOLD] * 3
    assert gc.get_threshold() == (700, 10, 10)

    out = io.BytesIO()
    assert prepare_export(factory.ctx, None, project["id"], "jsonl").write_to(out) == 3
    assert gc.get_threshold() == (700, 10, 10)


def test_streamed_export_keeps_the_raised_threshold_between_chunks(factory):
    project = factory.make_project()
    text = "x" * 300
    ingest_rows(factory.ctx, None, project["id"],
                ((i + 1, {"external_id": f"s{i}", "data": {"text": text}}) for i in range(6000)))
    chunks = prepare_export(factory.ctx, None, project["id"], "jsonl").iter_bytes()
    first = next(chunks)  # over 1 MiB: handed out before the export is done
    assert gc.get_threshold()[0] == BULK_GC_THRESHOLD
    rest = b"".join(chunks)
    assert (first + rest).count(b"\n") == 6000
    assert gc.get_threshold() == (700, 10, 10)
