"""Models in the loop: embeddings, model versions, the per-project model state, auto-labels and
the label-error audit (tables in storage/tables.py, migration 0011_models)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, cast

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from goldlabel.storage.hot import Hot
from goldlabel.storage.tables import (
    answers,
    auto_labels,
    consensus,
    embeddings,
    gold_answers,
    items,
    label_issues,
    model_state,
    model_versions,
    predictions,
    prelabel_outcomes,
    projects,
    users,
)

#: the model_version of the project model's rows in ``predictions`` starts with this
MODEL_PREFIX = "goldlabel:"


def _insert(conn: Connection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    return cast("postgresql.Insert | sqlite.Insert",
                (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table))


# ---------------------------------------------------------------- embeddings


def encode_vectors(vectors: np.ndarray) -> tuple[list[bytes], np.ndarray]:
    """int8 rows with a per-row scale (max |x| -> 127), as EmbeddingStore stores them."""
    vectors = np.asarray(vectors, dtype=np.float32)
    scale = np.abs(vectors).max(axis=1) / 127.0 if len(vectors) else np.zeros(0, np.float32)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    quantised = np.clip(np.rint(vectors / scale[:, None]), -127, 127).astype(np.int8)
    return [row.tobytes() for row in quantised], scale


def decode_vectors(blobs: Sequence[bytes], scales: Sequence[float], dim: int | None = None) -> np.ndarray:
    if not blobs:
        return np.zeros((0, dim or 0), np.float32)
    raw = np.frombuffer(b"".join(bytes(b) for b in blobs), dtype=np.int8).reshape(len(blobs), -1)
    return raw.astype(np.float32) * np.asarray(scales, dtype=np.float32)[:, None]


def items_to_embed(conn: Connection, project_id: int, limit: int, item_ids: Sequence[int] | None = None,
                   ) -> list[tuple[Any, ...]]:
    """(id, data) of the project's items without an embedding, lowest id first."""
    q = (
        sa.select(items.c.id, items.c.data)
        .select_from(items.outerjoin(embeddings, embeddings.c.item_id == items.c.id))
        .where(items.c.project_id == project_id, embeddings.c.item_id.is_(None))
        .order_by(items.c.id)
        .limit(limit)
    )
    if item_ids is not None:
        q = q.where(items.c.id.in_(list(item_ids)))
    return [tuple(r) for r in conn.execute(q)]


def count_unembedded(conn: Connection, project_id: int) -> int:
    q = (
        sa.select(sa.func.count())
        .select_from(items.outerjoin(embeddings, embeddings.c.item_id == items.c.id))
        .where(items.c.project_id == project_id, embeddings.c.item_id.is_(None))
    )
    return int(conn.execute(q).scalar_one())


def count_embedded(conn: Connection, project_id: int) -> int:
    q = sa.select(sa.func.count()).select_from(embeddings).where(embeddings.c.project_id == project_id)
    return int(conn.execute(q).scalar_one())


def cached_vectors(conn: Connection, model_id: str, hashes: Sequence[str]) -> dict[str, tuple[bytes, float]]:
    """Vectors already computed for these content hashes (any project), by hash."""
    if not hashes:
        return {}
    q = (
        sa.select(embeddings.c.content_hash, embeddings.c.vector, embeddings.c.scale)
        .where(embeddings.c.model_id == model_id, embeddings.c.content_hash.in_(sorted(set(hashes))))
    )
    return {h: (bytes(v), s) for h, v, s in conn.execute(q)}


