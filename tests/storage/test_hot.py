"""storage.hot: statements run on the driver's cursor give what Connection.execute gives, on
both databases (rows, JSON and booleans decoded, rowcounts, RETURNING, executemany, errors)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from goldlabel.storage import queue as queue_store
from goldlabel.storage.hot import Hot
from goldlabel.storage.tables import events, items


def _project_with_items(factory, n: int = 3) -> dict:
    project = factory.make_project()
    factory.add_items(project, n)
    return project


def test_select_rows_match_connection_execute(ctx, factory):
    project = _project_with_items(factory)
    stmt = (
        sa.select(items.c.id, items.c.data, items.c.is_gold, items.c.priority, items.c.meta)
        .where(items.c.project_id == sa.bindparam("p"), items.c.status == "open")
        .order_by(items.c.id)
    )
    with ctx.engine.begin() as conn:
        expected = [dict(r) for r in conn.execute(stmt, {"p": project["id"]}).mappings()]
        got = Hot(stmt).all(conn, {"p": project["id"]})
    assert got == expected and len(got) == 3
    assert got[0]["data"] == {"text": "item 0"}  # JSON decoded
    assert got[0]["is_gold"] is False  # a bool, also on SQLite's integer column


def test_labels_and_first(ctx, factory):
    project = _project_with_items(factory, 2)
    stmt = sa.select(items.c.id.label("item__id"), items.c.external_id).where(items.c.id == sa.bindparam("i"))
    with ctx.engine.begin() as conn:
        first_id = conn.execute(sa.select(sa.func.min(items.c.id))).scalar_one()
        assert Hot(stmt).first(conn, {"i": first_id}) == {"item__id": first_id, "external_id": "x0"}
        assert Hot(stmt).first(conn, {"i": -1}) is None
    assert project


def test_dml_rowcount_returning_and_executemany(ctx, factory):
    project = _project_with_items(factory, 2)
    bump = Hot(items.update().where(items.c.project_id == sa.bindparam("p")).values(priority=items.c.priority + 5))
    insert_event = Hot(events.insert())
    with ctx.engine.begin() as conn:
        assert bump.rowcount(conn, {"p": project["id"]}) == 2
        assert bump.rowcount(conn, {"p": -1}) == 0
        insert_event.many(conn, [
            {"project_id": project["id"], "kind": "k1", "payload": {"a": [1, 2]}, "created_at": 1},
            {"project_id": project["id"], "kind": "k2", "payload": {"b": None}, "created_at": 2},
        ])
        rows = Hot(sa.select(events.c.kind, events.c.payload).where(events.c.kind.like("k_"))
                   .order_by(events.c.id)).all(conn, {})
        priorities = conn.execute(sa.select(items.c.priority).where(items.c.project_id == project["id"])).scalars()
        assert set(priorities) == {5}
    assert rows == [{"kind": "k1", "payload": {"a": [1, 2]}}, {"kind": "k2", "payload": {"b": None}}]


def test_insert_on_conflict_returning_none(ctx, factory):
    """The queue's answer insert: RETURNING a row, then nothing on the unique conflict."""
    project = _project_with_items(factory, 1)
    annotator = factory.make_user("annotator")
    with ctx.engine.begin() as conn:
        item_id = conn.execute(sa.select(items.c.id).where(items.c.project_id == project["id"])).scalar_one()
        values = {"project_id": project["id"], "item_id": item_id, "annotator_id": annotator.id,
                  "lease_id": None, "value": {"sentiment": "positive"}, "status": "submitted",
                  "duration_ms": None, "idempotency_key": None, "created_at": 1, "updated_at": 1}
        first = queue_store.insert_answer_unique(conn, **values)
        assert first is not None and first["value"] == {"sentiment": "positive"} and first["id"] > 0
        assert queue_store.insert_answer_unique(conn, **values) is None


def test_errors_are_sqlalchemy_errors(ctx, factory):
    project = _project_with_items(factory, 1)
    dup = Hot(items.insert())
    with pytest.raises(sa.exc.IntegrityError), ctx.engine.begin() as conn:
        row = conn.execute(sa.select(items).where(items.c.project_id == project["id"])).mappings().one()
        dup.first(conn, {c: row[c] for c in ("project_id", "external_id", "data", "target_overlap",
                                              "overlap_max", "created_at", "updated_at")})
    with pytest.raises(sa.exc.DBAPIError), ctx.engine.begin() as conn:
        Hot(sa.text("SELECT * FROM no_such_table")).all(conn, {})


def test_outside_a_transaction_goes_through_execute(ctx, factory):
    project = _project_with_items(factory, 2)
    stmt = sa.select(items.c.id).where(items.c.project_id == sa.bindparam("p"))
    with ctx.engine.connect() as conn:
        assert not conn.in_transaction()
        assert len(Hot(stmt).all(conn, {"p": project["id"]})) == 2
        assert conn.in_transaction()  # autobegun, as Connection.execute does


def test_refuses_expanding_parameters(ctx):
    stmt = sa.select(items.c.id).where(items.c.id.in_(sa.bindparam("ids", expanding=True)))
    with ctx.engine.begin() as conn, pytest.raises(ValueError, match="expanding"):
        Hot(stmt).all(conn, {"ids": [1, 2]})


def test_result_shape_is_read_once_per_statement(ctx, factory):
    """The column names and decoders come from the first run's cursor.description and are
    kept (psycopg builds description afresh on every access); later runs decode the same way,
    and a statement without a result set keeps returning no rows."""
    project = _project_with_items(factory, 2)
    select = Hot(sa.select(items.c.id, items.c.data, items.c.is_gold).where(items.c.project_id == sa.bindparam("p"))
                 .order_by(items.c.id))
    bump = Hot(items.update().where(items.c.project_id == sa.bindparam("p")).values(priority=items.c.priority + 1))
    with ctx.engine.begin() as conn:
        first = select.all(conn, {"p": project["id"]})
        (compiled,) = select._cache.values()
        assert compiled.results is not None and compiled.results[0] == ("id", "data", "is_gold")
        again = select.all(conn, {"p": project["id"]})
        assert bump.all(conn, {"p": project["id"]}) == [] and bump.all(conn, {"p": project["id"]}) == []
    assert again == first and again[1]["data"] == {"text": "item 1"} and again[1]["is_gold"] is False
    (bump_compiled,) = bump._cache.values()
    assert bump_compiled.results == (None, ())
