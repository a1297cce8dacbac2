"""The quality engine inside the platform: per-answer posterior update (adaptive overlap), gold
scoring with qualification and suspension, and the full background re-fit.

Per answer (inside the submit transaction), O(answers on the item): the item's posterior for
each choice question is computed from the current annotator skills
(:func:`goldlabel.services.posterior.item_consensus`); the item is final when every choice question's top
answer has probability >= the project's target confidence and the minimum overlap is met,
goes to review at the maximum overlap, and otherwise asks for one more answer.

The full re-fit runs the recommended aggregation model over all of a project's answers
(gold-clamped), stores the learned skills and class priors that the per-answer update uses,
and refreshes every item's consensus.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from typing import Any

import numpy as np
import sqlalchemy as sa

from goldlabel import quality
from goldlabel.domain.errors import GoldlabelError, not_found
from goldlabel.domain.label_schema import LabelSchema, RankingQuestion, RatingQuestion
from goldlabel.domain.stopping import decide_status, settle_status
from goldlabel.quality import gold as gold_scoring
from goldlabel.quality.agreement import fleiss_kappa, krippendorff_alpha
from goldlabel.quality.gold import GoldThresholds
from goldlabel.quality.skill import confusions_from_skills, estimate_skill
from goldlabel.schemas import QualitySettings
from goldlabel.services import cold_start, consensus_kinds
from goldlabel.services.access import Actor, load_project
from goldlabel.services.context import Context
from goldlabel.services.posterior import item_consensus
from goldlabel.storage import projects as project_store
from goldlabel.storage import quality as quality_store
from goldlabel.storage import queue as queue_store
from goldlabel.storage import records
from goldlabel.storage import users as user_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx

log = logging.getLogger(__name__)

MIN_GOLD_TO_SUSPEND = 5
# For a project whose settings predate the setting.
QUALIFICATION_ACCURACY = QualitySettings.model_fields["qualification_accuracy"].default
REFIT_BATCH = 5000
REFIT_HOLD_MS = 15 * 60 * 1000
# How much nicer than its process the background re-fit thread runs (RefitScheduler).
REFIT_NICE = 10


# ---------------------------------------------------------------- standing of an annotator


def ensure_not_suspended(stats: dict | None) -> None:
    """Raise 403 for a suspended annotator (``stats``: their stats or standing row, None if
    new)."""
    if stats is not None and stats["status"] == "suspended":
        raise GoldlabelError(
            "you are suspended from this project; a manager can reinstate you",
            code="annotator_suspended",
            status=403,
        )


def score_gold_answer(schema: LabelSchema, value: dict, gold: dict,
                      thresholds: GoldThresholds) -> dict[str, tuple[float, bool]]:
    """Per question the gold holds a value for: (score in [0, 1], passed), by the kind's rule
    in :mod:`goldlabel.quality.gold` with the project's thresholds."""
    out: dict[str, tuple[float, bool]] = {}
    for q in schema.questions:
        truth = gold.get(q.name)
        if truth is None:
            continue
        options: dict[str, Any] = {"labels": q.labels}
        if isinstance(q, RatingQuestion):
            options["scale"] = (q.min, q.max, q.step)
        elif isinstance(q, RankingQuestion):
            options["allow_ties"] = q.allow_ties
        scores = gold_scoring.score_values(q.kind, [value.get(q.name)], [truth], thresholds=thresholds,
                                           **options)
        out[q.name] = (float(scores.score[0]), bool(scores.passed[0]))
    return out


