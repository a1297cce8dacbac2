"""The work queue's SQL: claim, submit, skip, release. Callers hold a write transaction.

SQLite serializes writers (``BEGIN IMMEDIATE``), so a candidate read inside the transaction
cannot be taken by anyone else before COMMIT. PostgreSQL runs claims concurrently: the
candidate is locked with ``FOR UPDATE SKIP LOCKED`` so two claimers never wait on, or take,
the same row. Either way the final ``UPDATE ... WHERE answer_count + reserved < target``
is re-checked by the database, and CHECK constraints on ``items`` back Q1 and Q3.
"""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from goldlabel.domain.queue_policy import QUEUE_ORDER, Candidate
from goldlabel.storage.hot import Hot
from goldlabel.storage.tables import answers, items, leases

_ORDER_BY = [
    getattr(items.c, col).desc() if direction == "desc" else getattr(items.c, col).asc()
    for col, direction in QUEUE_ORDER
]

# The annotate loop runs these on every request. They are built once here, with bind
# parameters, so a call only binds values: building a Core statement and its cache key per
# call cost more CPU than SQLite took to run it (profile of the lease + submit loop).
_b = sa.bindparam

_REAP = (
    leases.update()
    .where(leases.c.project_id == _b("b_project_id"), leases.c.status == "active", leases.c.expires_at <= _b("b_now"))
    .values(status="expired")
    .returning(leases.c.item_id)
)
_UNRESERVE_BY_ID = (
    items.update().where(items.c.id == _b("b_item_id")).values(reserved=items.c.reserved - 1)
)
_ACTIVE_LEASES = (
    sa.select(leases)
    .where(
        leases.c.annotator_id == _b("b_annotator_id"),
        leases.c.project_id == _b("b_project_id"),
        leases.c.status == "active",
        leases.c.expires_at > _b("b_now"),
    )
    .order_by(leases.c.id)
)


# Gold order, per annotator (issue 17): in QUEUE_ORDER every annotator would get the same gold
# items first (a qualifying annotator gets only gold), so annotators could compare notes and tell
# gold apart. Among gold candidates of equal priority the order is a pseudo-random permutation of
# the item ids of the annotator's own: (id * mul + add) mod a prime, with (mul, add) derived from
# (project, annotator). The expression only sorts the few open gold items the index already
# narrows to; it never touches normal items.
_GOLD_PRIME = 2_147_483_647  # 2^31 - 1: every product below stays under 2^63 on both databases


def _gold_rank(item_id: Any, mul: Any, add: Any) -> Any:
    """x = (id * mul + add) mod P, squared twice mod P: the linear step alone orders consecutive
    ids as an arithmetic progression (many annotators got 6, 5, 4, ...); squaring mixes it.
    Also evaluated in Python (tests) with plain ints."""
    x = ((item_id % _GOLD_PRIME) * mul + add) % _GOLD_PRIME
    x = (x * x + mul) % _GOLD_PRIME
    return (x * x + add) % _GOLD_PRIME


_GOLD_ORDER_BY = [
    items.c.priority.desc(),
    _gold_rank(items.c.id, _b("b_gold_mul", type_=sa.BigInteger), _b("b_gold_add", type_=sa.BigInteger)),
    items.c.id,
]


def gold_order_keys(project_id: int, annotator_id: int) -> dict[str, int]:
    """The (mul, add) of this annotator's gold order in this project: stable across leases."""
    digest = hashlib.blake2b(f"gold-order:{project_id}:{annotator_id}".encode(), digest_size=16).digest()
    mul = 1 + int.from_bytes(digest[:8], "big") % (_GOLD_PRIME - 1)  # never 0: a permutation
    add = int.from_bytes(digest[8:], "big") % _GOLD_PRIME
    return {"b_gold_mul": mul, "b_gold_add": add}