def insert_embeddings(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(_insert(conn, embeddings).on_conflict_do_nothing(), rows)


def fetch_vectors(conn: Connection, item_ids: Sequence[int]) -> tuple[list[int], np.ndarray]:
    """(ids that have one, their float32 vectors) for ``item_ids``."""
    ids: list[int] = []
    blobs: list[bytes] = []
    scales: list[float] = []
    ordered = list(item_ids)
    for start in range(0, len(ordered), 5000):
        q = sa.select(embeddings.c.item_id, embeddings.c.vector, embeddings.c.scale).where(
            embeddings.c.item_id.in_(ordered[start:start + 5000]))
        for i, v, s in conn.execute(q):
            ids.append(i)
            blobs.append(v)
            scales.append(s)
    return ids, decode_vectors(blobs, scales)


def iter_vectors(conn: Connection, project_id: int, batch: int = 5000,
                 after: int = 0) -> Iterator[tuple[list[int], np.ndarray]]:
    """The project's embeddings in item-id order, ``batch`` rows at a time (a keyset walk: a
    1M-item project never sits in memory whole)."""
    last = after
    while True:
        q = (
            sa.select(embeddings.c.item_id, embeddings.c.vector, embeddings.c.scale)
            .where(embeddings.c.project_id == project_id, embeddings.c.item_id > last)
            .order_by(embeddings.c.item_id)
            .limit(batch)
        )
        rows = conn.execute(q).all()
        if not rows:
            return
        ids = [r[0] for r in rows]
        yield ids, decode_vectors([r[1] for r in rows], [r[2] for r in rows])
        last = ids[-1]


# ---------------------------------------------------------------- labels the model learns from


def fetch_training_labels(conn: Connection, project_id: int,
                          question: str) -> list[tuple[int, Any, float, str, bool]]:
    """(item_id, label, confidence, source, model_voted) of every human final label of
    ``question``: final items' consensus (source consensus or review; auto-labels excluded) and
    gold answers. ``model_voted``: the project model's vote is in that consensus (its method
    ends with "+model"), so the label is no independent judge of the model."""
    q = (
        sa.select(consensus.c.item_id, consensus.c.value, consensus.c.confidence, consensus.c.source,
                  consensus.c.method)
        .select_from(consensus.join(items, items.c.id == consensus.c.item_id))
        .where(consensus.c.project_id == project_id, consensus.c.question == question,
               items.c.status == "final", consensus.c.source != "auto")
    )
    out = [(i, v, 1.0 if c is None else float(c), s, s == "consensus" and (m or "").endswith("+model"))
           for i, v, c, s, m in conn.execute(q) if v is not None]
    gold = gold_answers.c.value[question].as_string()
    seen = {r[0] for r in out}
    for i, v in conn.execute(sa.select(gold_answers.c.item_id, gold).where(gold_answers.c.project_id == project_id)):
        if v is not None and i not in seen:
            out.append((i, v, 1.0, "gold", False))
    return out


def count_training_labels(conn: Connection, project_id: int, question: str) -> int:
    q = (
        sa.select(sa.func.count())
        .select_from(consensus.join(items, items.c.id == consensus.c.item_id))
        .where(consensus.c.project_id == project_id, consensus.c.question == question,
               items.c.status == "final", consensus.c.source != "auto")
    )
    gold = (
        sa.select(sa.func.count())
        .select_from(gold_answers.join(items, items.c.id == gold_answers.c.item_id))
        .where(gold_answers.c.project_id == project_id, gold_answers.c.value[question].as_string().is_not(None),
               items.c.status != "final")
    )
    return int(conn.execute(q).scalar_one()) + int(conn.execute(gold).scalar_one())


# ---------------------------------------------------------------- state and versions


def fetch_state(conn: Connection, project_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(model_state).where(model_state.c.project_id == project_id)).mappings().first()
    return dict(row) if row else None


def ensure_state(conn: Connection, project_id: int, settings: dict[str, Any], now: int) -> dict[str, Any]:
    conn.execute(_insert(conn, model_state).on_conflict_do_nothing().values(
        project_id=project_id, settings=settings, updated_at=now))
    # the row exists: the insert above made it or found it
    return cast(dict[str, Any], fetch_state(conn, project_id))


def update_state(conn: Connection, project_id: int, **values: Any) -> None:
    conn.execute(model_state.update().where(model_state.c.project_id == project_id).values(**values))


def claim_project(conn: Connection, project_id: int, now: int, hold_ms: int) -> bool:
    """One process works on a project's model at a time (the state row's ``busy_until``)."""
    res = conn.execute(
        model_state.update()
        .where(model_state.c.project_id == project_id,
               sa.or_(model_state.c.busy_until.is_(None), model_state.c.busy_until < now))
        .values(busy_until=now + hold_ms)
    )
    return res.rowcount == 1


def list_projects_for_models(conn: Connection) -> list[dict[str, Any]]:
    """Every project's id, label schema and updated_at (the worker keeps those with a choice question)."""
    cols = (projects.c.id, projects.c.label_schema, projects.c.updated_at)
    return [dict(r) for r in conn.execute(sa.select(*cols).order_by(projects.c.id)).mappings()]


def insert_version(conn: Connection, **values: Any) -> int:
    return int(conn.execute(model_versions.insert().values(**values).returning(model_versions.c.id)).scalar_one())


_VERSION_COLS = [c for c in model_versions.c if c.name != "params"]


def list_versions(conn: Connection, project_id: int, limit: int = 50) -> list[dict[str, Any]]:
    q = (sa.select(*_VERSION_COLS).where(model_versions.c.project_id == project_id)
         .order_by(model_versions.c.id.desc()).limit(limit))
    return [dict(r) for r in conn.execute(q).mappings()]


def fetch_current_version(conn: Connection, project_id: int, with_params: bool = False) -> dict[str, Any] | None:
    """The newest ready version."""
    cols = list(model_versions.c) if with_params else _VERSION_COLS
    q = (sa.select(*cols).where(model_versions.c.project_id == project_id, model_versions.c.status == "ready")
         .order_by(model_versions.c.id.desc()).limit(1))
    row = conn.execute(q).mappings().first()
    return dict(row) if row else None


def fetch_auto_label_versions(conn: Connection, project_id: int) -> list[dict[str, Any]]:
    """The versions (with params) whose threshold auto-labeled something (auto_labels rows,
    audits included: those items were taken too), oldest first."""
    used = sa.select(auto_labels.c.version_id).where(auto_labels.c.project_id == project_id).distinct()
    q = (sa.select(*model_versions.c).where(model_versions.c.project_id == project_id,
                                            model_versions.c.id.in_(used))
         .order_by(model_versions.c.id))
    return [dict(r) for r in conn.execute(q).mappings()]


# ---------------------------------------------------------------- predictions


def replace_model_predictions(conn: Connection, project_id: int, rows: list[dict[str, Any]]) -> None:
    """The project model's prediction per item: the new version's replaces any earlier one."""
    if not rows:
        return
    ids = [r["item_id"] for r in rows]
    conn.execute(predictions.delete().where(predictions.c.item_id.in_(ids),
                                            predictions.c.model_version.like(MODEL_PREFIX + "%")))
    conn.execute(predictions.insert(), [{**r, "project_id": project_id} for r in rows])


def delete_model_predictions(conn: Connection, item_ids: list[int]) -> None:
    """Drop the project model's prediction of these items (the calibration slice and audits:
    items whose human labels judge the model get no model output)."""
    if item_ids:
        conn.execute(predictions.delete().where(predictions.c.item_id.in_(item_ids),
                                                predictions.c.model_version.like(MODEL_PREFIX + "%")))


def audit_item_ids(conn: Connection, project_id: int, item_ids: list[int]) -> set[int]:
    """Which of these items were sent to humans as audits of auto-labeling."""
    if not item_ids:
        return set()
    q = sa.select(auto_labels.c.item_id).where(auto_labels.c.project_id == project_id,
                                               auto_labels.c.audit.is_(sa.true()), auto_labels.c.item_id.in_(item_ids))
    return {int(r[0]) for r in conn.execute(q)}


def items_for_external(conn: Connection, project_id: int, model_version: str, after: int,
                       limit: int) -> list[tuple[int, Any]]:
    """(id, data) of open items after id ``after`` that have no prediction of ``model_version``
    yet, in id order: what an external model is asked next."""
    has = sa.select(sa.literal(1)).where(predictions.c.item_id == items.c.id,
                                         predictions.c.model_version == model_version)
    q = (sa.select(items.c.id, items.c.data)
         .where(items.c.project_id == project_id, items.c.status == "open", items.c.id > after, ~sa.exists(has))
         .order_by(items.c.id).limit(limit))
    return [(int(r[0]), r[1]) for r in conn.execute(q)]


def replace_predictions_of(conn: Connection, project_id: int, model_version: str,
                           rows: list[dict[str, Any]]) -> None:
    """An external predictor's prediction per item, replacing its earlier one of the item."""
    if not rows:
        return
    ids = [r["item_id"] for r in rows]
    conn.execute(predictions.delete().where(predictions.c.item_id.in_(ids),
                                            predictions.c.model_version == model_version))
    conn.execute(predictions.insert(), [{**r, "project_id": project_id, "model_version": model_version}
                                        for r in rows])


def fetch_auto_label_candidates(conn: Connection, project_id: int, model_version: str, threshold: float,
                                limit: int) -> list[tuple[int, Any, float]]:
    """(item_id, predicted value, score) of open, unanswered, unreserved, non-gold items whose
    current-version prediction scores at least ``threshold`` and that were never auto-labeled."""
    q = (
        sa.select(items.c.id, predictions.c.value, predictions.c.score)
        .select_from(items.join(predictions, predictions.c.item_id == items.c.id)
                     .outerjoin(auto_labels, auto_labels.c.item_id == items.c.id))
        .where(items.c.project_id == project_id, items.c.status == "open", items.c.is_gold.is_(sa.false()),
               items.c.answer_count == 0, items.c.reserved == 0, predictions.c.model_version == model_version,
               predictions.c.score >= threshold, auto_labels.c.item_id.is_(None))
        .order_by(items.c.id)
        .limit(limit)
    )
    return [tuple(r) for r in conn.execute(q)]


def finalize_auto(conn: Connection, item_id: int, now: int) -> bool:
    """Make an item final for its auto-label, only if it is still open and nobody holds or
    answered it (the queue may have leased it since the candidates were read)."""
    res = conn.execute(
        items.update()
        .where(items.c.id == item_id, items.c.status == "open", items.c.answer_count == 0, items.c.reserved == 0)
        .values(status="final", updated_at=now)
    )
    return res.rowcount == 1


def insert_auto_labels(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(_insert(conn, auto_labels).on_conflict_do_nothing(), rows)


def pending_audits(conn: Connection, project_id: int) -> list[tuple[int, str, Any, Any]]:
    """(item_id, question, model label, human consensus value) of audits whose item humans finished."""
    q = (
        sa.select(auto_labels.c.item_id, auto_labels.c.question, auto_labels.c.label, consensus.c.value)
        .select_from(auto_labels.join(items, items.c.id == auto_labels.c.item_id)
                     .join(consensus, sa.and_(consensus.c.item_id == auto_labels.c.item_id,
                                              consensus.c.question == auto_labels.c.question)))
        .where(auto_labels.c.project_id == project_id, auto_labels.c.audit.is_(sa.true()),
               auto_labels.c.audit_correct.is_(None), items.c.status == "final", consensus.c.source != "auto")
    )
    return [tuple(r) for r in conn.execute(q)]


def set_audit_results(conn: Connection, results: list[tuple[int, bool]]) -> None:
    for item_id, ok in results:
        conn.execute(auto_labels.update().where(auto_labels.c.item_id == item_id).values(audit_correct=ok))


def audit_outcomes(conn: Connection, project_id: int, since: int | None) -> list[bool]:
    q = sa.select(auto_labels.c.audit_correct).where(
        auto_labels.c.project_id == project_id, auto_labels.c.audit.is_(sa.true()),
        auto_labels.c.audit_correct.is_not(None))
    if since is not None:
        q = q.where(auto_labels.c.created_at >= since)
    return [bool(r[0]) for r in conn.execute(q)]


def auto_label_counts(conn: Connection, project_id: int) -> dict[str, int]:
    q = (sa.select(auto_labels.c.audit, sa.func.count()).where(auto_labels.c.project_id == project_id)
         .group_by(auto_labels.c.audit))
    counts = {bool(a): int(n) for a, n in conn.execute(q)}
    return {"auto_labeled": counts.get(False, 0), "audits": counts.get(True, 0)}


# ---------------------------------------------------------------- label-error audit


def replace_label_issues(conn: Connection, project_id: int, version_id: int, rows: list[dict[str, Any]]) -> None:
    conn.execute(label_issues.delete().where(label_issues.c.project_id == project_id))
    if rows:
        conn.execute(label_issues.insert(), [{**r, "project_id": project_id, "version_id": version_id} for r in rows])


def list_label_issues(conn: Connection, project_id: int, limit: int) -> list[dict[str, Any]]:
    q = (
        sa.select(label_issues.c.item_id, items.c.external_id, label_issues.c.question, label_issues.c.rank,
                  label_issues.c.given, label_issues.c.suggested, label_issues.c.self_confidence,
                  label_issues.c.version_id, items.c.status, consensus.c.source)
        .select_from(label_issues.join(items, items.c.id == label_issues.c.item_id)
                     .outerjoin(consensus, sa.and_(consensus.c.item_id == label_issues.c.item_id,
                                                   consensus.c.question == label_issues.c.question)))
        .where(label_issues.c.project_id == project_id)
        .order_by(label_issues.c.rank)
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def fetch_issues_for_review(conn: Connection, project_id: int, item_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The label issues of these items whose item is final with a label from the answers
    (source consensus): the ones a model may send back to review."""
    q = (
        sa.select(label_issues.c.item_id, label_issues.c.question, label_issues.c.given, label_issues.c.suggested,
                  label_issues.c.self_confidence, label_issues.c.rank)
        .select_from(label_issues.join(items, items.c.id == label_issues.c.item_id)
                     .join(consensus, sa.and_(consensus.c.item_id == label_issues.c.item_id,
                                              consensus.c.question == label_issues.c.question)))
        .where(label_issues.c.project_id == project_id, label_issues.c.item_id.in_(list(item_ids)),
               items.c.status == "final", consensus.c.source == "consensus")
    )
    return [dict(r) for r in conn.execute(q).mappings()]


# ---------------------------------------------------------------- the model as an annotator


def fetch_model_votes(conn: Connection, project_id: int, question: str) -> list[tuple[int, Any, float]]:
    """(item_id, predicted label, score) of the project model's current prediction per item
    (out-of-fold for the items it trained on: services/models/training.py writes them so)."""
    q = (
        sa.select(predictions.c.item_id, predictions.c.value[question].as_string(), predictions.c.score)
        .where(predictions.c.project_id == project_id, predictions.c.model_version.like(MODEL_PREFIX + "%"))
    )
    return [(int(i), v, float(s)) for i, v, s in conn.execute(q) if v is not None and s is not None]


# Built once with bind parameters and run as a Hot statement: the per-answer consensus reads it
# on every submit of a choice project, and building the statement and its cache key per call
# cost 14% of an annotate cycle (py-spy profile of benchmarks/annotate_loop.py, SQLite).
_MODEL_VOTE = Hot(
    sa.select(model_state.c.annotator, predictions.c.value, predictions.c.score)
    .select_from(model_state.join(predictions, sa.and_(
        predictions.c.item_id == sa.bindparam("b_item_id"),
        predictions.c.model_version.like(MODEL_PREFIX + "%"))))
    .where(model_state.c.project_id == sa.bindparam("b_project_id"), model_state.c.annotator.is_not(None))
    .limit(1)
)


def fetch_model_vote(conn: Connection, project_id: int, item_id: int) -> dict[str, Any] | None:
    """The model's vote on one item for the per-answer consensus: ``{"question", "skill",
    "value", "score"}``, or None when the project has no learned model annotator or the item
    no prediction (one indexed read: the state row by key, the prediction by item)."""
    row = _MODEL_VOTE.first(conn, {"b_item_id": item_id, "b_project_id": project_id})
    return model_vote_from(row["annotator"], row["value"], row["score"]) if row else None


def model_vote_from(annotator: Any, value: Any, score: Any) -> dict[str, Any] | None:
    """The vote dict of :func:`fetch_model_vote` from its three columns (also read by the
    PostgreSQL submit's merged read, storage/queue_pg.py)."""
    if not isinstance(annotator, dict) or not isinstance(value, dict) or score is None:
        return None
    question = annotator.get("question")
    return {"question": question, "skill": annotator, "value": value.get(question), "score": float(score)}


def set_model_annotator(conn: Connection, project_id: int, annotator: dict[str, Any] | None, now: int) -> None:
    conn.execute(model_state.update().where(model_state.c.project_id == project_id)
                 .values(annotator=annotator, updated_at=now))


# ---------------------------------------------------------------- active-learning priorities


def iter_priority_inputs(conn: Connection, project_id: int, question: str,
                         batch: int = 20000) -> Iterator[list[tuple[Any, ...]]]:
    """Open, non-gold items that have an embedding, in id order, ``batch`` at a time:
    (id, priority, answer_count, consensus confidence or None, model score or None). Their
    combined posterior's top probability is the consensus confidence where humans answered
    (it holds the model's vote when the model is an annotator), else the model's score."""
    last = 0
    while True:
        q = (
            sa.select(items.c.id, items.c.priority, items.c.answer_count, consensus.c.confidence,
                      predictions.c.score)
            .select_from(
                items.join(embeddings, embeddings.c.item_id == items.c.id)
                .outerjoin(consensus, sa.and_(consensus.c.item_id == items.c.id, consensus.c.question == question))
                .outerjoin(predictions, sa.and_(predictions.c.item_id == items.c.id,
                                                predictions.c.model_version.like(MODEL_PREFIX + "%"))))
            .where(items.c.project_id == project_id, items.c.status == "open", items.c.is_gold.is_(sa.false()),
                   items.c.id > last)
            .order_by(items.c.id)
            .limit(batch)
        )
        rows = [tuple(r) for r in conn.execute(q)]
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def sample_answered_ids(conn: Connection, project_id: int, limit: int) -> list[int]:
    """Up to ``limit`` ids of the project's items that have human answers, newest first (the
    region of embedding space the humans already cover)."""
    q = (sa.select(items.c.id).where(items.c.project_id == project_id, items.c.answer_count > 0)
         .order_by(items.c.id.desc()).limit(limit))
    return [int(r[0]) for r in conn.execute(q)]


def set_priorities(conn: Connection, project_id: int, changes: Sequence[tuple[int, int]]) -> int:
    """Write new queue priorities of open items ((item_id, priority) pairs); items no longer
    open keep theirs. ``updated_at`` stays: a priority is no part of the item's consensus, so
    a submit that read the item before still decides on what it read. Returns the rows changed."""
    if not changes:
        return 0
    stmt = (items.update()
            .where(items.c.id == sa.bindparam("b_id"), items.c.project_id == project_id, items.c.status == "open")
            .values(priority=sa.bindparam("b_priority")))
    res = conn.execute(stmt, [{"b_id": i, "b_priority": p} for i, p in changes])
    return int(res.rowcount or 0)


# ---------------------------------------------------------------- pre-label outcomes


def answers_for_prelabels(conn: Connection, project_id: int, question: str, after: int,
                          limit: int) -> list[tuple[Any, ...]]:
    """Answers after id ``after`` with what their pre-label outcome needs: (answer id, annotator,
    answered label, answered at, is_gold, the model's current label of the item, its created_at,
    the gold label)."""
    q = (
        sa.select(answers.c.id, answers.c.annotator_id, answers.c.value[question].as_string(), answers.c.created_at,
                  items.c.is_gold, predictions.c.value[question].as_string(), predictions.c.created_at,
                  gold_answers.c.value[question].as_string())
        .select_from(
            answers.join(items, items.c.id == answers.c.item_id)
            .outerjoin(predictions, sa.and_(predictions.c.item_id == answers.c.item_id,
                                            predictions.c.model_version.like(MODEL_PREFIX + "%")))
            .outerjoin(gold_answers, gold_answers.c.item_id == answers.c.item_id))
        .where(answers.c.project_id == project_id, answers.c.id > after)
        .order_by(answers.c.id)
        .limit(limit)
    )
    return [tuple(r) for r in conn.execute(q)]


def insert_prelabel_outcomes(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(_insert(conn, prelabel_outcomes).on_conflict_do_nothing(), rows)


def prelabel_stats(conn: Connection, project_id: int) -> list[dict[str, Any]]:
    """Per annotator: answers with a pre-label shown and kept; gold answers with and without
    one and how many were right; gold answers whose pre-label was wrong and how many followed it."""
    def count(cond: Any) -> Any:
        return sa.func.sum(sa.case((cond, 1), else_=0))

    po = prelabel_outcomes.c
    q = (
        sa.select(
            po.annotator_id, users.c.username,
            count(po.shown), count(po.shown & po.kept.is_(sa.true())),
            count(po.is_gold & po.shown & po.correct.is_not(None)),
            count(po.is_gold & po.shown & po.correct.is_(sa.true())),
            count(po.is_gold & ~po.shown & po.correct.is_not(None)),
            count(po.is_gold & ~po.shown & po.correct.is_(sa.true())),
            count(po.is_gold & po.shown & po.prelabel_correct.is_(sa.false())),
            count(po.is_gold & po.shown & po.prelabel_correct.is_(sa.false()) & po.kept.is_(sa.true())),
        )
        .select_from(prelabel_outcomes.join(users, users.c.id == po.annotator_id))
        .where(po.project_id == project_id)
        .group_by(po.annotator_id, users.c.username)
        .order_by(po.annotator_id)
    )
    keys = ("annotator_id", "username", "shown", "kept", "gold_shown", "gold_shown_correct", "gold_hidden",
            "gold_hidden_correct", "wrong_prelabels", "followed_wrong")
    return [dict(zip(keys, (r[0], r[1], *(int(v or 0) for v in r[2:])))) for r in conn.execute(q)]