def _score_gold(ctx: Context, conn: sa.Connection, project: dict, item: dict, value: dict, annotator_id: int,
                now: int) -> None:
    """Count a gold answer for its annotator: pass or fail by every question the gold holds
    (each kind by its own rule and threshold), then qualification and suspension on the
    passes. Managers see the evidence; nothing of it reaches the annotator (Q8)."""
    schema = ctx.get_schema(project)
    settings = project["settings"]
    gold = quality_store.fetch_gold_value(conn, item["id"]) or {}
    per_question = score_gold_answer(schema, value, gold, GoldThresholds.from_settings(settings))
    if not per_question:
        return
    correct = all(passed for _, passed in per_question.values())
    stats = quality_store.fetch_stats(conn, project["id"], annotator_id) or {
        "n_gold": 0, "n_gold_correct": 0, "status": "active", "evidence": None,
    }
    n_gold = stats["n_gold"] + 1
    n_correct = stats["n_gold_correct"] + int(correct)
    # Prior: default accuracy with the weight of two answers, so a new annotator's first gold
    # answer moves the estimate but does not decide it.
    prior_mean = ctx.settings.default_annotator_accuracy
    prior = (2 * prior_mean, 2 * (1 - prior_mean))
    estimate = estimate_skill(n_correct, n_gold, prior=prior)
    mean, low, high = float(estimate.mean), float(estimate.lower), float(estimate.upper)
    evidence = dict(stats["evidence"] or {})
    misses = list(evidence.get("recent_gold_misses", []))
    if not correct:
        misses = (misses + [item["id"]])[-10:]
    # Per question: answers, passes and the sum of scores, so a manager sees which kind fails.
    by_question = {k: dict(v) for k, v in (evidence.get("gold_by_question") or {}).items()}
    for name, (score, passed) in per_question.items():
        counts = by_question.setdefault(name, {"n": 0, "passed": 0, "score_sum": 0.0})
        counts["n"] += 1
        counts["passed"] += int(passed)
        counts["score_sum"] = round(counts["score_sum"] + score, 6)
    evidence.update(
        n_gold=n_gold, n_gold_correct=n_correct, accuracy=mean, interval=[low, high], recent_gold_misses=misses,
        gold_by_question=by_question,
    )
    status = stats["status"]
    qual_n = settings.get("qualification_gold", 0)
    if status != "suspended":
        status = "qualifying" if qual_n and n_gold < qual_n else "active"
        needed = settings.get("qualification_accuracy", QUALIFICATION_ACCURACY)
        if qual_n and n_gold == qual_n and n_correct / n_gold < needed:
            status = "suspended"
            evidence["reason"] = (
                f"qualification failed: {n_correct}/{n_gold} gold answers passed, {needed:.0%} needed"
            )
        threshold = settings.get("suspend_below", 0.0)
        if threshold and n_gold >= MIN_GOLD_TO_SUSPEND and high < threshold:
            status = "suspended"
            evidence["reason"] = (
                f"estimated accuracy {mean:.2f} (95% interval {low:.2f}-{high:.2f}, {n_correct}/{n_gold} gold) "
                f"is below {threshold:.2f}"
            )
        if status == "suspended":
            evidence["suspended_at"] = now
            records.insert_event(conn, project["id"], "annotator.suspended",
                                 {"annotator_id": annotator_id, "reason": evidence["reason"]}, now)
    quality_store.upsert_stats(conn, project["id"], annotator_id, n_gold=n_gold, n_gold_correct=n_correct,
                               status=status, evidence=evidence, updated_at=now)
    # Gold-based skill per question (its own pass rate), unless a model re-fit (which also uses
    # the gold) already knows more.
    for name in per_question:
        counts = by_question[name]
        q_estimate = estimate_skill(counts["passed"], counts["n"], prior=prior)
        current = quality_store.fetch_skills(conn, project["id"], name, [annotator_id]).get(annotator_id)
        if current is None or current["method"] == "gold":
            quality_store.upsert_skill(conn, project["id"], annotator_id, name, accuracy=float(q_estimate.mean),
                                       accuracy_low=float(q_estimate.lower), accuracy_high=float(q_estimate.upper),
                                       confusion=None, n_answers=counts["n"], method="gold", updated_at=now)


# ---------------------------------------------------------------- per-answer update