def _candidates_stmt(for_update: bool, *, gold: bool = False) -> sa.Select:
    mine = sa.select(sa.literal(1)).where(
        leases.c.item_id == items.c.id,
        leases.c.annotator_id == _b("b_annotator_id"),
        leases.c.status != "expired",
    )
    q = (
        sa.select(items.c.id, items.c.priority, items.c.answer_count, items.c.is_gold)
        .where(
            items.c.project_id == _b("b_project_id"),
            # A literal: PostgreSQL's queue index holds open items only (tables.py).
            items.c.status == sa.literal_column("'open'"),
            items.c.is_gold == (sa.true() if gold else _b("b_is_gold", type_=sa.Boolean)),
            items.c.answer_count + items.c.reserved < items.c.target_overlap,
            ~sa.exists(mine),
        )
        .order_by(*(_GOLD_ORDER_BY if gold else _ORDER_BY))
        .limit(_b("b_limit", type_=sa.Integer))
    )
    return q.with_for_update(skip_locked=True, of=items) if for_update else q


_CANDIDATES = _candidates_stmt(False)
_CANDIDATES_PG = _candidates_stmt(True)
_GOLD_CANDIDATES = _candidates_stmt(False, gold=True)
_GOLD_CANDIDATES_PG = _candidates_stmt(True, gold=True)
_RESERVE = (
    items.update()
    .where(
        items.c.id == _b("b_item_id"),
        items.c.status == "open",
        items.c.answer_count + items.c.reserved < items.c.target_overlap,
    )
    .values(reserved=items.c.reserved + 1)
)
_DELETE_EXPIRED_LEASE = leases.delete().where(
    leases.c.item_id == _b("b_item_id"),
    leases.c.annotator_id == _b("b_annotator_id"),
    leases.c.status == "expired",
)
_INSERT_LEASE = leases.insert().returning(*leases.c)
_RESERVE_DATA = _RESERVE.returning(items.c.data)


def _upsert_lease(dialect: Any) -> sa.Executable:
    # Q3: one lease row per (item, annotator). The candidate query excludes items with a live,
    # skipped or submitted lease of this annotator, so a conflict can only be an expired one: it
    # is taken over in place (new token, active again). Any other conflict inserts nothing.
    stmt = dialect.insert(leases)
    return stmt.on_conflict_do_update(
        index_elements=[leases.c.item_id, leases.c.annotator_id],
        set_={c: stmt.excluded[c] for c in ("project_id", "token_hash", "status", "created_at", "expires_at")}
        | {"answer_id": None},
        where=leases.c.status == "expired",
    ).returning(*leases.c)


_UPSERT_LEASE = {"sqlite": _upsert_lease(sqlite), "postgresql": _upsert_lease(postgresql)}
_INSERT_ANSWER_OR_NOTHING = {
    name: d.insert(answers).on_conflict_do_nothing().returning(*answers.c)
    for name, d in (("sqlite", sqlite), ("postgresql", postgresql))
}
_ITEM_COLS = [c.label(f"item__{c.name}") for c in items.c]
_LEASE_AND_ITEM = (
    sa.select(leases, *_ITEM_COLS)
    .join(items, items.c.id == leases.c.item_id)
    .where(leases.c.token_hash == _b("b_token_hash"))
)
# PostgreSQL locks the lease row and then the item row (FROM order), the order submit has
# always taken them in.
_LEASE_AND_ITEM_FOR_UPDATE = _LEASE_AND_ITEM.with_for_update()

# PostgreSQL SQL shared by the claim below and the one-statement lease (storage/queue_pg.py):
# the head of the queue for an annotator, the reap of expired leases (Q6), the lease upsert.
_QUEUE_ORDER_SQL = ", ".join(f"items.{col} {direction.upper()}" for col, direction in QUEUE_ORDER)


def pg_candidate_cte(annotator: str, extra: str = "") -> str:
    """``cand AS (...)``: the head of the normal queue for the annotator bound as ``annotator``
    (a parameter such as ``:annotator_id``) in project ``:project_id``, locked (SKIP LOCKED);
    ``extra``: more conditions, each starting with AND."""
    return f"""cand AS (
    SELECT items.id FROM items
    WHERE items.project_id = :project_id AND items.status = 'open' AND items.is_gold = false
      AND items.answer_count + items.reserved < items.target_overlap
      AND NOT EXISTS (SELECT 1 FROM leases WHERE leases.item_id = items.id
                      AND leases.annotator_id = {annotator} AND leases.status != 'expired'){extra}
    ORDER BY {_QUEUE_ORDER_SQL}
    LIMIT 1 FOR UPDATE OF items SKIP LOCKED
)"""


