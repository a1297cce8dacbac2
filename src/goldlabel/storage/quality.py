"""Quality-engine state: annotator stats and skills, project models, reviews, bulk consensus."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, cast

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from goldlabel.storage.hot import Hot
from goldlabel.storage.tables import (
    annotator_skills,
    annotator_stats,
    answers,
    consensus,
    gold_answers,
    gold_pending,
    items,
    project_models,
    reviews,
    users,
)

# Run on every lease or answer: built once, with bind parameters (see storage/queue.py).
_STATS = sa.select(annotator_stats).where(
    annotator_stats.c.project_id == sa.bindparam("b_project_id"),
    annotator_stats.c.annotator_id == sa.bindparam("b_annotator_id"),
)
_SKILLS = sa.select(annotator_skills).where(
    annotator_skills.c.project_id == sa.bindparam("b_project_id"),
    annotator_skills.c.question == sa.bindparam("b_question"),
    annotator_skills.c.annotator_id.in_(sa.bindparam("b_annotator_ids", expanding=True)),
)
_MODEL = sa.select(project_models).where(
    project_models.c.project_id == sa.bindparam("b_project_id"), project_models.c.question == sa.bindparam("b_question")
)
_INSERT_MODEL_OR_NOTHING = {
    name: d.insert(project_models).on_conflict_do_nothing().returning(project_models.c.project_id)
    for name, d in (("sqlite", sqlite), ("postgresql", postgresql))
}


_S = annotator_skills.alias("s")
_ANSWERS_WITH_SKILL = (
    sa.select(
        answers,
        _S.c.annotator_id.label("_s_annotator_id"),
        _S.c.accuracy.label("_s_accuracy"),
        _S.c.confusion.label("_s_confusion"),
        _S.c.n_answers.label("_s_n_answers"),
        sa.select(project_models.c.prior)
        .where(project_models.c.project_id == sa.bindparam("b_project_id"),
               project_models.c.question == sa.bindparam("b_question"))
        .scalar_subquery()
        .label("_m_prior"),
    )
    .outerjoin(
        _S,
        sa.and_(_S.c.project_id == sa.bindparam("b_project_id"), _S.c.annotator_id == answers.c.annotator_id,
                _S.c.question == sa.bindparam("b_question")),
    )
    .where(answers.c.item_id == sa.bindparam("b_item_id"))
    .order_by(answers.c.id)
)
_H_ANSWERS_WITH_SKILL = Hot(_ANSWERS_WITH_SKILL)
_H_FIRST_ANSWERS_WITH_SKILL = Hot(_ANSWERS_WITH_SKILL.limit(sa.bindparam("b_limit", type_=sa.Integer)))


def fetch_item_answers_with_skills(
    conn: Connection, project_id: int, item_id: int, question: str, limit: int | None = None
) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]], dict[str, Any]]:
    """The item's answers (oldest first, as queue.fetch_item_answers; ``limit``: the first
    ones only), the answering annotators' skill rows for ``question`` (as fetch_skills:
    accuracy, confusion, n_answers) and the question's model (as fetch_model: prior), in one
    statement instead of three."""
    rows: list[dict[str, Any]] = []
    skills: dict[int, dict[str, Any]] = {}
    model: dict[str, Any] = {"prior": None}
    params: dict[str, Any] = {"b_project_id": project_id, "b_item_id": item_id, "b_question": question}
    hot = _H_ANSWERS_WITH_SKILL
    if limit is not None:
        hot, params["b_limit"] = _H_FIRST_ANSWERS_WITH_SKILL, limit
    for row in hot.all(conn, params):
        skill_annotator = row.pop("_s_annotator_id")
        skill = {"accuracy": row.pop("_s_accuracy"), "confusion": row.pop("_s_confusion"),
                 "n_answers": row.pop("_s_n_answers")}
        model = {"prior": row.pop("_m_prior")}
        if skill_annotator is not None:
            skills[skill_annotator] = skill
        rows.append(row)
    return rows, skills, model


def fetch_stats(conn: Connection, project_id: int, annotator_id: int) -> dict[str, Any] | None:
    row = conn.execute(_STATS, {"b_project_id": project_id, "b_annotator_id": annotator_id}).mappings().first()
    return dict(row) if row else None


def upsert_stats(conn: Connection, project_id: int, annotator_id: int, **values: Any) -> None:
    where = (annotator_stats.c.project_id == project_id, annotator_stats.c.annotator_id == annotator_id)
    if conn.execute(annotator_stats.update().where(*where).values(**values)).rowcount == 0:
        conn.execute(annotator_stats.insert().values(project_id=project_id, annotator_id=annotator_id, **values))


def fetch_skills(
    conn: Connection, project_id: int, question: str, annotator_ids: Sequence[int]
) -> dict[int, dict[str, Any]]:
    params = {"b_project_id": project_id, "b_question": question, "b_annotator_ids": list(annotator_ids)}
    return {r["annotator_id"]: dict(r) for r in conn.execute(_SKILLS, params).mappings()}


def upsert_skill(conn: Connection, project_id: int, annotator_id: int, question: str, **values: Any) -> None:
    where = (
        annotator_skills.c.project_id == project_id,
        annotator_skills.c.annotator_id == annotator_id,
        annotator_skills.c.question == question,
    )
    if conn.execute(annotator_skills.update().where(*where).values(**values)).rowcount == 0:
        conn.execute(
            annotator_skills.insert().values(
                project_id=project_id, annotator_id=annotator_id, question=question, **values
            )
        )


def replace_skills(conn: Connection, project_id: int, question: str, rows: list[dict[str, Any]]) -> None:
    conn.execute(
        annotator_skills.delete().where(
            annotator_skills.c.project_id == project_id, annotator_skills.c.question == question
        )
    )
    if rows:
        conn.execute(annotator_skills.insert(), [{**r, "project_id": project_id, "question": question} for r in rows])


def fetch_model(conn: Connection, project_id: int, question: str) -> dict[str, Any] | None:
    row = conn.execute(_MODEL, {"b_project_id": project_id, "b_question": question}).mappings().first()
    return dict(row) if row else None


def upsert_model(conn: Connection, project_id: int, question: str, **values: Any) -> None:
    where = (project_models.c.project_id == project_id, project_models.c.question == question)
    if conn.execute(project_models.update().where(*where).values(**values)).rowcount == 0:
        conn.execute(project_models.insert().values(project_id=project_id, question=question, **values))


def claim_refit(conn: Connection, project_id: int, now: int, hold_ms: int) -> bool:
    """Take the project's re-fit lease (a row with question ''), so one process re-fits at a time.

    The first claim of a project inserts the row; two processes doing so at once (the re-fit
    schedulers of several server workers) meet on the primary key: the loser's INSERT does
    nothing (on PostgreSQL it waits for the winner's COMMIT first) and the claim is refused,
    where a plain INSERT failed with a unique violation."""
    where = (project_models.c.project_id == project_id, project_models.c.question == "")
    res = conn.execute(
        project_models.update()
        .where(*where, sa.or_(project_models.c.busy_until.is_(None), project_models.c.busy_until < now))
        .values(busy_until=now + hold_ms)
    )
    if res.rowcount == 1:
        return True
    inserted = conn.execute(
        _INSERT_MODEL_OR_NOTHING[conn.dialect.name].values(
            project_id=project_id, question="", method="refit", n_answers=0, busy_until=now + hold_ms
        )
    ).first()
    return inserted is not None


def count_answers(conn: Connection, project_id: int) -> int:
    return conn.execute(
        sa.select(sa.func.count()).select_from(answers).where(answers.c.project_id == project_id)
    ).scalar_one()


def is_live_item(project_id: int, item_id: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """``item_id`` is not one of the project's deleted items (in their undo window): the
    re-fit, the pooled knowledge and the gold record leave their answers out. The deleted ids
    are read once (ix_items_deleted_at: deleted_at is set exactly while an item is deleted)."""
    deleted = sa.select(items.c.id).where(items.c.deleted_at.is_not(None), items.c.project_id == project_id)
    return item_id.not_in(deleted)


def iter_choice_answers(conn: Connection, project_id: int, question: str) -> Iterator[tuple[int, int, Any]]:
    """(item_id, annotator_id, label) for one question, label extracted by the database; the
    answers to deleted items left out."""
    label = answers.c.value[question].as_string()
    q = (
        sa.select(answers.c.item_id, answers.c.annotator_id, label)
        .where(answers.c.project_id == project_id, is_live_item(project_id, answers.c.item_id))
        .execution_options(yield_per=50_000)
    )
    yield from conn.execute(q)


def fetch_gold_labels(conn: Connection, project_id: int, question: str) -> list[tuple[int, Any]]:
    """(item_id, gold label) of the project's live gold items."""
    label = gold_answers.c.value[question].as_string()
    q = sa.select(gold_answers.c.item_id, label).where(gold_answers.c.project_id == project_id,
                                                       is_live_item(project_id, gold_answers.c.item_id))
    return [(i, v) for i, v in conn.execute(q) if v is not None]


def fetch_gold_answer_pairs(
    conn: Connection, item_ids: Sequence[int]
) -> list[tuple[int, dict[str, Any], dict[str, Any]]]:
    """(annotator_id, answer value, gold value) of every scored answer to the gold items among
    ``item_ids`` (one still waiting in gold_pending is not in the gold record yet)."""
    q = (
        sa.select(answers.c.annotator_id, answers.c.value, gold_answers.c.value)
        .join(gold_answers, gold_answers.c.item_id == answers.c.item_id)
        .where(answers.c.item_id.in_(list(item_ids)),
               ~sa.exists().where(gold_pending.c.answer_id == answers.c.id))
        .order_by(answers.c.id)
    )
    return [(int(a), v or {}, g or {}) for a, v, g in conn.execute(q)]


def mark_refit_due(conn: Connection, project_id: int) -> None:
    """Make the scheduler re-fit the project (its answers changed without a new one: items
    deleted or restored): the count it compares with can never match."""
    conn.execute(project_models.update().where(project_models.c.project_id == project_id,
                                               project_models.c.question == "").values(n_answers=-1))


def fetch_gold_value(conn: Connection, item_id: int) -> dict[str, Any] | None:
    return conn.execute(sa.select(gold_answers.c.value).where(gold_answers.c.item_id == item_id)).scalar()


_ITEM_COUNTS_COLS = (items.c.id, items.c.answer_count, items.c.target_overlap, items.c.status, items.c.is_gold)
# PostgreSQL: the ids as one array parameter. An expanding IN of a re-fit batch (5,000 ids) cost
# 0.25 s a batch in SQLAlchemy's and psycopg's handling of a statement with 5,000 placeholders.
_ITEM_COUNTS_PG = sa.select(*_ITEM_COUNTS_COLS).where(
    items.c.id == sa.any_(sa.bindparam("b_ids", type_=postgresql.ARRAY(sa.BigInteger)))
)


def fetch_item_counts(conn: Connection, item_ids: Sequence[int]) -> dict[int, tuple[int, int, str, bool]]:
    if conn.dialect.name == "postgresql":
        rows = conn.execute(_ITEM_COUNTS_PG, {"b_ids": list(item_ids)})
    else:
        rows = conn.execute(sa.select(*_ITEM_COUNTS_COLS).where(items.c.id.in_(list(item_ids))))
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


# PostgreSQL: consensus rows travel as a JSON array (jsonb_to_recordset with these columns) and
# are upserted on (item_id, question). Both the submit's statement (storage/queue_pg.py) and the
# re-fit's batch below write consensus this way.
PG_CONSENSUS_RECORD = (
    "question VARCHAR, value JSONB, confidence DOUBLE PRECISION, method VARCHAR, status VARCHAR, "
    "contributions JSONB, agreement DOUBLE PRECISION, updated_at BIGINT"
)


def pg_consensus_upsert(item_id: str, source: str) -> str:
    """INSERT ... ON CONFLICT DO UPDATE of the consensus rows of ``source`` (a relation with the
    columns of PG_CONSENSUS_RECORD), ``item_id`` the SQL of their item id, ``:project_id`` bound.
    A stored row whose label a reviewer set (source other than "consensus") is left as it is."""
    return (
        "INSERT INTO consensus (item_id, question, project_id, value, confidence, method, status, "  # nosec B608  # constant SQL
        "contributions, agreement, updated_at) "
        f"SELECT {item_id}, question, CAST(:project_id AS BIGINT), value, confidence, method, status, "
        f"contributions, agreement, updated_at FROM {source} "
        "ON CONFLICT (item_id, question) DO UPDATE SET project_id = excluded.project_id, value = excluded.value, "
        "confidence = excluded.confidence, method = excluded.method, status = excluded.status, "
        "contributions = excluded.contributions, agreement = excluded.agreement, updated_at = excluded.updated_at "
        "WHERE consensus.source = 'consensus'"
    )


# The re-fit's batch as one statement, where the generic path below runs a DELETE and an INSERT
# per row (executemany): 2.1 of a 3.4 s re-fit of 15,000 answered items, all of it client CPU in
# the server's process.
_UPSERT_CONSENSUS_PG = sa.text(pg_consensus_upsert(
    "item_id", f"jsonb_to_recordset(CAST(:rows AS JSONB)) AS r(item_id BIGINT, {PG_CONSENSUS_RECORD})"
))
_CONSENSUS_FIELDS = ("item_id", "question", "value", "confidence", "method", "status", "contributions", "agreement",
                     "updated_at")


def json_safe(rows: list[dict[str, Any]]) -> bool:
    """Whether the confidence and agreement of every consensus row can travel as JSON (NaN and
    infinities cannot): the PostgreSQL statements that take rows as a JSON array need it."""
    return all(
        v is None or math.isfinite(v) for r in rows for v in (r.get("confidence"), r.get("agreement"))
    )


def write_consensus_batch(conn: Connection, project_id: int, rows: list[dict[str, Any]]) -> None:
    """Replace consensus rows for (item, question) pairs in one go (each pair once in ``rows``),
    except reviewed ones (see pg_consensus_upsert)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql" and json_safe(rows):
        payload = [{"agreement": None, "contributions": None, **{k: r[k] for k in _CONSENSUS_FIELDS if k in r}}
                   for r in rows]
        conn.execute(_UPSERT_CONSENSUS_PG, {"project_id": project_id, "rows": orjson.dumps(payload).decode()})
        return
    # Reviewed rows (source other than "consensus") are neither deleted nor overwritten.
    conn.execute(
        consensus.delete().where(
            consensus.c.item_id == sa.bindparam("b_item_id"), consensus.c.question == sa.bindparam("b_question"),
            consensus.c.source == "consensus",
        ),
        [{"b_item_id": r["item_id"], "b_question": r["question"]} for r in rows],
    )
    insert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(consensus).on_conflict_do_nothing()
    conn.execute(insert, [{"agreement": None, **r, "project_id": project_id} for r in rows])


def update_item_states(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Set status/target for items whose answer count is still the one the decision saw."""
    if not rows:
        return 0
    res = conn.execute(
        items.update()
        .where(items.c.id == sa.bindparam("b_id"), items.c.answer_count == sa.bindparam("b_count"))
        .values(status=sa.bindparam("status"), target_overlap=sa.bindparam("target_overlap"),
                updated_at=sa.bindparam("updated_at")),
        rows,
    )
    return res.rowcount


def list_annotator_rows(conn: Connection, project_id: int) -> list[dict[str, Any]]:
    """Every annotator who answered in the project, with counts and timing (of their answers
    to live items)."""
    q = (
        sa.select(
            answers.c.annotator_id,
            users.c.username,
            sa.func.count().label("n_answers"),
            sa.func.avg(answers.c.duration_ms).label("mean_duration_ms"),
            sa.func.max(answers.c.created_at).label("last_answer_at"),
        )
        .join(users, users.c.id == answers.c.annotator_id)
        .where(answers.c.project_id == project_id, is_live_item(project_id, answers.c.item_id))
        .group_by(answers.c.annotator_id, users.c.username)
        .order_by(answers.c.annotator_id)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def list_stats(conn: Connection, project_id: int) -> dict[int, dict[str, Any]]:
    q = sa.select(annotator_stats).where(annotator_stats.c.project_id == project_id)
    return {r["annotator_id"]: dict(r) for r in conn.execute(q).mappings()}


def list_skills(conn: Connection, project_id: int) -> list[dict[str, Any]]:
    q = sa.select(annotator_skills).where(annotator_skills.c.project_id == project_id)
    return [dict(r) for r in conn.execute(q).mappings()]


def insert_review(conn: Connection, **values: Any) -> dict[str, Any]:
    return dict(conn.execute(reviews.insert().values(**values).returning(*reviews.c)).mappings().one())


def list_reviews(conn: Connection, item_id: int) -> list[dict[str, Any]]:
    q = sa.select(reviews).where(reviews.c.item_id == item_id).order_by(reviews.c.id)
    return [dict(r) for r in conn.execute(q).mappings()]


def list_projects_needing_refit(conn: Connection, fitted_before: int | None = None) -> list[int]:
    """Projects whose answer count differs from the count at their last re-fit; with
    ``fitted_before`` (ms), only those never fitted or last fitted before then."""
    counts = (
        sa.select(answers.c.project_id, sa.func.count().label("n"))
        .group_by(answers.c.project_id)
        .subquery()
    )
    fitted = sa.select(project_models.c.project_id, project_models.c.n_answers, project_models.c.fitted_at).where(
        project_models.c.question == ""
    ).subquery()
    q = (
        sa.select(counts.c.project_id)
        .select_from(counts.outerjoin(fitted, fitted.c.project_id == counts.c.project_id))
        .where(sa.or_(fitted.c.n_answers.is_(None), fitted.c.n_answers != counts.c.n))
    )
    if fitted_before is not None:
        q = q.where(sa.or_(fitted.c.fitted_at.is_(None), fitted.c.fitted_at < fitted_before))
    return [r[0] for r in conn.execute(q)]


def fetch_recent_answer_values(conn: Connection, project_id: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
    """(item_id, value) of the project's newest ``limit`` answers to live items (index
    ix_answers_project_id)."""
    q = (
        sa.select(answers.c.item_id, answers.c.value)
        .where(answers.c.project_id == project_id, is_live_item(project_id, answers.c.item_id))
        .order_by(answers.c.id.desc())
        .limit(limit)
    )
    return [(r[0], r[1]) for r in conn.execute(q)]


def fetch_gold_totals(conn: Connection, project_id: int) -> tuple[int, int]:
    """(gold answers scored, of which correct) over the project's annotators."""
    row = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(annotator_stats.c.n_gold), 0),
                  sa.func.coalesce(sa.func.sum(annotator_stats.c.n_gold_correct), 0))
        .where(annotator_stats.c.project_id == project_id)
    ).one()
    return int(row[0]), int(row[1])