def decide_after_answer(ctx: Context, conn: sa.Connection, project: dict, item: dict, item_answers: list[dict],
                        now: int, known: dict[str, tuple[dict[int, dict], dict]] | None = None,
                        ) -> tuple[str, int, list[dict]]:
    """:func:`after_answer`'s decision, from the item's answers (and, in ``known``, skills and
    model already read with them), writing nothing: (item status, target overlap, consensus
    rows with that status). ``item`` is the item as it was before the answer was counted.
    Reads only what ``known`` does not hold (skills and priors of further questions)."""
    rows, smallest = item_consensus(ctx, conn, project, item_answers, now, known)
    if item["status"] != "open":
        status, target = item["status"], item["target_overlap"]
    else:
        s, t = decide_status(
            np.array([len(item_answers)]), np.array([smallest]), np.array([item["target_overlap"]]),
            project["overlap_min"], item["overlap_max"], project["settings"].get("target_confidence", 0.95),
        )
        status, target = str(s[0]), int(t[0])
        # No answer will come: overlap 1 reached, or every eligible annotator has answered. The
        # count of eligible annotators is read with the pooled knowledge (services/cold_start.py).
        pooled = ctx.pooled.get(project["id"])
        status = settle_status(status, len(item_answers), item["overlap_max"], project["settings"],
                               pooled.eligible_annotators if pooled is not None else None)
    return status, target, [{**r, "status": status} for r in rows]


def after_answer(ctx: Context, conn: sa.Connection, project: dict, item: dict, answer: dict, now: int,
                 events: list[dict] | None = None) -> str:
    """Update the item (and, for gold, the annotator) after an answer; return the item status.
    ``events``: append the item's outbox event there (the caller inserts them in one statement)
    instead of inserting it here."""
    if item["is_gold"]:
        _score_gold(ctx, conn, project, item, answer["value"], answer["annotator_id"], now)
        return item["status"]
    choice = ctx.get_schema(project).choice_questions()
    known = None
    if choice:
        # The answers, the first choice question's skills and its prior in one statement.
        item_answers, skills, model = quality_store.fetch_item_answers_with_skills(
            conn, project["id"], item["id"], choice[0].name
        )
        known = {choice[0].name: (skills, model)}
    else:
        item_answers = queue_store.fetch_item_answers(conn, item["id"])
    status, target, rows = decide_after_answer(ctx, conn, project, item, item_answers, now, known)
    records.replace_consensus(conn, item["id"], project["id"], rows)
    if status != item["status"] or target != item["target_overlap"]:
        queue_store.update_item_state(conn, item["id"], status=status, target_overlap=target, now=now)
        if status != item["status"]:
            event = {"project_id": project["id"], "kind": f"item.{status}",
                     "payload": {"item_id": item["id"], "status": status}, "created_at": now}
            if events is None:
                records.insert_events(conn, [event])
            else:
                events.append(event)
    return status


# ---------------------------------------------------------------- items no annotator is left for


def settle_stalled(ctx: Context, conn: sa.Connection, project: dict, now: int, item_id: int | None = None) -> int:
    """Move on the project's open items that no eligible annotator can still answer (every
    member with the annotator role who is not suspended answered or skipped it; nobody holds
    it): to review, or final by the project's ``no_annotator_left`` policy (an item nobody
    answered always goes to review). ``item_id``: that item only. One pass over the open items
    (a skip checks its item only); run by the re-fit, a skip and a change of members or of an
    annotator's standing, never by a lease. Returns the number of items moved."""
    cold_start.forget(ctx, project["id"])  # the number of eligible annotators may have changed
    stalled = quality_store.fetch_stalled_items(conn, project["id"], item_id)
    policy = "final" if project["settings"].get("no_annotator_left") == "final" else "needs_review"
    updates = [{"b_id": i, "b_count": count, "status": policy if count else "needs_review", "target_overlap": target,
                "updated_at": now} for i, count, target in stalled]
    if not updates:
        return 0
    moved = quality_store.update_item_states(conn, updates)
    for status in ("final", "needs_review"):
        quality_store.set_consensus_status(conn, [u["b_id"] for u in updates if u["status"] == status], status, now)
    records.insert_events(conn, [
        {"project_id": project["id"], "kind": f"item.{u['status']}",
         "payload": {"item_id": u["b_id"], "status": u["status"], "by": "no_annotator_left"}, "created_at": now}
        for u in updates
    ])
    return moved