def pg_reap_ctes(extra: str = "") -> str:
    """``reaped AS (...), per_item AS (...), unreserved AS (...)``: project ``:project_id``'s
    leases expired at ``:now`` marked expired and their reservations handed back (Q6);
    ``extra``: more conditions on the reap, each starting with AND."""
    return f"""reaped AS (
    UPDATE leases SET status = 'expired'
    WHERE leases.project_id = :project_id AND leases.status = 'active' AND leases.expires_at <= :now{extra}
    RETURNING leases.item_id
), per_item AS (
    SELECT item_id, count(*) AS n FROM reaped GROUP BY item_id
), unreserved AS (
    UPDATE items SET reserved = items.reserved - per_item.n FROM per_item
    WHERE items.id = per_item.item_id RETURNING items.id
)"""


# Q3: a lease row that conflicts on (item, annotator) can only be the annotator's expired one
# (the candidate query excludes the others): it is taken over in place; any other conflict
# inserts nothing.
PG_LEASE_TAKEOVER = """ON CONFLICT (item_id, annotator_id) DO UPDATE SET
        project_id = excluded.project_id, token_hash = excluded.token_hash, status = excluded.status,
        created_at = excluded.created_at, expires_at = excluded.expires_at, answer_id = NULL
    WHERE leases.status = 'expired'"""

# PostgreSQL: the whole claim in one round trip: the head of the queue for this annotator
# (locked, SKIP LOCKED), its reservation (re-checked), and the lease (a fresh row, or the
# annotator's expired one taken over), returning the lease and the item's data.
_CLAIM_PG = sa.text(
    f"""
WITH {pg_candidate_cte(":annotator_id")}, res AS (
    UPDATE items SET reserved = items.reserved + 1 FROM cand
    WHERE items.id = cand.id AND items.status = 'open'
      AND items.answer_count + items.reserved < items.target_overlap
    RETURNING items.id, items.data
), ins AS (
    INSERT INTO leases (project_id, item_id, annotator_id, token_hash, status, created_at, expires_at)
    SELECT :project_id, res.id, :annotator_id, :token_hash, 'active', :created_at, :expires_at FROM res
    {PG_LEASE_TAKEOVER}
    RETURNING leases.*
)
SELECT ins.*, res.data AS item_data FROM res LEFT JOIN ins ON true
"""
).columns(item_data=items.c.data.type)
_LEASE_BY_TOKEN = sa.select(leases).where(leases.c.token_hash == _b("b_token_hash"))
_LEASE_BY_TOKEN_FOR_UPDATE = _LEASE_BY_TOKEN.with_for_update()
_ITEM = sa.select(items).where(items.c.id == _b("b_item_id"))
_ITEM_FOR_UPDATE = _ITEM.with_for_update()
_SET_LEASE_STATUS = leases.update().where(leases.c.id == _b("b_lease_id")).values(status=_b("b_status"))
_SET_LEASE_STATUS_ANSWER = (
    leases.update()
    .where(leases.c.id == _b("b_lease_id"))
    .values(status=_b("b_status"), answer_id=_b("b_answer_id"))
)
_DELETE_LEASE = leases.delete().where(leases.c.id == _b("b_lease_id"))
_COUNT_RESERVED = (
    items.update()
    .where(items.c.id == _b("b_item_id"), items.c.answer_count < items.c.overlap_max)
    .values(answer_count=items.c.answer_count + 1, reserved=items.c.reserved - 1, updated_at=_b("b_now"))
)
_COUNT_LATE = (
    items.update()
    .where(
        items.c.id == _b("b_item_id"),
        items.c.status == "open",
        items.c.answer_count + items.c.reserved < items.c.target_overlap,
        items.c.answer_count < items.c.overlap_max,
    )
    .values(answer_count=items.c.answer_count + 1, updated_at=_b("b_now"))
)
_INSERT_ANSWER = answers.insert().returning(*answers.c)
_ANSWER = sa.select(answers).where(answers.c.id == _b("b_answer_id"))
_ANSWER_BY_KEY = sa.select(answers).where(
    answers.c.annotator_id == _b("b_annotator_id"), answers.c.idempotency_key == _b("b_key")
)
_ITEM_ANSWERS = sa.select(answers).where(answers.c.item_id == _b("b_item_id")).order_by(answers.c.id)
_FIRST_ANSWERS = _ITEM_ANSWERS.limit(_b("b_limit", type_=sa.Integer))
_UPDATE_ITEM_STATE = (
    items.update()
    .where(items.c.id == _b("b_item_id"))
    .values(status=_b("b_status"), target_overlap=_b("b_target"), updated_at=_b("b_now"))
)


