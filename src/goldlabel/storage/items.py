"""Items, their predictions and gold answers; answer listings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldlabel.storage.tables import (
    Json,
    answers,
    consensus,
    gold_answers,
    items,
    leases,
    predictions,
)


def fetch_item(conn: Connection, project_id: int, item_id: int) -> dict[str, Any] | None:
    row = (
        conn.execute(sa.select(items).where(items.c.id == item_id, items.c.project_id == project_id))
        .mappings()
        .first()
    )
    return dict(row) if row else None


def fetch_live_item(conn: Connection, project_id: int, item_id: int) -> dict[str, Any] | None:
    """fetch_item, None for a deleted item (hidden everywhere until restored)."""
    row = fetch_item(conn, project_id, item_id)
    return None if row is None or row["status"] == "deleted" else row


def fetch_item_data(conn: Connection, item_id: int) -> dict[str, Any]:
    return cast(dict[str, Any], conn.execute(sa.select(items.c.data).where(items.c.id == item_id)).scalar_one())


def fetch_item_status(conn: Connection, item_id: int) -> str:
    return cast("str", conn.execute(sa.select(items.c.status).where(items.c.id == item_id)).scalar_one())


def fetch_predictions(conn: Connection, item_id: int) -> list[dict[str, Any]]:
    q = sa.select(predictions).where(predictions.c.item_id == item_id).order_by(predictions.c.id)
    return [dict(r) for r in conn.execute(q).mappings()]


def fetch_gold(conn: Connection, item_id: int) -> dict[str, Any] | None:
    """Managers only: the caller must have checked the manage permission."""
    return conn.execute(sa.select(gold_answers.c.value).where(gold_answers.c.item_id == item_id)).scalar()


def fetch_answers(conn: Connection, item_id: int) -> list[dict[str, Any]]:
    q = sa.select(answers).where(answers.c.item_id == item_id).order_by(answers.c.id)
    return [dict(r) for r in conn.execute(q).mappings()]


def _like(term: str) -> str:
    """A LIKE pattern that matches ``term`` anywhere, its own % and _ taken literally."""
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# The text index (migration 0017): SQLite's FTS5 table (rowid = items.id), PostgreSQL's
# item_text (item_id, body) with a pg_trgm GIN index on body. Both hold the searched text (the
# external id and every top-level data value, joined by U+001F) and find a substring of 3
# characters or more by trigrams. Imports do not write it: index_text_batch fills it after
# them, in id order, and item_text_state.indexed_through is its watermark (every item with an
# id up to it is in the index; edits and deletes of those reach it through triggers).
ITEMS_FTS = sa.table("items_fts", sa.column("rowid", sa.Integer), sa.column("body", sa.Text))
ITEM_TEXT = sa.table("item_text", sa.column("item_id", sa.BigInteger), sa.column("body", sa.Text))
TEXT_STATE = sa.table("item_text_state", sa.column("id", sa.Integer), sa.column("indexed_through", sa.BigInteger))
TRIGRAM = 3
# SQLite: the searched text of ``items`` (the migration's update trigger writes the same).
_SQLITE_TEXT = ("items.external_id || char(31) || coalesce((SELECT group_concat(CAST(value AS TEXT), char(31)) "
                "FROM json_each(items.data)), '')")


def has_text_index(conn: Connection) -> bool:
    """Whether the database has the text index (a deployment whose role could not create the
    pg_trgm extension has not: docs/deployment.md, "Text search")."""
    if conn.dialect.name == "sqlite":
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'items_fts'"
    else:
        sql = "SELECT 1 WHERE to_regclass('ix_item_text_body') IS NOT NULL"
    return conn.execute(sa.text(sql)).first() is not None


def text_index_lag(conn: Connection) -> tuple[int, int]:
    """(watermark, highest item id): the items above the watermark are not indexed yet."""
    mark = conn.execute(sa.select(TEXT_STATE.c.indexed_through)).scalar() or 0
    top = conn.execute(sa.select(sa.func.max(items.c.id))).scalar() or 0
    return int(mark), int(top)


def text_index_safe_top(conn: Connection) -> int | None:
    """PostgreSQL: the highest item id below which no insert is still in flight (ids come from a
    sequence, so a transaction that has not committed yet may hold a lower id than one that
    has): SHARE on ``items`` waits for the writing transactions to end and keeps new ones out
    for this short transaction. None: a write held it past the lock timeout (try later). The
    timeout is short because writers queue behind the waiting lock (an annotator's submit waits
    at most that long); during a long import transaction the indexer so waits for its end."""
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("SET LOCAL lock_timeout = '100ms'")
            conn.exec_driver_sql("LOCK TABLE items IN SHARE MODE")
    except sa.exc.OperationalError:
        return None
    return int(conn.execute(sa.select(sa.func.max(items.c.id))).scalar() or 0)


def index_text_batch(conn: Connection, limit: int, top: int | None = None) -> int:
    """Index the next ``limit`` items above the watermark (at most up to id ``top``) and move the
    watermark past them; how many were indexed (0: caught up). One writer at a time: SQLite's
    write lock, PostgreSQL's row lock on the watermark."""
    state = sa.select(TEXT_STATE.c.indexed_through)
    if conn.dialect.name == "postgresql":
        state = state.with_for_update()
    mark = int(conn.execute(state).scalar() or 0)
    batch = sa.select(items.c.id).where(items.c.id > mark).order_by(items.c.id).limit(limit)
    if top is not None:
        batch = batch.where(items.c.id <= top)
    sub = batch.subquery()
    n, high = conn.execute(sa.select(sa.func.count(), sa.func.max(sub.c.id))).one()
    if not n:
        return 0
    if conn.dialect.name == "sqlite":
        conn.execute(sa.delete(ITEMS_FTS).where(ITEMS_FTS.c.rowid > mark, ITEMS_FTS.c.rowid <= high))
        conn.exec_driver_sql(
            f"INSERT INTO items_fts(rowid, body) SELECT id, {_SQLITE_TEXT} FROM items "  # nosec B608  # constant SQL, bound ids
            "WHERE id > ? AND id <= ?", (mark, high))
    else:
        # No row locks: share locks here made the queue's claim (FOR UPDATE SKIP LOCKED) skip the
        # whole batch, and annotators were told "no work" meanwhile (migration 0018). An edit's
        # trigger upserts its row instead, so a row already there holds the newest text: kept.
        conn.exec_driver_sql(
            "INSERT INTO item_text (item_id, body) SELECT id, goldlabel_item_text(external_id, data) FROM items "
            "WHERE id > %(mark)s AND id <= %(high)s "
            "ON CONFLICT (item_id) DO NOTHING", {"mark": mark, "high": high})
    conn.execute(sa.update(TEXT_STATE).values(indexed_through=high))
    return int(n)