# ---------------------------------------------------------------- full re-fit


def _load_question(conn: sa.Connection, project_id: int, question: str, labels: list[str]):
    rows = list(quality_store.iter_choice_answers(conn, project_id, question))
    if not rows:
        return None
    item_ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    annotator_ids = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    raw = np.array([r[2] if r[2] is not None else "" for r in rows], dtype=object)
    keep = np.isin(raw, labels)
    if not keep.any():
        return None
    return item_ids[keep], annotator_ids[keep], raw[keep]


def _make_estimator(name: str):
    # settings are validated on write; a name stored before that check is refused, not
    # replaced by another method behind the user's back
    try:
        key = quality.resolve_method(name)
    except ValueError as exc:
        raise GoldlabelError(f"settings.consensus_method: {exc}", code="invalid_settings", status=422) from exc
    return quality.METHODS[key](), key


def refit_project(ctx: Context, actor: Actor | None, project_id: int) -> dict[str, Any]:
    """Re-fit the project's aggregation model over all answers; update skills and consensus."""
    now = now_ms()
    with write_tx(ctx.engine) as conn:
        project = load_project(conn, actor, project_id, "manage") if actor else project_store.fetch_project(
            conn, project_id)
        if project is None:
            raise not_found("project")
        if not quality_store.claim_refit(conn, project_id, now, REFIT_HOLD_MS):
            raise GoldlabelError("a re-fit of this project is already running", code="refit_running", status=409)
    try:
        return _refit(ctx, project, now)
    finally:
        with write_tx(ctx.engine) as conn:
            quality_store.upsert_model(conn, project_id, "", busy_until=None)