# The statements of every lease and submit, run on the driver's cursor (storage/hot.py).
_H_REAP = Hot(_REAP)
_H_UNRESERVE_BY_ID = Hot(_UNRESERVE_BY_ID)
_H_ACTIVE_LEASES = Hot(_ACTIVE_LEASES)
_H_CANDIDATES = Hot(_CANDIDATES)
_H_CANDIDATES_PG = Hot(_CANDIDATES_PG)
_H_GOLD_CANDIDATES = Hot(_GOLD_CANDIDATES)
_H_GOLD_CANDIDATES_PG = Hot(_GOLD_CANDIDATES_PG)
_H_RESERVE_DATA = Hot(_RESERVE_DATA)
_H_UPSERT_LEASE = {name: Hot(stmt) for name, stmt in _UPSERT_LEASE.items()}
_H_INSERT_ANSWER_OR_NOTHING = {name: Hot(stmt) for name, stmt in _INSERT_ANSWER_OR_NOTHING.items()}
_H_LEASE_AND_ITEM = Hot(_LEASE_AND_ITEM)
_H_LEASE_AND_ITEM_FOR_UPDATE = Hot(_LEASE_AND_ITEM_FOR_UPDATE)
_H_CLAIM_PG = Hot(_CLAIM_PG)
_H_SET_LEASE_STATUS = Hot(_SET_LEASE_STATUS)
_H_SET_LEASE_STATUS_ANSWER = Hot(_SET_LEASE_STATUS_ANSWER)
_H_COUNT_RESERVED = Hot(_COUNT_RESERVED)
_H_COUNT_LATE = Hot(_COUNT_LATE)
_H_ITEM_ANSWERS = Hot(_ITEM_ANSWERS)
_H_UPDATE_ITEM_STATE = Hot(_UPDATE_ITEM_STATE)
# Single-row reads. A submit with an Idempotency-Key reads its earlier answer with one on SQLite;
# through ``conn.execute`` that cost about seven times a Hot statement's CPU (cProfile).
_H_LEASE_BY_TOKEN = Hot(_LEASE_BY_TOKEN)
_H_LEASE_BY_TOKEN_FOR_UPDATE = Hot(_LEASE_BY_TOKEN_FOR_UPDATE)
_H_ITEM = Hot(_ITEM)
_H_ITEM_FOR_UPDATE = Hot(_ITEM_FOR_UPDATE)
_H_ANSWER = Hot(_ANSWER)
_H_ANSWER_BY_KEY = Hot(_ANSWER_BY_KEY)


def reap_expired_leases(conn: Connection, project_id: int, now: int) -> int:
    """Q6: expired leases hand their slot back. Runs at claim time; no sleeper needed."""
    expired = _H_REAP.all(conn, {"b_project_id": project_id, "b_now": now})
    if expired:
        _H_UNRESERVE_BY_ID.many(conn, [{"b_item_id": row["item_id"]} for row in expired])
    return len(expired)


# PostgreSQL: reap (Q6) and read the caller's active leases in one round trip. The SELECT sees
# the statement's snapshot, before the reap; the two sets are disjoint (expires_at <= now is
# reaped, expires_at > now is active), so it returns what the two separate statements did.
_REAP_AND_ACTIVE_PG = sa.text(
    f"""
WITH {pg_reap_ctes()}
SELECT leases.* FROM leases
WHERE leases.annotator_id = :annotator_id AND leases.project_id = :project_id
  AND leases.status = 'active' AND leases.expires_at > :now
ORDER BY leases.id
"""
)
_H_REAP_AND_ACTIVE_PG = Hot(_REAP_AND_ACTIVE_PG)