def flush_text_index(conn: Connection) -> str | None:
    """PostgreSQL: move the GIN index's pending list (where a batch's entries go first, in bulk)
    into the index proper; until then every search reads the list, and the planner, costing
    that, scans item_text instead. The index's owner may (the migration's role); another
    role's index waits for autovacuum: then the database's reason."""
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("SELECT gin_clean_pending_list('ix_item_text_body'::regclass)")
    except sa.exc.DBAPIError as exc:
        return str(exc.orig).strip().splitlines()[0]
    return None


def _exact_text_match(conn: Connection, pattern: str) -> sa.ColumnElement[bool]:
    if conn.dialect.name == "postgresql":
        values = sa.func.jsonb_each_text(items.c.data).table_valued("value", name="kv")
    else:
        values = sa.func.json_each(items.c.data).table_valued("value", name="kv")
    in_data = sa.exists(sa.select(sa.literal(1)).select_from(values).where(
        sa.cast(values.c.value, sa.Text).ilike(pattern, escape="\\")))
    return sa.or_(items.c.external_id.ilike(pattern, escape="\\"), in_data)


def _uses_index(conn: Connection, term: str | None, indexed: bool | None) -> bool:
    """Whether a search for ``term`` goes through the text index (``indexed``: whether there is
    one; None: look). A term shorter than a trigram cannot."""
    if not term or len(term) < TRIGRAM:
        return False
    return has_text_index(conn) if indexed is None else indexed


