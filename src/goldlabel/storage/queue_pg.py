"""PostgreSQL only: the annotate loop's lease in one statement, its submit in three.

On PostgreSQL every statement is a network round trip plus parse/bind/execute on the backend,
so the common submit (a live lease, a normal item, choice questions only) merges its steps
(services/queue.py ``submit_answer``; every other case runs the generic statements of
storage/queue.py, records.py and quality.py):

1. :func:`load_for_submit`: the project and the caller's role (as
   ``projects.fetch_project_with_role``), the lease and its item locked (as
   ``queue.lock_lease_and_item``: lease row first, then the item row, the order the claim and
   the reaper take them in), and whether the Idempotency-Key already names an answer.
2. :func:`count_insert_fetch`: the count (``queue.count_answer`` for a live lease), the answer
   (``queue.insert_answer_unique``), the lease marked submitted (``queue.set_lease_status``) and
   the item's answers with the answering annotators' skills and the question's prior
   (``quality.fetch_item_answers_with_skills``), as data-modifying CTEs. Every part of a WITH
   statement sees the same snapshot, so the item's answers are the snapshot's rows plus the row
   the INSERT returns.
3. :func:`write_after_answer`: the consensus rows (upserted per question, rows of questions no
   longer answered deleted: the table ends as ``records.replace_consensus`` leaves it), the
   item's new state (``queue.update_item_state``) and the outbox events (``records.insert_events``,
   in list order).

The lease is :func:`lease`: one statement that is its own transaction (see its comment).
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldlabel.storage.hot import Hot
from goldlabel.storage.quality import PG_CONSENSUS_RECORD, json_safe, pg_consensus_upsert
from goldlabel.storage.queue import PG_LEASE_TAKEOVER, pg_candidate_cte, pg_reap_ctes
from goldlabel.storage.tables import Json, answers, items, leases, projects

_P, _L, _I = "p__", "l__", "i__"


def _dumps(obj: Any) -> str:
    """JSON as the engine's json_serializer writes it (storage/engine.py)."""
    return orjson.dumps(obj).decode()


def _sql(text: str) -> str:
    """The statement on one line, runs of whitespace made single spaces: psycopg keeps the
    conversion of a statement's placeholders only for statements of at most 4096 characters
    (psycopg._queries.MAX_CACHED_STATEMENT_LENGTH); a longer one is parsed again on every
    execution (0.2 ms of the lease, as written over 4151 characters). No string literal here
    holds two spaces in a row."""
    return " ".join(text.split())


def _select_list(table: sa.Table, alias: str, prefix: str) -> str:
    return ", ".join(f"{alias}.{c.name} AS {prefix}{c.name}" for c in table.c)


def _types(table: sa.Table, prefix: str) -> dict[str, Any]:
    return {f"{prefix}{c.name}": c.type for c in table.c}


# 1. Project + role + locked lease and item + "does this Idempotency-Key name an answer?".
# The lease/item SELECT is lock_lease_and_item's, FOR UPDATE (rows locked lease first, then
# item: range-table order), materialized so it runs as written.
_LOAD_FOR_SUBMIT = sa.text(_sql(
    f"""
WITH li AS MATERIALIZED (
    SELECT {_select_list(leases, "leases", _L)}, {_select_list(items, "items", _I)}
    FROM leases JOIN items ON items.id = leases.item_id
    WHERE leases.token_hash = :token_hash
    FOR UPDATE
)
SELECT {_select_list(projects, "projects", _P)}, project_members.role AS _member_role, li.*,
       (SELECT answers.id FROM answers
        WHERE answers.annotator_id = :user_id AND answers.idempotency_key = CAST(:key AS VARCHAR)) AS _key_answer_id
FROM projects
LEFT OUTER JOIN project_members
    ON project_members.project_id = projects.id AND project_members.user_id = :user_id
LEFT OUTER JOIN li ON true
WHERE projects.id = :project_id
"""
)).columns(**_types(projects, _P), **_types(leases, _L), **_types(items, _I))
_H_LOAD_FOR_SUBMIT = Hot(_LOAD_FOR_SUBMIT)


def load_for_submit(
    conn: Connection, project_id: int, user_id: int, token_hash: str, idempotency_key: str | None
) -> tuple[dict | None, str | None, dict | None, dict | None, bool]:
    """(project or None, user's member role or None, lease or None, its item or None, whether
    ``idempotency_key`` already names one of the user's answers). The lease and item rows are
    locked until COMMIT."""
    row = _H_LOAD_FOR_SUBMIT.first(
        conn, {"project_id": project_id, "user_id": user_id, "token_hash": token_hash, "key": idempotency_key}
    )
    if row is None:
        return None, None, None, None, False
    project = {c.name: row[_P + c.name] for c in projects.c}
    lease = item = None
    if row[_L + "id"] is not None:
        lease = {c.name: row[_L + c.name] for c in leases.c}
        item = {c.name: row[_I + c.name] for c in items.c}
    return project, row["_member_role"], lease, item, row["_key_answer_id"] is not None