def _refit(ctx: Context, project: dict, now: int) -> dict[str, Any]:
    schema = ctx.get_schema(project)
    pid = project["id"]
    summary: dict[str, Any] = {"project_id": pid, "questions": {}, "items_changed": 0}
    with read_tx(ctx.engine) as conn:
        n_answers = quality_store.count_answers(conn, pid)
        loaded = {}
        for q in schema.choice_questions():
            data = _load_question(conn, pid, q.name, list(q.labels))
            if data is not None:
                loaded[q.name] = (q, data, quality_store.fetch_gold_labels(conn, pid, q.name))
        kind_answers = consensus_kinds.load_answers(conn, pid, schema)
        pooled = cold_start.compute(ctx, conn, project)
    confidences: dict[int, float] = {}
    consensus_rows: list[dict] = []
    for name, (q, (item_ids, annotator_ids, labels), gold) in loaded.items():
        answers = quality.encode(item_ids, annotator_ids, labels, label_order=list(q.labels))
        gold_map = {i: v for i, v in gold if v in q.labels}
        gold_map = {i: v for i, v in gold_map.items() if i in set(answers.item_ids.tolist())}
        estimator, method = _make_estimator(project["settings"].get("consensus_method", "default"))
        estimator.fit(answers, gold=gold_map or None)
        probas = np.asarray(estimator.probas_)
        codes = probas.argmax(axis=1)
        conf = probas[np.arange(len(codes)), codes]
        label_order = list(np.asarray(estimator.label_ids_))
        fitted_items = np.asarray(estimator.item_ids_)
        # Share of each item's answers that match its consensus label (codes share one label space).
        agreement = np.bincount(answers.item, weights=answers.label == codes[answers.item],
                                minlength=answers.n_items) / np.bincount(answers.item, minlength=answers.n_items)
        for item_id, code, c, agree in zip(fitted_items.tolist(), codes.tolist(), conf.tolist(), agreement.tolist()):
            confidences[item_id] = min(confidences.get(item_id, 1.0), c)
            consensus_rows.append({"item_id": item_id, "question": name, "value": label_order[code],
                                   "confidence": c, "method": method, "contributions": None,
                                   "agreement": agree, "updated_at": now})
        k = len(label_order)
        skills = np.asarray(estimator.skills_, dtype=np.float64)
        confusions = getattr(estimator, "confusions_", None)
        if confusions is None or np.shape(confusions) != (len(skills), k, k):
            confusions = confusions_from_skills(skills, k)
        # The per-answer update indexes confusions in schema label order.
        order = [label_order.index(label) for label in q.labels if label in label_order]
        if len(order) == len(q.labels):
            confusions = np.asarray(confusions)[:, order][:, :, order]
            prior = probas.mean(axis=0)[order]
        else:
            confusions, prior = None, None
        per_annotator = np.bincount(answers.annotator, minlength=answers.n_annotators)
        skill_rows = [
            {"annotator_id": int(a), "accuracy": float(s), "accuracy_low": None, "accuracy_high": None,
             "confusion": None if confusions is None else np.round(confusions[i], 6).tolist(),
             "n_answers": int(per_annotator[i]), "method": method, "updated_at": now}
            for i, (a, s) in enumerate(zip(np.asarray(estimator.annotator_ids_).tolist(), skills.tolist()))
        ]
        with write_tx(ctx.engine) as conn:
            quality_store.replace_skills(conn, pid, name, skill_rows)
            quality_store.upsert_model(conn, pid, name, prior=None if prior is None else prior.tolist(),
                                       method=method, n_answers=int(answers.n_answers), fitted_at=now)
        summary["questions"][name] = {"method": method, "answers": int(answers.n_answers),
                                      "items": int(answers.n_items), "annotators": int(answers.n_annotators)}
    for fit in consensus_kinds.refit_kinds(schema, kind_answers, default_accuracy=ctx.settings.default_annotator_accuracy,
                                           settings=project["settings"], now=now, pooled=pooled):
        for item_id, value, c in zip(fit.item_ids.tolist(), fit.values, fit.confidences.tolist()):
            confidences[item_id] = min(confidences.get(item_id, 1.0), c)
            consensus_rows.append({"item_id": item_id, "question": fit.question, "value": value,
                                   "confidence": c, "method": fit.method, "contributions": None, "updated_at": now})
        with write_tx(ctx.engine) as conn:
            if fit.skills is not None:
                quality_store.replace_skills(conn, pid, fit.question, fit.skills)
            quality_store.upsert_model(conn, pid, fit.question, prior=None, method=fit.method,
                                       n_answers=fit.n_answers, fitted_at=now)
        summary["questions"][fit.question] = fit.summary
    summary["items_changed"] = _write_refit(ctx, project, consensus_rows, confidences, now)
    with write_tx(ctx.engine) as conn:
        quality_store.upsert_model(conn, pid, "", n_answers=n_answers, fitted_at=now)
        summary["items_changed"] += settle_stalled(ctx, conn, project, now)
    return summary


def _write_refit(ctx: Context, project: dict, rows: list[dict], confidences: dict[int, float], now: int) -> int:
    """Write consensus and open items' decisions in short batches, so annotators never wait long
    for the write lock; an item answered since the fit read it is left to the per-answer path."""
    pid = project["id"]
    changed = 0
    by_item: dict[int, list[dict]] = {}
    for r in rows:
        by_item.setdefault(r["item_id"], []).append(r)
    item_ids = list(by_item)
    for start in range(0, len(item_ids), REFIT_BATCH):
        chunk = item_ids[start:start + REFIT_BATCH]
        with write_tx(ctx.engine) as conn:
            state = quality_store.fetch_item_counts(conn, chunk)
            chunk = [i for i in chunk if i in state and not state[i][3]]  # gold items keep serving
            if not chunk:
                continue
            counts = np.array([state[i][0] for i in chunk])
            targets = np.array([state[i][1] for i in chunk])
            statuses = np.array([state[i][2] for i in chunk])
            conf = np.array([confidences[i] for i in chunk])
            new_status, new_target = decide_status(
                counts, conf, targets, project["overlap_min"], project["overlap_max"],
                project["settings"].get("target_confidence", 0.95),
            )
            if project["overlap_max"] == 1 and project["settings"].get("single_answer") == "final":
                new_status = np.where(new_status == "needs_review", "final", new_status)  # settle_status
            # Only open items move; final and reviewed decisions stand.
            new_status = np.where(statuses == "open", new_status, statuses)
            new_target = np.where(statuses == "open", new_target, targets)
            moved = (new_status != statuses) | (new_target != targets)
            updates = [
                {"b_id": i, "b_count": int(c), "status": str(s), "target_overlap": int(t), "updated_at": now}
                for i, c, s, t, m in zip(chunk, counts, new_status, new_target, moved) if m
            ]
            changed += quality_store.update_item_states(conn, updates)
            _announce_status_changes(conn, pid, updates, dict(zip(chunk, statuses.tolist())), now)
            status_of = dict(zip(chunk, new_status.tolist()))
            quality_store.write_consensus_batch(
                conn, pid, [{**r, "status": status_of[i]} for i in chunk for r in by_item[i]]
            )
    return changed