def text_match(conn: Connection, term: str) -> sa.ColumnElement[bool]:
    """The item's external_id or one of its data values (top level; a nested value as its JSON
    text) contains ``term``, case-insensitively (ASCII case on SQLite, the database's on
    PostgreSQL): the scan's test, which every search applies (through the index, ``_keyset_page``,
    to its candidates). In id order: with the keyset page it stops at the page's last match."""
    return _exact_text_match(conn, _like(term))


def _index_candidates(conn: Connection) -> tuple[Any, Any]:
    """(FROM clause, its item id column): the index joined to the items."""
    if conn.dialect.name == "sqlite":
        return ITEMS_FTS.join(items, items.c.id == ITEMS_FTS.c.rowid), ITEMS_FTS.c.rowid
    return ITEM_TEXT.join(items, items.c.id == ITEM_TEXT.c.item_id), ITEM_TEXT.c.item_id


def _candidate_match(conn: Connection, term: str) -> sa.ColumnElement[bool]:
    """The index's test: a superset of the items whose text contains ``term`` (its text joins
    the values, and folds case by Unicode), which the exact test narrows. PostgreSQL: the
    pattern is written into the statement (its default escape is the backslash, as ``_like``
    writes it), so that each search is planned for its own term (a common term is faster by the
    primary key in id order, a rare one by the GIN index; a generic plan, which psycopg's
    prepared statements would get after 5 runs, took the index for both)."""
    if conn.dialect.name == "sqlite":
        phrase = '"' + term.replace('"', '""') + '"'  # an FTS5 string: one phrase, its quotes doubled
        return sa.literal_column("items_fts").op("MATCH")(phrase)
    return ITEM_TEXT.c.body.ilike(sa.literal(_like(term), sa.Text, literal_execute=True))


def _keyset_page(conn: Connection, columns: Any, project_id: int, after: int, limit: int,
                 filters: dict[str, Any]) -> sa.Select[Any]:
    """``SELECT columns`` of the project's items matching ``filters`` with id > after, in id
    order, at most ``limit``.

    A text search with the index is two pages joined in id order: the index's candidates up to
    the watermark (SQLite: the FTS5 table is the outer loop in rowid = item id order, so the
    page stops at its last match whether the term is rare or everywhere; PostgreSQL: each term
    planned for itself) and a scan of the items above the watermark (what the indexer has not
    reached yet: few, or the import just done). The exact test and the other filters check
    both; the two halves never miss or repeat an item while the indexer moves the watermark."""
    filters = dict(filters)
    indexed = filters.pop("text_index", None)
    term = filters.get("q")
    if isinstance(term, str) and _uses_index(conn, term, indexed):
        # The watermark written into the statement, so that PostgreSQL plans the indexed half
        # for it (as a parameter its planner took the range for a few rows: the primary key and
        # a filter on every row). Read before the statement, it can only be lower than the one
        # the statement would see (it never moves down but on SQLite, in this same snapshot):
        # the items between are then both in the index and scanned, which is still exact.
        mark = sa.literal(int(conn.execute(sa.select(TEXT_STATE.c.indexed_through)).scalar() or 0),
                          sa.BigInteger, literal_execute=True)
        source, key = _index_candidates(conn)
        # One lower bound for the tail (two, and SQLite may take ``after``'s for the range)
        greatest = (sa.func.max if conn.dialect.name == "sqlite" else sa.func.greatest)(after, mark)
        filters.pop("q")
        via_index = (
            sa.select(*columns)
            .select_from(source)
            .where(_candidate_match(conn, term), key > after, key <= mark, items.c.project_id == project_id,
                   text_match(conn, term), *item_filters(conn, **filters))
            .order_by(key)
            .limit(limit)
            .subquery("via_index")
        )
        tail = (
            sa.select(*columns)
            .where(_in_project(conn, project_id), items.c.id > greatest,
                   text_match(conn, term), *item_filters(conn, **filters))
            .order_by(items.c.id)
            .limit(limit)
            .subquery("tail")
        )
        both = sa.union_all(sa.select(via_index), sa.select(tail)).subquery("found")
        return sa.select(*both.c).order_by(both.c.id).limit(limit)
    return (
        sa.select(*columns)
        .where(_in_project(conn, project_id), items.c.id > after, *item_filters(conn, **filters))
        .order_by(items.c.id)
        .limit(limit)
    )


