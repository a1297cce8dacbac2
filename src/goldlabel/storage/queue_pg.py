"""PostgreSQL only: the annotate loop in three statements, each its own transaction.

On PostgreSQL every statement is a network round trip plus parse, bind and executor start-up on
the backend, and a transaction adds BEGIN and COMMIT. So the common cycle runs, on a connection
in autocommit mode (storage.engine ``statement_tx``, or storage.aio on the event loop):

1. :func:`lease`: the reap, the claim and the lease in one statement, not durable (see its
   comment). It also reads what the submit decides on for the claimed item, which the process
   keeps for the submit of that lease (services/queue/merged_submit.py ``remember_reading``).
2. :func:`submit_read`: what the submit decides on, read without locks: the project and the
   caller's role, the lease and its item, the Idempotency-Key check, the item's answers with
   the skills and priors the posterior needs. Skipped when the lease's reading is kept.
3. :func:`submit_write`: the answer, the item's count and new state, the lease, the consensus
   and the outbox events, in one durable statement that first locks the lease and the item and
   re-checks them against the reading. The consensus was computed in Python between the two
   (services/queue/merged_submit.py), from answers the re-check proves current.

Every question kind takes this path: the consensus of each (choice by the posterior, the others
by goldlabel.quality.consensus) is computed per item in Python from what the read holds (the
item's answers, every question's skills and priors). The exceptions (a retry: a used lease or
Idempotency-Key; an expired, skipped or released lease; a late submission; a write that finds the
lease or the item changed; a non-finite confidence) run the generic statements of
storage/queue.py, records.py and quality.py in one transaction under lock
(services/queue/submit.py ``_submit_generic``).

Where each invariant of the work queue (Q1-Q7, ARCHITECTURE.md) is enforced on this path:

- Q1 (at most ``overlap_max`` answers) and Q3 (answers + live leases within it): in the write's
  SQL, on the locked item: ``answer_count < overlap_max``, ``reserved > 0`` and the count, status,
  target and last change the decision read; the caller's lease active, unexpired and under the
  token given, on the locked lease.
- Q2 (one answer per item and annotator): the unique index (``ON CONFLICT DO NOTHING``, as the
  generic insert): nothing written, the generic path answers 409.
- Q4 (2xx only once durable): the write is one statement in its own transaction, committed with
  ``synchronous_commit=on`` before the response.
- Q5 (a retry returns the original), Q6 (an expired lease returns its item) and Q7 (a late answer
  only while Q1-Q3 hold): not here. The read sees a used Idempotency-Key or a lease that is not
  live and hands the submit to the generic path, which decides them in Python under lock
  (``_submit_locked``); a write that finds the lease expired meanwhile does the same.
Statements come back as :class:`~goldlabel.storage.hot.Call` values, so the same SQL runs on
the synchronous driver and on the event loop; ``parse_*`` read their rows.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa

from goldlabel.storage.hot import Call, Hot
from goldlabel.storage.models import MODEL_PREFIX, model_vote_from
from goldlabel.storage.quality import (
    ELIGIBLE_ANNOTATORS_SQL,
    PG_CONSENSUS_RECORD,
    pg_consensus_upsert,
)
from goldlabel.storage.queue import PG_LEASE_TAKEOVER, pg_candidate_cte, pg_reap_ctes
from goldlabel.storage.tables import answers, items, leases, projects

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


def _columns(table: sa.Table, names: tuple[str, ...] | None) -> list[sa.Column]:
    return [c for c in table.c if names is None or c.name in names]


def _select_list(table: sa.Table, alias: str, prefix: str, names: tuple[str, ...] | None = None) -> str:
    return ", ".join(f"{alias}.{c.name} AS {prefix}{c.name}" for c in _columns(table, names))


def _types(table: sa.Table, prefix: str, names: tuple[str, ...] | None = None) -> dict[str, Any]:
    return {f"{prefix}{c.name}": c.type for c in _columns(table, names)}


# What the per-answer posterior of an item needs (services/queue/merged_submit.py ``_submit_plan``): its
# answers oldest first, the stored skills of their annotators and of the caller for every
# question, and the project's models (the priors). ``item_id``: the SQL of the item's id (NULL:
# nothing is read). ``limit``: the SQL of how many of the first answers to read (NULL: all; a
# gold item, answered by everyone it is served to, has its first ones read: what the status an
# annotator is shown is decided on, so that its read costs what a normal item's does).
# Skill and answer values travel as arrays, not JSON, so floats arrive
# exactly as stored (PostgreSQL's float8 -> jsonb keeps 15 significant digits).
def _knowledge_joins(item_id: str, limit: str = "NULL") -> str:
    first = (f"SELECT answers.id, answers.annotator_id, answers.value FROM answers WHERE answers.item_id = {item_id} "
             f"ORDER BY answers.id LIMIT {limit}")
    return f"""