def count_eligible_annotators(conn: Connection, project_id: int) -> int:
    """Members with the annotator role who are not suspended in the project."""
    return cast("int", conn.execute(sa.text(ELIGIBLE_ANNOTATORS_SQL), {"project_id": project_id}).scalar_one())


# Members with the annotator role not suspended in the project (``:project_id`` bound).
ELIGIBLE_ANNOTATORS_SQL = (
    "SELECT count(*) FROM project_members AS m LEFT OUTER JOIN annotator_stats AS st "
    "ON st.project_id = m.project_id AND st.annotator_id = m.user_id "
    "WHERE m.project_id = :project_id AND m.role = 'annotator' AND coalesce(st.status, 'active') <> 'suspended'"
)

# Open items of a project that no eligible annotator can still answer: every member with the
# annotator role who is not suspended has answered or skipped it, and nobody holds it now.
_STALLED_ITEMS = (
    "SELECT i.id, i.answer_count, i.target_overlap FROM items AS i "
    "WHERE i.project_id = :project_id AND i.status = 'open' AND i.is_gold = :false AND i.reserved = 0 {only} "
    "AND NOT EXISTS (SELECT 1 FROM project_members AS m LEFT OUTER JOIN annotator_stats AS st "
    "    ON st.project_id = m.project_id AND st.annotator_id = m.user_id "
    "  WHERE m.project_id = :project_id AND m.role = 'annotator' AND coalesce(st.status, 'active') <> 'suspended' "
    "    AND NOT EXISTS (SELECT 1 FROM answers AS a WHERE a.item_id = i.id AND a.annotator_id = m.user_id) "
    "    AND NOT EXISTS (SELECT 1 FROM leases AS l WHERE l.item_id = i.id AND l.annotator_id = m.user_id "
    "                   AND l.status = 'skipped'))"
)


def fetch_stalled_items(conn: Connection, project_id: int, item_id: int | None = None) -> list[tuple[int, int, int]]:
    """(id, answer_count, target_overlap) of the project's stalled open items (or of ``item_id``
    only, if it is stalled). One pass over the open items: the background re-fit's sweep."""
    sql = _STALLED_ITEMS.format(only="AND i.id = :item_id" if item_id is not None else "")
    params = {"project_id": project_id, "false": False, "item_id": item_id}
    return [(r[0], r[1], r[2]) for r in conn.execute(sa.text(sql), params)]


def set_consensus_status(conn: Connection, item_ids: Sequence[int], status: str, now: int) -> None:
    """The consensus rows of these items take the items' new status."""
    if item_ids:
        conn.execute(consensus.update().where(consensus.c.item_id.in_(list(item_ids)))
                     .values(status=status, updated_at=now))