def item_filters(
    conn: Connection,
    *,
    status: str | None = None,
    is_gold: bool | None = None,
    annotator_id: int | None = None,
    question: str | None = None,
    label: Any = None,
    min_confidence: float | None = None,
    max_confidence: float | None = None,
    disagreement: bool = False,
    q: str | None = None,
    source: str | None = None,
    flag: str | None = None,
    meta: dict[str, str] | None = None,
) -> list[sa.ColumnElement[bool]]:
    """WHERE conditions of the item filters (see list_items). ``status`` None: every item but
    the deleted ones; "deleted": the items in their undo window."""
    conds: list[sa.ColumnElement[bool]] = []
    conds.append(items.c.status != "deleted" if status is None else items.c.status == status)
    if is_gold is not None:
        conds.append(items.c.is_gold == is_gold)
    if annotator_id is not None:
        conds.append(
            sa.exists(
                sa.select(sa.literal(1)).where(answers.c.item_id == items.c.id, answers.c.annotator_id == annotator_id)
            )
        )
    if question is not None and (disagreement or any(f is not None for f in (label, min_confidence, max_confidence))):
        cc = [consensus.c.item_id == items.c.id, consensus.c.question == question]
        if label is not None:
            cc.append(consensus.c.value == sa.type_coerce(label, Json))
        if min_confidence is not None:
            cc.append(consensus.c.confidence >= min_confidence)
        if max_confidence is not None:
            cc.append(consensus.c.confidence <= max_confidence)
        if disagreement:
            # agreement = share of answers matching the consensus; below 1 = not unanimous
            cc.append(consensus.c.agreement < 1 - 1e-9)
        conds.append(sa.exists(sa.select(sa.literal(1)).where(*cc)))
    if source is not None:
        cs = [consensus.c.item_id == items.c.id, consensus.c.source == source]
        if question is not None:
            cs.append(consensus.c.question == question)
        conds.append(sa.exists(sa.select(sa.literal(1)).where(*cs)))
    if flag is not None:
        conds.append(items.c.flag == flag)
    for key, value in (meta or {}).items():
        conds.append(sa.cast(items.c.meta[key].as_string(), sa.Text) == value)
    if q:
        conds.append(text_match(conn, q))
    return conds


def _in_project(conn: Connection, project_id: int) -> sa.ColumnElement[bool]:
    # SQLite: "+ 0" keeps the planner on the rowid range scan (id > after ORDER BY id) instead of
    # an index on project_id, which would sort the whole project for every page (as the export's
    # batches do, storage/exports.py).
    if conn.dialect.name == "sqlite":
        return (items.c.project_id + 0) == project_id
    return items.c.project_id == project_id


def list_items(
    conn: Connection,
    project_id: int,
    after: int,
    limit: int,
    **filters: Any,
) -> list[dict[str, Any]]:
    """A keyset page of items (``id > after ORDER BY id LIMIT n``) with the given filters
    (item_filters: status, is_gold, annotator_id, question with label / confidence range /
    disagreement, q text search through the text index where there is one, consensus source,
    flag, meta key=value; ``text_index`` False makes a search scan, as a benchmark's baseline).

    Label and confidence filters test the item's consensus row for ``question`` through its
    primary key (item_id, question); the annotator filter tests the (item_id, annotator_id)
    unique index. No OFFSET, no COUNT: page N costs what page 1 costs.
    """
    return [dict(r) for r in conn.execute(_keyset_page(conn, [items], project_id, after, limit, filters)).mappings()]


def set_reviewed_state(conn: Connection, item_id: int, *, status: str, target_overlap: int,
                       overlap_max: int, now: int) -> None:
    """A review's decision on an item: its status, and for a reject the overlap it now needs
    (which may exceed the project's maximum: one more independent answer)."""
    conn.execute(items.update().where(items.c.id == item_id).values(
        status=status, target_overlap=target_overlap, overlap_max=overlap_max, updated_at=now))