LEFT OUTER JOIN LATERAL (
    SELECT array_agg(fa.annotator_id ORDER BY fa.id) AS _a_annotator,
           array_agg(fa.value ORDER BY fa.id) AS _a_value
    FROM ({first}) AS fa
) AS ia ON true
LEFT OUTER JOIN LATERAL (
    SELECT array_agg(s.annotator_id) AS _s_annotator, array_agg(s.question) AS _s_question,
           array_agg(s.accuracy) AS _s_accuracy, array_agg(s.confusion) AS _s_confusion,
           array_agg(s.n_answers) AS _s_n_answers
    FROM annotator_skills AS s
    WHERE s.project_id = :project_id AND {item_id} IS NOT NULL
      AND (s.annotator_id = :user_id
           OR s.annotator_id IN (SELECT fa.annotator_id FROM ({first}) AS fa))
) AS sk ON true
LEFT OUTER JOIN LATERAL (
    SELECT array_agg(m.question) AS _m_question, array_agg(m.prior) AS _m_prior
    FROM project_models AS m WHERE m.project_id = :project_id AND {item_id} IS NOT NULL
) AS pm ON true
LEFT OUTER JOIN LATERAL (
    SELECT ms.annotator AS _mv_annotator, pv.value AS _mv_value, pv.score AS _mv_score
    FROM model_state AS ms
    JOIN predictions AS pv ON pv.item_id = {item_id} AND left(pv.model_version, {len(MODEL_PREFIX)}) = '{MODEL_PREFIX}'
    WHERE ms.project_id = :project_id AND ms.annotator IS NOT NULL
    LIMIT 1
) AS mv ON true"""


_KNOWLEDGE_COLUMNS = (
    "ia._a_annotator, ia._a_value, sk._s_annotator, sk._s_question, sk._s_accuracy, sk._s_confusion, "
    "sk._s_n_answers, pm._m_question, pm._m_prior, mv._mv_annotator, mv._mv_value, mv._mv_score"
)


def _parse_knowledge(row: dict) -> dict[str, Any]:
    """``answers`` (``{"annotator_id", "value"}`` oldest first), ``skills`` (question ->
    annotator id -> ``{"accuracy", "confusion", "n_answers"}``, as quality.fetch_skills) and
    ``priors`` (question -> the stored model's prior) from a row with _KNOWLEDGE_COLUMNS."""
    skills: dict[str, dict[int, dict]] = {}
    if row["_s_annotator"]:
        for annotator, question, accuracy, confusion, n_answers in zip(
            row["_s_annotator"], row["_s_question"], row["_s_accuracy"], row["_s_confusion"], row["_s_n_answers"],
            strict=True,
        ):
            skills.setdefault(question, {})[annotator] = {
                "accuracy": accuracy, "confusion": confusion, "n_answers": n_answers,
            }
    return {
        "answers": [{"annotator_id": a, "value": v}
                    for a, v in zip(row["_a_annotator"] or (), row["_a_value"] or (), strict=True)],
        "skills": skills,
        "priors": dict(zip(row["_m_question"] or (), row["_m_prior"] or (), strict=True)),
        # the project model's vote as one more annotator (storage/models.py fetch_model_vote)
        "model_vote": model_vote_from(row["_mv_annotator"], row["_mv_value"], row["_mv_score"]),
    }


# The submit's read: project and role (as projects.fetch_project_with_role), the lease and its
# item (as queue.lock_lease_and_item, without the lock), whether the Idempotency-Key already
# names one of the caller's answers, and what the item's posterior needs (_knowledge_joins).
# Not locked: the write re-checks under lock everything the decision was made on. The submit
# skips it when the lease left its own reading of the item (see LEASE).
_SUBMIT_READ = sa.text(_sql(
    f"""
WITH li AS MATERIALIZED (
    SELECT {_select_list(leases, "leases", _L)}, {_select_list(items, "items", _I)}
    FROM leases JOIN items ON items.id = leases.item_id
    WHERE leases.token_hash = :token_hash
)
SELECT {_select_list(projects, "projects", _P)}, project_members.role AS _member_role,
       (SELECT users.auth_version FROM users WHERE users.id = :user_id) AS _auth_version, li.*,
       (SELECT answers.id FROM answers
        WHERE answers.annotator_id = :user_id AND answers.idempotency_key = CAST(:key AS VARCHAR)) AS _key_answer_id,
       {_KNOWLEDGE_COLUMNS}
FROM projects
LEFT OUTER JOIN project_members
    ON project_members.project_id = projects.id AND project_members.user_id = :user_id
LEFT OUTER JOIN li ON true{_knowledge_joins(f"li.{_I}id", f"CASE WHEN li.{_I}is_gold THEN projects.overlap_max END")}
WHERE projects.id = :project_id
"""
)).columns(**_types(projects, _P), **_types(leases, _L), **_types(items, _I))
SUBMIT_READ = Hot(_SUBMIT_READ)


def submit_read(*, project_id: int, user_id: int, token_hash: str, idempotency_key: str | None) -> Call:
    """The submit's read (run it, then :func:`parse_submit_read`)."""
    return Call(SUBMIT_READ, {"project_id": project_id, "user_id": user_id, "token_hash": token_hash,
                              "key": idempotency_key})


def parse_submit_read(rows: list[dict]) -> dict | None:
    """None when the project does not exist. Otherwise ``project``, ``role`` (the caller's member
    role or None), ``lease`` and ``item`` (None when no lease has the token), ``key_seen``
    (whether the Idempotency-Key names one of the caller's answers) and the item's knowledge
    (``answers``, ``skills``, ``priors``: see _parse_knowledge)."""
    if not rows:
        return None
    row = rows[0]
    lease = item = None
    if row[_L + "id"] is not None:
        lease = {c.name: row[_L + c.name] for c in leases.c}
        item = {c.name: row[_I + c.name] for c in items.c}
    return {
        "project": {c.name: row[_P + c.name] for c in projects.c},
        "role": row["_member_role"],
        "auth_version": row["_auth_version"],
        "lease": lease,
        "item": item,
        "key_seen": row["_key_answer_id"] is not None,
        **_parse_knowledge(row),
    }


# The submit's write, one statement that is its own durable transaction: the lease and then the
# item locked (the order the claim and the reaper take them in) and re-checked against what the
# decision was made on (the caller's live active lease, still under the token the caller gave:
# a token rotated away by lease_next is refused; the caller still a member who may
# annotate and the project unchanged since it was read; the item's count, status, target and
# last change unchanged, so the consensus computed from the read's answers is the item's), the
# answer inserted (nothing on a unique conflict: Q2 or the Idempotency-Key), and only for an
# inserted answer: the item counted with its new state in one UPDATE, the lease marked
# submitted, the consensus rows replaced (rows of questions no longer answered deleted, as
# records.replace_consensus; reviewed rows kept) and the outbox events inserted in list order, the last one
# answer.created with the new answer's id. No row back: nothing was written, and the caller
# reads again or runs the generic submit, which decides under lock. The lease is found by its
# primary key alone (its other conditions are checked on the locked row): with them in the
# WHERE clause the planner took the annotator's index, whose entries for submitted leases pile
# up between vacuums. The answer's schema_version comes from the project row as li checked it
# (same snapshot, same updated_at): the version the answer was validated against. A gold
# answer (``is_gold``, re-checked on the item) takes the same statement, consensus rows
# included (the crowd's on the gold item: services/consensus.py gold_decision), and is also
# queued for scoring in gold_pending (services/gold.py; its columns in table order, which keeps
# the statement within psycopg's cached length).
# The caller's auth version (services.access: revocation at once): NULL (as -1; versions start at
# 0) is not checked, else it must be the user's current one. No SQL comment in these statements:
# _sql puts each on one line.
_SUBMIT_WRITE = f"""
WITH ll AS MATERIALIZED (
    SELECT id, token_hash, annotator_id, status, expires_at, CAST(:is_gold AS BOOLEAN) AS g FROM leases
    WHERE id = :lease_id
    FOR UPDATE
), li AS MATERIALIZED (
    SELECT items.id FROM items JOIN ll ON ll.token_hash = :token_hash AND ll.annotator_id = :annotator_id
                                      AND ll.status = 'active' AND ll.expires_at > :now
    WHERE items.id = :item_id AND items.status = CAST(:was_status AS VARCHAR)
      AND items.answer_count = :was_count AND items.target_overlap = :was_target
      AND items.updated_at = :was_updated_at AND items.is_gold = ll.g
      AND items.answer_count < items.overlap_max AND items.reserved > 0
      AND EXISTS (
          SELECT 1 FROM projects
          LEFT JOIN project_members
              ON project_members.project_id = projects.id AND project_members.user_id = :annotator_id
          WHERE projects.id = :project_id AND projects.updated_at = :project_updated_at
            AND (CAST(:is_admin AS BOOLEAN) OR project_members.role = ANY(CAST(:roles AS VARCHAR[]))))
      AND COALESCE(CAST(:auth_version AS INTEGER), -1)
          IN (-1, (SELECT auth_version FROM users WHERE id = :annotator_id))
    FOR UPDATE OF items
), ins AS (
    INSERT INTO answers (project_id, item_id, annotator_id, lease_id, value, status, duration_ms,
                         idempotency_key, created_at, updated_at, schema_version)
    SELECT CAST(:project_id AS BIGINT), li.id, CAST(:annotator_id AS BIGINT), CAST(:lease_id AS BIGINT),
           CAST(:value AS JSONB), 'submitted', CAST(:duration_ms AS INTEGER), CAST(:key AS VARCHAR),
           CAST(:now AS BIGINT), CAST(:now AS BIGINT),
           (SELECT schema_version FROM projects WHERE id = :project_id)
    FROM li
    ON CONFLICT DO NOTHING
    RETURNING *
), counted AS (
    UPDATE items SET answer_count = items.answer_count + 1, reserved = items.reserved - 1,
                     status = CAST(:status AS VARCHAR), target_overlap = CAST(:target AS INTEGER),
                     updated_at = CAST(:now AS BIGINT)
    FROM ins WHERE items.id = ins.item_id
    RETURNING items.id
), marked AS (
    UPDATE leases SET status = 'submitted', answer_id = ins.id FROM ins
    WHERE leases.id = ins.lease_id
    RETURNING leases.id
), new_rows AS (
    SELECT r.* FROM jsonb_to_recordset(CAST(:rows AS JSONB)) AS r({PG_CONSENSUS_RECORD})
    WHERE EXISTS (SELECT 1 FROM ins)
), dropped AS (
    DELETE FROM consensus
    WHERE consensus.item_id = :item_id AND EXISTS (SELECT 1 FROM ins)
      AND consensus.question NOT IN (SELECT question FROM new_rows) AND consensus.source = 'consensus'
    RETURNING 1
), upserted AS (
    {pg_consensus_upsert("CAST(:item_id AS BIGINT)", "new_rows")}
    RETURNING 1
), gp AS (
    INSERT INTO gold_pending SELECT ins.id, ins.project_id, ins.created_at FROM ins, ll WHERE ll.g
), evts AS (
    INSERT INTO events (project_id, kind, payload, created_at)
    SELECT CAST(:project_id AS BIGINT), e.kind, e.payload, CAST(:now AS BIGINT)
    FROM ins CROSS JOIN LATERAL (VALUES {{events}}) AS e(ord, kind, payload)
    ORDER BY e.ord
    RETURNING 1
)
SELECT ins.*, (SELECT count(*) FROM counted) AS _n_counted, (SELECT count(*) FROM marked) AS _n_marked,
       (SELECT count(*) FROM upserted) AS _n_consensus
FROM ins
"""
_ANSWER_CREATED = (
    "'answer.created', jsonb_build_object('answer_id', ins.id, 'item_id', ins.item_id, "
    "'annotator_id', ins.annotator_id)"
)
_SUBMIT_WRITES: dict[int, Hot] = {}


def _submit_write(n_item_events: int) -> Hot:
    """The write statement with ``n_item_events`` events before answer.created."""
    h = _SUBMIT_WRITES.get(n_item_events)
    if h is None:
        values = [f"({i}, CAST(:e{i}_kind AS VARCHAR), CAST(:e{i}_payload AS JSONB))" for i in range(n_item_events)]
        values.append(f"({n_item_events}, {_ANSWER_CREATED})")
        stmt = sa.text(_sql(_SUBMIT_WRITE.format(events=", ".join(values)))).columns(
            **{c.name: c.type for c in answers.c}
        )
        h = _SUBMIT_WRITES[n_item_events] = Hot(stmt)
    return h


def submit_write(
    *, project: dict, lease: dict, item: dict, annotator_id: int, is_admin: bool, roles: list[str], value: Any,
    duration_ms: int | None, idempotency_key: str | None, now: int, status: str, target: int, rows: list[dict],
    item_events: list[dict], auth_version: int | None = None, is_gold: bool = False,
) -> Call:
    """The write statement (``project``: its id and updated_at as read; ``is_admin`` and
    ``roles``, the member roles that may annotate, re-check the caller's right): ``lease`` and
    ``item`` as the read returned them (the write re-checks them), the item's new ``status`` and
    ``target``, its consensus
    ``rows`` (each with its status; JSON-safe: see quality.json_safe), and ``item_events``
    (``{"kind", "payload"}``) to insert before answer.created; ``auth_version``: the caller's
    auth version their actor was verified at (re-checked; None: not checked). ``is_gold``: the
    item is a gold item (re-checked): the answer is also queued for scoring (``gold_pending``);
    ``status`` and ``target`` are then the item's own. Run with :func:`parse_submit_write`."""
    params: dict[str, Any] = {
        "project_id": project["id"], "project_updated_at": project["updated_at"], "is_admin": is_admin,
        "roles": roles, "auth_version": auth_version, "lease_id": lease["id"], "token_hash": lease["token_hash"],
        "item_id": item["id"],
        "annotator_id": annotator_id,
        "was_status": item["status"], "was_count": item["answer_count"], "was_target": item["target_overlap"],
        "was_updated_at": item["updated_at"], "value": _dumps(value), "duration_ms": duration_ms,
        "key": idempotency_key, "now": now, "status": status, "target": target, "is_gold": is_gold,
        "rows": _dumps([{"agreement": None, **r} for r in rows]),
    }
    for i, e in enumerate(item_events):
        params[f"e{i}_kind"] = e["kind"]
        params[f"e{i}_payload"] = _dumps(e["payload"])
    return Call(_submit_write(len(item_events)), params)


def parse_submit_write(rows: list[dict]) -> dict | None:
    """The inserted answer, or None when the write changed nothing."""
    if not rows:
        return None
    row = rows[0]
    assert row["_n_counted"] == 1 and row["_n_marked"] == 1, row
    return {c.name: row[c.name] for c in answers.c}


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
# (services/queue/lease.py). Reaped items are not claimed by the same statement (PostgreSQL cannot
# update one row twice in a statement): a claim that finds nothing after a reap is run again.
# The lease row is written before the reservation, and the reservation only for a written
# lease: a lease row that conflicts with a live one (a concurrent lease of the same user that
# committed after this statement's snapshot) then claims nothing, where queue.claim_next_pg
# has to fail its transaction to give the reservation back. The candidate row is locked and
# re-checked (FOR UPDATE), so its reservation cannot fail once the lease is written.
# What the lease reads of the project (enough to authorize, decide, and let the submit decide
# without reading it again) and of the claimed item's state.
_LEASE_PROJECT_COLUMNS = ("id", "label_schema", "overlap_min", "lease_ttl_s", "settings", "updated_at")
_LEASE_ITEM_STATE = ("status", "is_gold", "answer_count", "target_overlap", "overlap_max", "updated_at")
_ONLY_IF_ALLOWED = "\n      AND EXISTS (SELECT 1 FROM allowed)"
_NOT_REAPED_AND_MAY_CLAIM = (
    "\n      AND items.id NOT IN (SELECT item_id FROM reaped)\n      AND EXISTS (SELECT 1 FROM may_claim)"
)
_LEASE = sa.text(_sql(
    f"""
WITH p AS (
    SELECT {_select_list(projects, "projects", _P, _LEASE_PROJECT_COLUMNS)}, project_members.role AS _member_role,
           annotator_stats.status AS _standing_status, annotator_stats.n_gold AS _standing_n_gold,
           (SELECT users.auth_version FROM users WHERE users.id = :user_id) AS _auth_version,
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
      AND (CAST(:auth_version AS INTEGER) IS NULL OR p._auth_version = CAST(:auth_version AS INTEGER))
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
    RETURNING {", ".join(f"items.{name}" for name in ("id", "data", *_LEASE_ITEM_STATE))}
)
SELECT p.*, (SELECT count(*) FROM active) AS _n_active, (SELECT count(*) FROM reaped) AS _n_reaped,
       ins.*, res.data AS _item_data, {", ".join(f"res.{name} AS {_I}{name}" for name in _LEASE_ITEM_STATE)},
       pr._pr_value, pr._pr_score, pr._pr_model_version, {_KNOWLEDGE_COLUMNS}
FROM p LEFT OUTER JOIN (ins JOIN res ON res.id = ins.{_L}item_id) ON true{_knowledge_joins("res.id")}
LEFT OUTER JOIN LATERAL (
    SELECT array_agg(predictions.value ORDER BY predictions.id) AS _pr_value,
           array_agg(predictions.score ORDER BY predictions.id) AS _pr_score,
           array_agg(predictions.model_version ORDER BY predictions.id) AS _pr_model_version
    FROM predictions
    WHERE predictions.item_id = res.id AND coalesce(CAST(p.{_P}settings ->> 'show_predictions' AS BOOLEAN), false)
) AS pr ON true
"""
)).columns(**_types(projects, _P, _LEASE_PROJECT_COLUMNS), **_types(leases, _L),
             **_types(items, _I, _LEASE_ITEM_STATE), _item_data=items.c.data.type)
LEASE = Hot(_LEASE)


def lease(
    *, project_id: int, user_id: int, is_admin: bool, roles: list[str], token_hash: str, now: int,
    default_max_leases: int, auth_version: int | None = None,
) -> Call:
    """The lease statement (run it, then :func:`parse_lease`). ``roles``: the member roles that
    may annotate; ``auth_version``: the one the caller's actor was verified at (a different one
    claims nothing; None: not checked)."""
    return Call(LEASE, {
        "project_id": project_id, "user_id": user_id, "is_admin": is_admin, "roles": roles,
        "auth_version": auth_version,
        "token_hash": token_hash, "now": now, "default_max_leases": default_max_leases,
    })


def parse_lease(rows: list[dict]) -> dict | None:
    """None when the project does not exist. Otherwise a dict with ``project`` (the columns of
    _LEASE_PROJECT_COLUMNS), ``role`` (the user's member role or None), ``standing``
    (``{"status", "n_gold"}`` or None), ``n_active`` (live leases the user held before this
    call), ``n_reaped`` (leases of the project expired
    by this call), and ``lease``, ``item_data`` and ``predictions`` (None when nothing was
    claimed; predictions also when the project does not show them, else ``{"value", "score",
    "model_version"}`` oldest first), ``item`` (the claimed item's id and the state of
    _LEASE_ITEM_STATE after the reservation, or None) and its knowledge (``answers``,
    ``skills``, ``priors``: see _parse_knowledge)."""
    if not rows:
        return None
    row = rows[0]
    status = row["_standing_status"]
    claimed = row[_L + "id"] is not None
    project = {name: row[_P + name] for name in _LEASE_PROJECT_COLUMNS}
    predictions = None
    if claimed and project["settings"].get("show_predictions"):
        predictions = [
            {"value": v, "score": s, "model_version": m}
            for v, s, m in zip(row["_pr_value"] or (), row["_pr_score"] or (), row["_pr_model_version"] or (),
                               strict=True)
        ]
    return {
        "project": project,
        "role": row["_member_role"],
        "auth_version": row["_auth_version"],
        "standing": None if status is None else {"status": status, "n_gold": row["_standing_n_gold"]},
        "n_active": row["_n_active"],
        "n_reaped": row["_n_reaped"],
        "lease": {c.name: row[_L + c.name] for c in leases.c} if claimed else None,
        "item_data": row["_item_data"],
        "predictions": predictions,
        # The claimed item as the lease left it, and its knowledge: what the submit's read would
        # return for it (services/queue/merged_submit.py keeps it for the submit).
        "item": {"id": row[_L + "item_id"], **{name: row[_I + name] for name in _LEASE_ITEM_STATE}}
        if claimed else None,
        **_parse_knowledge(row),
    }


# The project's pooled knowledge of unknown annotators (services/cold_start.py): its newest
# answers to live items (as quality.is_live_item) and its annotators' gold totals, for the merged
# submit when that knowledge is due (about once per 200 answers of a process; every answer while a
# project has under 20).
# Always one row at least (the totals), with NULL answer columns when there are no answers.
_POOLED_SAMPLE = sa.text(_sql(
    f"""
SELECT r.item_id, r.value, g.n_gold, g.n_gold_correct, ({ELIGIBLE_ANNOTATORS_SQL}) AS n_eligible
FROM (SELECT CAST(coalesce(sum(s.n_gold), 0) AS BIGINT) AS n_gold,
             CAST(coalesce(sum(s.n_gold_correct), 0) AS BIGINT) AS n_gold_correct
      FROM annotator_stats AS s WHERE s.project_id = :project_id) AS g
LEFT OUTER JOIN LATERAL (
    SELECT answers.item_id, answers.value FROM answers WHERE answers.project_id = :project_id
      AND answers.item_id NOT IN (SELECT items.id FROM items
                                  WHERE items.deleted_at IS NOT NULL AND items.project_id = :project_id)
    ORDER BY answers.id DESC LIMIT :limit
) AS r ON true
"""
)).columns(item_id=answers.c.item_id.type, value=answers.c.value.type, n_gold=sa.BigInteger,
           n_gold_correct=sa.BigInteger, n_eligible=sa.BigInteger)
POOLED_SAMPLE = Hot(_POOLED_SAMPLE)


def pooled_sample(*, project_id: int, limit: int) -> Call:
    """The pooled-knowledge read (run it, then :func:`parse_pooled_sample`)."""
    return Call(POOLED_SAMPLE, {"project_id": project_id, "limit": limit})


def parse_pooled_sample(rows: list[dict]) -> tuple[list[tuple[int, dict]], int, int, int]:
    """((item_id, value) newest first, gold answers scored, of which correct, eligible annotators:
    members with the annotator role not suspended)."""
    if not rows:
        return [], 0, 0, 0
    return ([(r["item_id"], r["value"]) for r in rows if r["item_id"] is not None],
            int(rows[0]["n_gold"]), int(rows[0]["n_gold_correct"]), int(rows[0]["n_eligible"]))