def _announce_status_changes(conn: sa.Connection, project_id: int, updates: list[dict], before: dict[int, str],
                             now: int) -> None:
    """Outbox events for the items the re-fit moved (those answered meanwhile kept their state)."""
    moved = [u for u in updates if u["status"] != before[u["b_id"]]]
    if not moved:
        return
    now_status = quality_store.fetch_item_counts(conn, [u["b_id"] for u in moved])
    records.insert_events(conn, [
        {"project_id": project_id, "kind": f"item.{u['status']}",
         "payload": {"item_id": u["b_id"], "status": u["status"], "by": "refit"}, "created_at": now}
        for u in moved if now_status[u["b_id"]][2] == u["status"]
    ])


# ---------------------------------------------------------------- annotators, agreement


def list_annotators(ctx: Context, actor: Actor, project_id: int) -> list[dict]:
    """Per annotator: answers, gold accuracy with interval, skill per question, status and evidence."""
    with read_tx(ctx.engine) as conn:
        load_project(conn, actor, project_id, "review")
        rows = quality_store.list_annotator_rows(conn, project_id)
        stats = quality_store.list_stats(conn, project_id)
        skills: dict[int, dict] = {}
        for s in quality_store.list_skills(conn, project_id):
            skills.setdefault(s["annotator_id"], {})[s["question"]] = {
                k: s[k] for k in ("accuracy", "accuracy_low", "accuracy_high", "confusion", "n_answers", "method")
            }
    out = []
    for r in rows:
        st = stats.get(r["annotator_id"], {})
        out.append({
            "annotator_id": r["annotator_id"],
            "username": r["username"],
            "n_answers": r["n_answers"],
            "mean_duration_ms": None if r["mean_duration_ms"] is None else float(r["mean_duration_ms"]),
            "last_answer_at": r["last_answer_at"],
            "n_gold": st.get("n_gold", 0),
            "n_gold_correct": st.get("n_gold_correct", 0),
            "status": st.get("status", "active"),
            "evidence": st.get("evidence"),
            "skills": skills.get(r["annotator_id"], {}),
        })
    return out


def set_annotator_status(ctx: Context, actor: Actor, project_id: int, annotator_id: int, status: str) -> dict:
    if status not in ("active", "suspended"):
        raise GoldlabelError("status must be active or suspended", code="bad_status", status=422)
    now = now_ms()
    with write_tx(ctx.engine) as conn:
        project = load_project(conn, actor, project_id, "manage")
        stats = quality_store.fetch_stats(conn, project_id, annotator_id)
        if stats is None and user_store.fetch_member_role(conn, project_id, annotator_id) is None:
            raise not_found("annotator")
        evidence = dict((stats or {}).get("evidence") or {})
        evidence["changed_by"] = actor.id
        evidence["reason"] = f"set to {status} by {actor.username}"
        quality_store.upsert_stats(conn, project_id, annotator_id, status=status, evidence=evidence, updated_at=now,
                                   **({} if stats else {"n_gold": 0, "n_gold_correct": 0}))
        settle_stalled(ctx, conn, project, now)
        records.insert_event(conn, project_id, f"annotator.{status}", {"annotator_id": annotator_id,
                                                                        "by": actor.id}, now)
    return {"annotator_id": annotator_id, "status": status, "evidence": evidence}