def reap_and_fetch_active_leases(conn: Connection, project_id: int, annotator_id: int, now: int) -> list[dict]:
    """reap_expired_leases, then fetch_active_leases (one statement on PostgreSQL)."""
    if conn.dialect.name != "postgresql":
        reap_expired_leases(conn, project_id, now)
        return fetch_active_leases(conn, project_id, annotator_id, now)
    params = {"project_id": project_id, "annotator_id": annotator_id, "now": now}
    return _H_REAP_AND_ACTIVE_PG.all(conn, params)


def fetch_active_leases(conn: Connection, project_id: int, annotator_id: int, now: int) -> list[dict]:
    params = {"b_annotator_id": annotator_id, "b_project_id": project_id, "b_now": now}
    return _H_ACTIVE_LEASES.all(conn, params)


def fetch_candidates(
    conn: Connection, project_id: int, annotator_id: int, *, is_gold: bool, limit: int = 1
) -> list[Candidate]:
    """Head of the queue for this annotator, in policy order, skipping items that are full,
    leased to them, answered or skipped by them. Gold comes in this annotator's own order."""
    pg = conn.dialect.name == "postgresql"
    params: dict[str, Any] = {"b_project_id": project_id, "b_annotator_id": annotator_id, "b_limit": limit}
    if is_gold:
        q = _H_GOLD_CANDIDATES_PG if pg else _H_GOLD_CANDIDATES
        params.update(gold_order_keys(project_id, annotator_id))
    else:
        q = _H_CANDIDATES_PG if pg else _H_CANDIDATES
        params["b_is_gold"] = False
    return [Candidate(r["id"], r["priority"], r["answer_count"], r["is_gold"]) for r in q.all(conn, params)]


def reserve_item(conn: Connection, item_id: int) -> bool:
    return conn.execute(_RESERVE, {"b_item_id": item_id}).rowcount == 1


def insert_lease(conn: Connection, **values: Any) -> dict:
    # A previous lease of this annotator on this item can only be an expired one (the
    # candidate query excludes the others); the unique (item, annotator) index keeps Q3.
    conn.execute(_DELETE_EXPIRED_LEASE, {"b_item_id": values["item_id"], "b_annotator_id": values["annotator_id"]})
    return dict(conn.execute(_INSERT_LEASE, values).mappings().one())


def reserve_item_data(conn: Connection, item_id: int) -> tuple[bool, Any]:
    """Reserve a slot on the item (as reserve_item) and return (reserved, the item's data)."""
    row = _H_RESERVE_DATA.first(conn, {"b_item_id": item_id})
    return (True, row["data"]) if row is not None else (False, None)


def upsert_lease(conn: Connection, **values: Any) -> dict:
    """insert_lease in one statement: a fresh lease row, or the annotator's expired one on the
    item taken over in place."""
    row = _H_UPSERT_LEASE[conn.dialect.name].first(conn, values)
    if row is None:
        raise sa.exc.IntegrityError("lease for (item, annotator) exists and is not expired", None, Exception())
    return dict(row)


def claim_next_pg(conn: Connection, project_id: int, annotator_id: int, **values: Any) -> tuple[dict, Any] | None:
    """PostgreSQL, normal (non-gold) items: candidate, reservation and lease in one statement.
    Returns (lease, item data), or None when no item needs this annotator now."""
    row = _H_CLAIM_PG.first(conn, {"project_id": project_id, "annotator_id": annotator_id, **values})
    if row is None:
        return None
    if row["id"] is None:
        # Reserved, but the lease row conflicted with a live one (cannot happen: the candidate
        # query excludes it); fail the transaction so the reservation is rolled back.
        raise sa.exc.IntegrityError("lease for (item, annotator) exists and is not expired", None, Exception())
    lease = {c.name: row[c.name] for c in leases.c}
    return lease, row["item_data"]