def list_item_keys(conn: Connection, project_id: int, after: int, limit: int, **filters: Any) -> list[tuple[int, str]]:
    """(id, external_id) of a keyset page of matching items: what a bulk action walks."""
    q = _keyset_page(conn, [items.c.id, items.c.external_id], project_id, after, limit, filters)
    return [(int(i), e) for i, e in conn.execute(q)]


def existing_item_keys(conn: Connection, project_id: int, item_ids: list[int]) -> list[tuple[int, str]]:
    q = (
        sa.select(items.c.id, items.c.external_id)
        .where(items.c.project_id == project_id, items.c.id.in_(item_ids))
        .order_by(items.c.id)
    )
    return [(int(i), e) for i, e in conn.execute(q)]


def _expire_active_leases(conn: Connection, item_ids: list[int]) -> int:
    """Cancel the active leases of these items (a holder's submit then finds its lease expired)
    and hand their reservations back, as the reap of an expired lease does."""
    from goldlabel.storage import queue as queue_store

    rows = conn.execute(
        sa.select(leases.c.id, leases.c.item_id).where(leases.c.item_id.in_(item_ids), leases.c.status == "active")
    ).all()
    for lease_id, item_id in rows:
        queue_store.set_lease_status(conn, lease_id, "expired")
        queue_store.unreserve_item(conn, item_id)
    return len(rows)


def soft_delete_items(conn: Connection, project_id: int, item_ids: list[int], now: int) -> list[int]:
    """Status "deleted" (the old status kept for an undo), stamped ``now``; their active leases
    cancelled. Returns the ids deleted now (already deleted ones are left as they were)."""
    if not item_ids:
        return []
    done = [
        int(i)
        for (i,) in conn.execute(
            items.update()
            .where(items.c.project_id == project_id, items.c.id.in_(item_ids), items.c.status != "deleted")
            .values(status_before_delete=items.c.status, status="deleted", deleted_at=now, updated_at=now)
            .returning(items.c.id)
        )
    ]
    if done:
        _expire_active_leases(conn, done)
    return done


def restore_items(
    conn: Connection, project_id: int, since: int, *, item_ids: list[int] | None = None, deleted_at: int | None = None,
    now: int,
) -> list[int]:
    """Undo a delete: the items deleted at or after ``since`` (still in the window) that are in
    ``item_ids`` or were deleted at ``deleted_at`` get their old status back."""
    conds = [items.c.project_id == project_id, items.c.status == "deleted", items.c.deleted_at >= since]
    if item_ids is not None:
        conds.append(items.c.id.in_(item_ids))
    if deleted_at is not None:
        conds.append(items.c.deleted_at == deleted_at)
    stmt = (
        items.update()
        .where(*conds)
        .values(status=sa.func.coalesce(items.c.status_before_delete, "open"), status_before_delete=None,
                deleted_at=None, updated_at=now)
        .returning(items.c.id)
    )
    return [int(i) for (i,) in conn.execute(stmt)]


def purge_deleted_items(conn: Connection, before: int, limit: int) -> int:
    """Remove up to ``limit`` items deleted before ``before`` (their answers, consensus, leases
    go with them: ON DELETE CASCADE). A seek of ix_items_deleted_at, never a scan."""
    ids = sa.select(items.c.id).where(
        items.c.deleted_at.is_not(None), items.c.deleted_at < before, items.c.status == "deleted"
    ).limit(limit)
    return conn.execute(items.delete().where(items.c.id.in_(ids.scalar_subquery()))).rowcount


def set_priority(conn: Connection, project_id: int, item_ids: list[int], priority: int, now: int) -> list[int]:
    stmt = (
        items.update()
        .where(items.c.project_id == project_id, items.c.id.in_(item_ids), items.c.status != "deleted",
               items.c.priority != priority)
        .values(priority=priority, updated_at=now)
        .returning(items.c.id)
    )
    return [int(i) for (i,) in conn.execute(stmt)]