def compute_agreement(ctx: Context, actor: Actor, project_id: int) -> dict[str, Any]:
    """Krippendorff's alpha (nominal) and Fleiss' kappa per choice question."""
    with read_tx(ctx.engine) as conn:
        project = load_project(conn, actor, project_id, "review")
        schema = ctx.get_schema(project)
        out = {}
        for q in schema.choice_questions():
            data = _load_question(conn, project_id, q.name, list(q.labels))
            if data is None:
                out[q.name] = {"krippendorff_alpha": None, "fleiss_kappa": None, "answers": 0}
                continue
            answers = quality.encode(*data, label_order=list(q.labels))
            alpha = krippendorff_alpha(answers.item, answers.annotator, answers.label, level="nominal")
            try:
                kappa = fleiss_kappa(answers.item, answers.annotator, answers.label)
            except ValueError:
                kappa = None  # Fleiss needs the same number of answers on every item
            out[q.name] = {
                "krippendorff_alpha": None if alpha is None or np.isnan(alpha) else float(alpha),
                "fleiss_kappa": None if kappa is None or np.isnan(kappa) else float(kappa),
                "answers": int(answers.n_answers),
            }
    return out


# ---------------------------------------------------------------- background re-fit


class RefitScheduler:
    """Re-fits projects whose answers changed since their last fit, about every ``interval_s``.

    It runs in a thread of a serving process, so it keeps out of the annotate loop's way (at 32
    annotators on PostgreSQL a re-fit of 15,000 answers halved the loop's throughput while it
    ran, p99 280 -> 710 ms): the thread runs at a lower CPU priority (Linux: a nice value of its
    own, ``REFIT_NICE`` above the process's), so the event loop and the database get the cores
    first; each wait is drawn from 0.75-1.25 x the interval, so the schedulers of a server's
    workers, started together, do not all count the answers at once; and a project re-fitted
    by any of them is left alone by the others until the interval has passed.
    """

    def __init__(self, ctx: Context, interval_s: float) -> None:
        self.ctx = ctx
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="goldlabel-refit", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    @property
    def native_id(self) -> int | None:
        """The scheduler thread's id in the operating system (None before it starts)."""
        return self._thread.native_id

    def _run(self) -> None:
        _lower_thread_priority(REFIT_NICE)
        while not self._stop.wait(self.interval_s * random.uniform(0.75, 1.25)):  # nosec B311  # jitter of a re-fit interval; no secret
            try:
                self.run_once()
            except Exception:  # a failed re-fit must not kill the scheduler
                log.exception("background re-fit failed")

    def run_once(self) -> list[int]:
        """Re-fit every project with new answers that no process re-fitted within the interval
        (each worker of a server runs a scheduler: a project fitted by one is skipped by the
        others until the interval has passed)."""
        done = []
        with read_tx(self.ctx.engine) as conn:
            stale = quality_store.list_projects_needing_refit(
                conn, fitted_before=now_ms() - int(self.interval_s * 1000)
            )
        for project_id in stale:
            if self._stop.is_set():
                break
            try:
                refit_project(self.ctx, None, project_id)
                done.append(project_id)
            except GoldlabelError as exc:
                if exc.code != "refit_running":
                    raise
        return done


def _lower_thread_priority(increment: int) -> None:
    """Raise the calling thread's nice value by ``increment`` (Linux: each thread has its own;
    raising it needs no privilege). Elsewhere, or where refused, the thread keeps its priority."""
    get_id = getattr(threading, "get_native_id", None)
    if get_id is None or not hasattr(os, "setpriority") or not os.path.isdir("/proc/self/task"):
        return
    tid = get_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))
    except OSError:
        log.debug("could not lower the re-fit thread's priority", exc_info=True)