def lock_lease_and_item(conn: Connection, token_hash: str) -> tuple[dict | None, dict | None]:
    """lock_lease_by_token and fetch_item_for_update in one statement (both rows locked on
    PostgreSQL, lease first)."""
    q = _H_LEASE_AND_ITEM_FOR_UPDATE if conn.dialect.name == "postgresql" else _H_LEASE_AND_ITEM
    row = q.first(conn, {"b_token_hash": token_hash})
    if row is None:
        return None, None
    item = {k[6:]: row.pop(k) for k in [k for k in row if k.startswith("item__")]}
    return row, item


def insert_answer_unique(conn: Connection, **values: Any) -> dict | None:
    """Insert the answer; None (nothing inserted) when Q2's unique (item, annotator) or the
    (annotator, Idempotency-Key) index already holds one. No savepoint needed."""
    return _H_INSERT_ANSWER_OR_NOTHING[conn.dialect.name].first(conn, values)


def fetch_lease_by_token(conn: Connection, token_hash: str) -> dict | None:
    return _H_LEASE_BY_TOKEN.first(conn, {"b_token_hash": token_hash})


def fetch_item_for_update(conn: Connection, item_id: int) -> dict | None:
    q = _H_ITEM_FOR_UPDATE if conn.dialect.name == "postgresql" else _H_ITEM
    return q.first(conn, {"b_item_id": item_id})


def set_lease_status(conn: Connection, lease_id: int, status: str, answer_id: int | None = None) -> None:
    if answer_id is None:
        _H_SET_LEASE_STATUS.rowcount(conn, {"b_lease_id": lease_id, "b_status": status})
    else:
        _H_SET_LEASE_STATUS_ANSWER.rowcount(conn,
                                            {"b_lease_id": lease_id, "b_status": status, "b_answer_id": answer_id})


def delete_lease(conn: Connection, lease_id: int) -> None:
    conn.execute(_DELETE_LEASE, {"b_lease_id": lease_id})


def unreserve_item(conn: Connection, item_id: int) -> None:
    _H_UNRESERVE_BY_ID.rowcount(conn, {"b_item_id": item_id})


def count_answer(conn: Connection, item_id: int, *, was_reserved: bool, now: int) -> bool:
    """Add one answer to the item's count. A live lease turns its reservation into the answer;
    a late one (Q7) needs a free slot. Returns False when Q1/Q3 would break."""
    q = _H_COUNT_RESERVED if was_reserved else _H_COUNT_LATE
    return q.rowcount(conn, {"b_item_id": item_id, "b_now": now}) == 1


def insert_answer(conn: Connection, **values: Any) -> dict:
    return dict(conn.execute(_INSERT_ANSWER, values).mappings().one())


def fetch_answer(conn: Connection, answer_id: int) -> dict | None:
    return _H_ANSWER.first(conn, {"b_answer_id": answer_id})


def fetch_answer_by_idempotency_key(conn: Connection, annotator_id: int, key: str) -> dict | None:
    return _H_ANSWER_BY_KEY.first(conn, {"b_annotator_id": annotator_id, "b_key": key})


def fetch_item_answers(conn: Connection, item_id: int) -> list[dict]:
    return _H_ITEM_ANSWERS.all(conn, {"b_item_id": item_id})


def update_item_state(conn: Connection, item_id: int, *, status: str, target_overlap: int, now: int) -> None:
    _H_UPDATE_ITEM_STATE.rowcount(
        conn, {"b_item_id": item_id, "b_status": status, "b_target": target_overlap, "b_now": now}
    )


def lock_lease_by_token(conn: Connection, token_hash: str) -> dict | None:
    """The lease, re-read under a row lock on PostgreSQL (SQLite's write transaction already
    excludes every other writer). Submit, skip and release decide on the lease's status: read
    without the lock, a concurrent reaper, retry or skip could change it before COMMIT, and the
    item's reservation would be handed back twice."""
    q = _H_LEASE_BY_TOKEN_FOR_UPDATE if conn.dialect.name == "postgresql" else _H_LEASE_BY_TOKEN
    return q.first(conn, {"b_token_hash": token_hash})


def fetch_first_answers(conn: Connection, item_id: int, limit: int) -> list[dict]:
    """The item's first ``limit`` answers, oldest first."""
    params = {"b_item_id": item_id, "b_limit": limit}
    return [dict(r) for r in conn.execute(_FIRST_ANSWERS, params).mappings()]