def send_to_review(conn: Connection, project_id: int, item_ids: Sequence[int], now: int, *,
                   from_statuses: tuple[str, ...] = ("open", "final"), gold: bool = True) -> list[int]:
    """The project's items among ``item_ids`` whose status is one of ``from_statuses`` move to
    review (their consensus rows too), gold items only with ``gold``; returns the ids moved, in
    id order. ``item_ids`` of any length: IN lists of at most 5,000."""
    moved: list[int] = []
    ids = sorted({int(i) for i in item_ids})
    for start in range(0, len(ids), 5000):
        stmt = (
            items.update()
            .where(items.c.project_id == project_id, items.c.id.in_(ids[start:start + 5000]),
                   items.c.status.in_(from_statuses), *(() if gold else (items.c.is_gold.is_(False),)))
            .values(status="needs_review", updated_at=now)
            .returning(items.c.id)
        )
        done = sorted(int(i) for (i,) in conn.execute(stmt))
        if done:
            conn.execute(consensus.update().where(consensus.c.item_id.in_(done)).values(status="needs_review",
                                                                                        updated_at=now))
        moved.extend(done)
    return moved


def flag_item(conn: Connection, project_id: int, item_id: int, flag: str, user_id: int, now: int) -> str | None:
    """Mark the item reported (``flag``) and send it to review unless it is deleted; returns its
    status before, or None when there is no such (live) item."""
    before = conn.execute(
        sa.select(items.c.status).where(items.c.id == item_id, items.c.project_id == project_id).with_for_update()
    ).scalar()
    if before is None or before == "deleted":
        return None
    conn.execute(
        items.update().where(items.c.id == item_id)
        .values(flag=flag, flagged_by=user_id, flagged_at=now, status="needs_review", updated_at=now)
    )
    if before != "needs_review":
        conn.execute(consensus.update().where(consensus.c.item_id == item_id).values(status="needs_review",
                                                                                     updated_at=now))
    return cast(str, before)


def clear_flag(conn: Connection, item_id: int) -> None:
    conn.execute(items.update().where(items.c.id == item_id).values(flag=None, flagged_by=None, flagged_at=None))


def soft_delete_project_items(conn: Connection, project_id: int, now: int) -> int:
    """Every live item of the project deleted at ``now`` (one statement, so no lease can take
    one after the project's delete commits), all its active leases cancelled."""
    n = conn.execute(
        items.update()
        .where(items.c.project_id == project_id, items.c.status != "deleted")
        .values(status_before_delete=items.c.status, status="deleted", deleted_at=now, updated_at=now)
    ).rowcount
    conn.execute(leases.update().where(leases.c.project_id == project_id, leases.c.status == "active")
                 .values(status="expired"))
    # Every active lease is gone, so nothing is reserved any more.
    conn.execute(items.update().where(items.c.project_id == project_id, items.c.reserved > 0).values(reserved=0))
    return n


def delete_item(conn: Connection, project_id: int, item_id: int) -> bool:
    res = conn.execute(items.delete().where(items.c.id == item_id, items.c.project_id == project_id))
    return res.rowcount == 1


def rotate_lease_token(conn: Connection, lease_id: int, token_hash: str) -> None:
    conn.execute(leases.update().where(leases.c.id == lease_id).values(token_hash=token_hash))


def list_answers_by_annotator(
    conn: Connection, project_id: int, annotator_id: int, after: int, limit: int
) -> list[dict[str, Any]]:
    q = (
        sa.select(answers, items.c.status.label("item_status"))
        .join(items, items.c.id == answers.c.item_id)
        .where(answers.c.project_id == project_id, answers.c.annotator_id == annotator_id,
               items.c.status != "deleted")
        .order_by(answers.c.id.desc())
        .limit(limit)
    )
    if after:
        q = q.where(answers.c.id < after)
    return [dict(r) for r in conn.execute(q).mappings()]


def list_project_answers(conn: Connection, project_id: int, after: int, limit: int) -> list[dict[str, Any]]:
    deleted = sa.select(sa.literal(1)).where(items.c.id == answers.c.item_id, items.c.status == "deleted")
    q = (
        sa.select(answers)
        .where(answers.c.project_id == project_id, answers.c.id > after, ~sa.exists(deleted))
        .order_by(answers.c.id)
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def update_answer_value(conn: Connection, answer_id: int, value: dict[str, Any], now: int) -> dict[str, Any]:
    return dict(
        conn.execute(
            answers.update().where(answers.c.id == answer_id).values(value=value, updated_at=now).returning(*answers.c)
        )
        .mappings()
        .one()
    )