# 2. Count (live lease: the reservation becomes the answer), insert, mark the lease submitted,
# and read the item's answers (the snapshot's plus the inserted one) with skills and prior.
# Always one row at least: n_counted says whether the count was taken; no answer rows with a
# count taken means the INSERT hit a unique index (Q2 / Idempotency-Key).
_ANSWER_COLS = [c.name for c in answers.c]
_COUNT_INSERT_FETCH = sa.text(_sql(
    f"""
WITH counted AS (
    UPDATE items SET answer_count = items.answer_count + 1, reserved = items.reserved - 1,
                     updated_at = CAST(:now AS BIGINT)
    WHERE items.id = :item_id AND items.answer_count < items.overlap_max
    RETURNING items.id
), ins AS (
    INSERT INTO answers (project_id, item_id, annotator_id, lease_id, value, status, duration_ms,
                         idempotency_key, created_at, updated_at)
    SELECT CAST(:project_id AS BIGINT), counted.id, CAST(:annotator_id AS BIGINT), CAST(:lease_id AS BIGINT),
           CAST(:value AS JSONB), 'submitted', CAST(:duration_ms AS INTEGER), CAST(:key AS VARCHAR),
           CAST(:now AS BIGINT), CAST(:now AS BIGINT)
    FROM counted
    ON CONFLICT DO NOTHING
    RETURNING {", ".join(f"answers.{c}" for c in _ANSWER_COLS)}
), marked AS (
    UPDATE leases SET status = 'submitted', answer_id = ins.id FROM ins
    WHERE leases.id = :lease_id
    RETURNING leases.id
), item_answers AS (
    SELECT ins.*, true AS _new FROM ins
    UNION ALL
    SELECT {", ".join(f"answers.{c}" for c in _ANSWER_COLS)}, false AS _new FROM answers
    WHERE answers.item_id = :item_id AND EXISTS (SELECT 1 FROM ins)
)
SELECT (SELECT count(*) FROM counted) AS _n_counted, (SELECT count(*) FROM marked) AS _n_marked,
       item_answers.*,
       s.annotator_id AS _s_annotator_id, s.accuracy AS _s_accuracy, s.confusion AS _s_confusion,
       s.n_answers AS _s_n_answers,
       (SELECT project_models.prior FROM project_models
        WHERE project_models.project_id = :project_id AND project_models.question = :question) AS _m_prior
FROM (SELECT 1) AS one
LEFT OUTER JOIN (
    item_answers LEFT OUTER JOIN annotator_skills AS s
        ON s.project_id = :project_id AND s.annotator_id = item_answers.annotator_id AND s.question = :question
) ON true
ORDER BY item_answers.id
"""
)).columns(**{c.name: c.type for c in answers.c}, _s_confusion=Json, _m_prior=Json)
_H_COUNT_INSERT_FETCH = Hot(_COUNT_INSERT_FETCH)


def count_insert_fetch(
    conn: Connection, *, project_id: int, item_id: int, annotator_id: int, lease_id: int, value: Any,
    duration_ms: int | None, idempotency_key: str | None, now: int, question: str,
) -> tuple[bool, dict | None, list[dict], dict[int, dict], dict]:
    """(counted, the inserted answer or None, the item's answers oldest first, skill rows of
    their annotators for ``question``, the question's model ``{"prior": ...}``). Counted with
    no answer: the answer was refused by a unique index; the caller must fail the transaction
    (the count is then rolled back)."""
    rows = _H_COUNT_INSERT_FETCH.all(conn, {
        "project_id": project_id, "item_id": item_id, "annotator_id": annotator_id, "lease_id": lease_id,
        "value": _dumps(value), "duration_ms": duration_ms, "key": idempotency_key, "now": now,
        "question": question,
    })
    counted = rows[0]["_n_counted"] == 1
    if not counted or rows[0]["id"] is None:
        return counted, None, [], {}, {"prior": None}
    answer = None
    item_answers: list[dict] = []
    skills: dict[int, dict] = {}
    model: dict = {"prior": rows[0]["_m_prior"]}
    for row in rows:
        a = {c: row[c] for c in _ANSWER_COLS}
        if row["_new"]:
            answer = a
        if row["_s_annotator_id"] is not None:
            skills[row["_s_annotator_id"]] = {
                "accuracy": row["_s_accuracy"], "confusion": row["_s_confusion"], "n_answers": row["_s_n_answers"],
            }
        item_answers.append(a)
    assert answer is not None and rows[0]["_n_marked"] == 1
    return True, answer, item_answers, skills, model


