"""Context's lease readings: what a lease read of its item, kept for that lease's submit
(services/queue/merged_submit.py), found only by the lease's annotator in its project, bounded, expiring."""

from __future__ import annotations

import pytest

from goldlabel.services import context as context_module


@pytest.fixture
def backend() -> str:
    return "sqlite"


def test_only_the_same_token_annotator_and_project_find_it_once(ctx):
    ctx.remember_lease_reading(("h", 1, 10), 60, {"x": 1})
    assert ctx.take_lease_reading(("h", 2, 10)) is None  # another annotator
    assert ctx.take_lease_reading(("h", 1, 11)) is None  # another project
    assert ctx.take_lease_reading(("h", 1, 10)) == {"x": 1}
    assert ctx.take_lease_reading(("h", 1, 10)) is None  # taken


def test_an_expired_reading_is_not_used(ctx):
    ctx.remember_lease_reading(("h", 1, 10), -1, {"x": 1})
    assert ctx.take_lease_reading(("h", 1, 10)) is None


def test_bounded_expired_first_then_oldest(ctx, monkeypatch):
    monkeypatch.setattr(context_module, "LEASE_READINGS_MAX", 3)
    ctx.remember_lease_reading(("old", 1, 1), 60, {})
    ctx.remember_lease_reading(("expired", 1, 1), -1, {})
    ctx.remember_lease_reading(("mid", 1, 1), 60, {})
    ctx.remember_lease_reading(("new", 1, 1), 60, {})  # full: the expired one goes
    assert [k[0] for k in ctx._lease_readings] == ["old", "mid", "new"]
    ctx.remember_lease_reading(("newest", 1, 1), 60, {})  # full, none expired: the oldest goes
    assert [k[0] for k in ctx._lease_readings] == ["mid", "new", "newest"]
