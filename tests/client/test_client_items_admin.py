"""The SDK's item management: filters, bulk actions, delete and restore, report."""

from __future__ import annotations

import pytest

from goldlabel.client import ValidationFailed


def test_filters_bulk_restore_and_report_through_the_sdk(make_user, connect):
    gl = connect(make_user("manager"))
    project = gl.create_project("sdk items", {"questions": [
        {"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"]}]})
    pid = project.id
    gl.add_items(pid, [{"external_id": f"r{i}", "data": {"text": "battery died" if i % 2 else "fine"},
                        "meta": {"shop": "a" if i < 2 else "b"}} for i in range(4)])
    assert [i.external_id for i in gl.list_items(pid, q="BATTERY")] == ["r1", "r3"]
    assert [i.external_id for i in gl.list_items(pid, meta={"shop": "b"}, q="battery")] == ["r3"]
    res = gl.bulk_items(pid, "review", filter={"meta": {"shop": "a"}})
    assert (res["matched"], res["changed"]) == (2, 2)
    assert [i.external_id for i in gl.list_items(pid, status="needs_review")] == ["r0", "r1"]
    gone = gl.bulk_items(pid, "delete", filter={"q": "battery"})
    assert gone["changed"] == 2 and gone["undo_until"] > gone["deleted_at"]
    assert [i.external_id for i in gl.list_items(pid, status="deleted")] == ["r1", "r3"]
    assert [i.external_id for i in gl.list_items(pid)] == ["r0", "r2"]
    assert gl.restore_items(pid, deleted_at=gone["deleted_at"]) == 2
    r2 = next(i for i in gl.list_items(pid) if i.external_id == "r2")
    assert gl.report_item(pid, r2.id)["status"] == "needs_review"
    assert [i.external_id for i in gl.list_items(pid, flag="media_broken")] == ["r2"]
    with pytest.raises(ValidationFailed):
        gl.bulk_items(pid, "priority", filter={})