# 3. Consensus rows, item state, outbox events. Events are one multi-row VALUES (ids in list
# order); one statement per number of events.
_CONSENSUS_AND_STATE = f"""
WITH new_rows AS (
    SELECT * FROM jsonb_to_recordset(CAST(:rows AS JSONB)) AS r({PG_CONSENSUS_RECORD})
), dropped AS (
    DELETE FROM consensus
    WHERE consensus.item_id = :item_id AND consensus.question NOT IN (SELECT question FROM new_rows)
    RETURNING 1
), upserted AS (
    {pg_consensus_upsert("CAST(:item_id AS BIGINT)", "new_rows")}
    RETURNING 1
), state AS (
    UPDATE items SET status = CAST(:status AS VARCHAR), target_overlap = CAST(:target AS INTEGER),
                     updated_at = CAST(:now AS BIGINT)
    WHERE items.id = :item_id AND CAST(:set_state AS BOOLEAN)
    RETURNING 1
){{events}}
SELECT (SELECT count(*) FROM upserted) AS n_consensus
"""


def _events_sql(n: int) -> str:
    if n == 0:
        return ""
    values = ", ".join(
        f"(CAST(:e{i}_project_id AS BIGINT), CAST(:e{i}_kind AS VARCHAR), CAST(:e{i}_payload AS JSONB), "
        f"CAST(:e{i}_created_at AS BIGINT))"
        for i in range(n)
    )
    return f""", evts AS (
    INSERT INTO events (project_id, kind, payload, created_at) VALUES {values}
    RETURNING 1
)"""


_H_WRITE_AFTER_ANSWER: dict[int, Hot] = {}


def _write_stmt(n_events: int) -> Hot:
    h = _H_WRITE_AFTER_ANSWER.get(n_events)
    if h is None:
        h = _H_WRITE_AFTER_ANSWER[n_events] = Hot(sa.text(_sql(_CONSENSUS_AND_STATE.format(events=_events_sql(n_events)))))
    return h


def write_after_answer(
    conn: Connection, *, item_id: int, project_id: int, rows: list[dict], state: tuple[str, int] | None,
    events: list[dict], now: int,
) -> bool:
    """Replace the item's consensus with ``rows`` (each with its status), set the item's
    (status, target_overlap) when ``state`` is given, insert ``events``. False (nothing
    written) when a value cannot travel as JSON (a non-finite confidence): the caller then
    writes with the generic statements."""
    if not json_safe(rows):
        return False
    params: dict[str, Any] = {
        "item_id": item_id, "project_id": project_id, "now": now,
        "rows": _dumps([{"agreement": None, **r} for r in rows]),
        "set_state": state is not None,
        "status": state[0] if state else None, "target": state[1] if state else None,
    }
    for i, e in enumerate(events):
        params[f"e{i}_project_id"] = e["project_id"]
        params[f"e{i}_kind"] = e["kind"]
        params[f"e{i}_payload"] = _dumps(e["payload"])
        params[f"e{i}_created_at"] = e["created_at"]
    _write_stmt(len(events)).all(conn, params)
    return True


# The lease: project, role and standing (as projects.fetch_project_role_standing), the reap of
# expired leases (Q6, as queue.reap_and_fetch_active_leases), the caller's live leases, and the
# claim of the head of the queue (as queue.claim_next_pg), in one statement, so that a
# connection in autocommit mode runs the whole lease as one transaction in one round trip
# (instead of BEGIN, SET LOCAL, three statements and COMMIT). The lease is not durable (see
# storage.engine.write_tx): set_config(..., true) turns synchronous_commit off for this
# statement's own transaction. The claim happens only when lease_next would claim the head of
# the normal queue itself: the caller may annotate (any member role; an admin), is not
# suspended, the project has no gold stream, and the caller holds fewer live leases than the
# project allows. Every other case claims nothing and returns what lease_next needs to decide
# (services/queue.py). Reaped items are not claimed by the same statement (PostgreSQL cannot
# update one row twice in a statement): a claim that finds nothing after a reap is run again.
# The lease row is written before the reservation, and the reservation only for a written
# lease: a lease row that conflicts with a live one (a concurrent lease of the same user that
# committed after this statement's snapshot) then claims nothing, where queue.claim_next_pg
# has to fail its transaction to give the reservation back. The candidate row is locked and
# re-checked (FOR UPDATE), so its reservation cannot fail once the lease is written.
_ONLY_IF_ALLOWED = "\n      AND EXISTS (SELECT 1 FROM allowed)"
_NOT_REAPED_AND_MAY_CLAIM = (
    "\n      AND items.id NOT IN (SELECT item_id FROM reaped)\n      AND EXISTS (SELECT 1 FROM may_claim)"
)
_LEASE = sa.text(_sql(
    f"""
WITH p AS (
    SELECT {_select_list(projects, "projects", _P)}, project_members.role AS _member_role,
           annotator_stats.status AS _standing_status, annotator_stats.n_gold AS _standing_n_gold,
           set_config('synchronous_commit', 'off', true) AS _sync_off
    FROM projects
    LEFT OUTER JOIN project_members
        ON project_members.project_id = projects.id AND project_members.user_id = :user_id
    LEFT OUTER JOIN annotator_stats
        ON annotator_stats.project_id = projects.id AND annotator_stats.annotator_id = :user_id
    WHERE projects.id = :project_id
), allowed AS (
    SELECT 1 FROM p
    WHERE (CAST(:is_admin AS BOOLEAN) OR p._member_role = ANY(CAST(:roles AS VARCHAR[])))
      AND p._standing_status IS DISTINCT FROM 'suspended'
), {pg_reap_ctes(_ONLY_IF_ALLOWED)}, active AS (
    SELECT leases.id FROM leases
    WHERE leases.annotator_id = :user_id AND leases.project_id = :project_id
      AND leases.status = 'active' AND leases.expires_at > :now
), may_claim AS (
    SELECT p.{_P}lease_ttl_s AS ttl_s FROM p
    WHERE EXISTS (SELECT 1 FROM allowed)
      AND coalesce(CAST(p.{_P}settings ->> 'gold_rate' AS DOUBLE PRECISION), 0) <= 0
      AND coalesce(CAST(p.{_P}settings ->> 'qualification_gold' AS INTEGER), 0) <= 0
      AND (SELECT count(*) FROM active)
          < coalesce(CAST(p.{_P}settings ->> 'max_leases_per_annotator' AS INTEGER), :default_max_leases)
), {pg_candidate_cte(":user_id", _NOT_REAPED_AND_MAY_CLAIM)}, ins AS (
    INSERT INTO leases (project_id, item_id, annotator_id, token_hash, status, created_at, expires_at)
    SELECT CAST(:project_id AS BIGINT), cand.id, CAST(:user_id AS BIGINT), CAST(:token_hash AS VARCHAR), 'active',
           CAST(:now AS BIGINT), CAST(:now AS BIGINT) + may_claim.ttl_s * 1000
    FROM cand, may_claim
    {PG_LEASE_TAKEOVER}
    RETURNING {", ".join(f"leases.{c.name} AS {_L}{c.name}" for c in leases.c)}
), res AS (
    UPDATE items SET reserved = items.reserved + 1 FROM ins
    WHERE items.id = ins.{_L}item_id
    RETURNING items.id, items.data
)
SELECT p.*, (SELECT count(*) FROM active) AS _n_active, (SELECT count(*) FROM reaped) AS _n_reaped,
       ins.*, res.data AS _item_data
FROM p LEFT OUTER JOIN (ins JOIN res ON res.id = ins.{_L}item_id) ON true
"""
)).columns(**_types(projects, _P), **_types(leases, _L), _item_data=items.c.data.type)
_H_LEASE = Hot(_LEASE)


def lease(
    conn: Connection, *, project_id: int, user_id: int, is_admin: bool, roles: list[str], token_hash: str, now: int,
    default_max_leases: int,
) -> dict | None:
    """Run the lease statement; None when the project does not exist. Otherwise a dict with
    ``project``, ``role`` (the user's member role or None), ``standing`` (``{"status",
    "n_gold"}`` or None), ``n_active`` (live leases the user held before this call), ``n_reaped``
    (leases of the project expired by this call), and ``lease`` and ``item_data`` (None when
    nothing was claimed). ``roles``: the member roles that may annotate."""
    row = _H_LEASE.first(conn, {
        "project_id": project_id, "user_id": user_id, "is_admin": is_admin, "roles": roles,
        "token_hash": token_hash, "now": now, "default_max_leases": default_max_leases,
    })
    if row is None:
        return None
    status = row["_standing_status"]
    return {
        "project": {c.name: row[_P + c.name] for c in projects.c},
        "role": row["_member_role"],
        "standing": None if status is None else {"status": status, "n_gold": row["_standing_n_gold"]},
        "n_active": row["_n_active"],
        "n_reaped": row["_n_reaped"],
        "lease": {c.name: row[_L + c.name] for c in leases.c} if row[_L + "id"] is not None else None,
        "item_data": row["_item_data"],
    }
