"""Consensus after each answer, inside the submit transaction, in O(answers on the item): the
orchestration around the math of :mod:`goldlabel.quality.consensus` (reading the item's answers,
the stored skills and priors; writing the consensus rows, the item's state and its events).

For each choice question the item's posterior is :func:`goldlabel.quality.item_posterior`'s,
summed from per-answer log likelihoods (:mod:`goldlabel.quality.consensus.choice`: cached for
annotators at the default accuracy, shrunk learned confusions for the others) and a cached log
prior; the other kinds use :func:`goldlabel.quality.consensus.consensus_for`. The item is final
when every question's confidence reaches the project's target and the minimum overlap is met,
goes to review at the maximum overlap, and otherwise asks for one more answer. A gold answer
is also queued for scoring (its annotator's qualification and suspension: :func:`score_gold`,
run after the response by :mod:`goldlabel.services.gold`), and its item's consensus is the
crowd's over its first answers (:func:`gold_decision`), written as any item's. The full re-fit is
:mod:`goldlabel.services.refit`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from goldlabel.domain.errors import GoldlabelError
from goldlabel.domain.label_schema import LabelSchema, RankingQuestion, RatingQuestion
from goldlabel.domain.stopping import decide_status, settle_status
from goldlabel.quality import gold as gold_scoring
from goldlabel.quality.consensus import (
    KINDS,
    LEARNED_SKILL_KINDS,
    answer_log_likelihoods,
    class_prior,
    consensus_for,
    posterior_from_scores,
)
from goldlabel.quality.gold import GoldThresholds
from goldlabel.quality.skill import estimate_skill
from goldlabel.schemas import QualitySettings
from goldlabel.services import cold_start
from goldlabel.services.context import Context
from goldlabel.storage import consensus_events
from goldlabel.storage import gold as gold_store
from goldlabel.storage import models as model_store
from goldlabel.storage import quality as quality_store
from goldlabel.storage import queue as queue_store
from goldlabel.storage.handles import Connection

MIN_GOLD_TO_SUSPEND = 5
#: appended to a consensus row's method where the project model voted (exports: source)
MODEL_METHOD_SUFFIX = "+model"
#: decide_after_answer reads the model's vote itself
UNREAD: Any = object()
# For a project whose settings predate the setting.
QUALIFICATION_ACCURACY = QualitySettings.model_fields["qualification_accuracy"].default


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
        elif q.kind == "keypoints":
            options["skeletons"] = q.skeletons
        scores = gold_scoring.score_values(q.kind, [value.get(q.name)], [truth], thresholds=thresholds,
                                           **options)
        out[q.name] = (float(scores.score[0]), bool(scores.passed[0]))
    return out


def score_gold(ctx: Context, conn: Connection, project: dict, answer: dict, now: int) -> None:
    """Count a gold answer for its annotator: pass or fail by every question the gold holds
    (each kind by its own rule and threshold), then qualification and suspension on the
    passes. Managers see the evidence; nothing of it reaches the annotator (Q8). Runs after
    the submit's response (services/gold.py), in the transaction that takes the answer off the
    queue, with the annotator's stats locked (two scorers never count one annotator at once)."""
    schema = ctx.get_schema(project)
    settings = project["settings"]
    annotator_id = answer["annotator_id"]
    gold = quality_store.fetch_gold_value(conn, answer["item_id"]) or {}
    per_question = score_gold_answer(schema, answer["value"], gold, GoldThresholds.from_settings(settings))
    if not per_question:
        return
    correct = all(passed for _, passed in per_question.values())
    stats = gold_store.lock_stats(conn, project["id"], annotator_id, now)
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
        misses = (misses + [answer["item_id"]])[-10:]
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
            consensus_events.insert_event(conn, project["id"], "annotator.suspended",
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


def item_consensus(ctx: Context, conn: Connection, project: dict, item_answers: list[dict],
                   now: int, known: dict[str, tuple[dict[int, dict], dict]] | None = None,
                   model_vote: dict | None = None) -> tuple[list[dict], float]:
    """Consensus rows for one item and the smallest top-answer probability (NaN: no choice question).
    ``known``: question -> (skill rows by annotator, model row) already read with the answers.
    The posterior is :func:`goldlabel.quality.item_posterior`'s, summed from per-answer log
    likelihoods (cached for annotators at the default accuracy) and a cached log prior.
    ``model_vote``: the project model's vote on the item (storage.models.fetch_model_vote), one
    more answer with its learned skill; it joins only answers humans gave (never alone)."""
    rows: list[dict] = []
    smallest = np.nan
    # An unknown annotator is the project's pooled estimate (services/cold_start.py), not a guess.
    pooled = cold_start.knowledge(ctx, conn, project)
    accuracies = pooled.accuracy if pooled is not None else {}
    for q in ctx.get_schema(project).choice_questions():
        default_accuracy = accuracies.get(q.name, ctx.settings.default_annotator_accuracy)
        labels = list(q.labels)
        index = {label: i for i, label in enumerate(labels)}
        pairs = [(a["annotator_id"], index[a["value"][q.name]]) for a in item_answers
                 if a["value"].get(q.name) in index]
        if not pairs:
            continue
        annotator_ids = [p[0] for p in pairs]
        skills, model = (known or {}).get(q.name, (None, None))
        if skills is None:
            skills = quality_store.fetch_skills(conn, project["id"], q.name, annotator_ids)
        log_likelihoods = answer_log_likelihoods(
            annotator_ids, np.array([p[1] for p in pairs]), skills, len(labels), default_accuracy,
            ctx.settings.skill_prior_answers,
        )
        if model is None:
            model = quality_store.fetch_model(conn, project["id"], q.name)
        prior, log_prior = class_prior(model["prior"] if model and model["prior"] else None, len(labels))
        scores = log_prior + log_likelihoods.sum(axis=0)
        by_model = (model_vote is not None and model_vote["question"] == q.name
                    and model_vote["value"] in index)
        if by_model:
            # imported here: goldlabel.models needs the ml extra, and only a project with a
            # learned model annotator gets this far
            from goldlabel.models import decisive_confidence, model_log_likelihood

            scores = scores + model_log_likelihood(model_vote["skill"], index[model_vote["value"]],
                                                   model_vote["score"], len(labels), default_accuracy,
                                                   ctx.settings.skill_prior_answers)
        posterior = posterior_from_scores(scores, prior)
        top = int(posterior.argmax())
        confidence = float(posterior[top])
        # a label no human gave never stops the item, however sure the model is
        decisive = confidence
        if by_model:
            decisive = float(decisive_confidence(np.array([confidence]), np.array([True]),
                                                 np.array([any(i == top for _, i in pairs)]))[0])
        smallest = decisive if np.isnan(smallest) else min(smallest, decisive)
        rows.append({
            "question": q.name,
            "value": labels[top],
            "confidence": confidence,
            "method": "posterior" + MODEL_METHOD_SUFFIX if by_model else "posterior",
            "contributions": {str(a): labels[i] for a, i in pairs}
            | ({"model": model_vote["value"]} if by_model else {}),
            "agreement": sum(1 for _, i in pairs if i == top) / len(pairs),
            "updated_at": now,
        })
    # The other kinds (multi_choice, rating, text, ranking, spans, boxes).
    kind_rows, kind_smallest = kind_rows_for_item(ctx, conn, project, item_answers, now, pooled, known)
    rows.extend(kind_rows)
    if not np.isnan(kind_smallest):
        smallest = kind_smallest if np.isnan(smallest) else min(smallest, kind_smallest)
    return rows, smallest


def kind_rows_for_item(ctx: Context, conn: Connection | None, project: dict, item_answers: list[dict],
                       now: int, pooled: Any = None,
                       known: dict[str, tuple[dict[int, dict], dict]] | None = None) -> tuple[list[dict], float]:
    """Consensus rows for one item's non-choice questions and their smallest confidence
    (NaN when none was answered). Same row shape as the choice rows. ``pooled``: the project's
    knowledge of unknown annotators (services/cold_start.py ``Pooled``), None for the defaults.
    ``known``: question -> (skill rows by annotator, model row) already read with the answers
    (the PostgreSQL merged submit reads every question's: no connection needed then)."""
    schema: LabelSchema = ctx.get_schema(project)
    settings = project.get("settings") or {}
    rows: list[dict] = []
    smallest = np.nan
    for q in schema.questions:
        if q.kind not in KINDS:
            continue
        default = ctx.settings.default_annotator_accuracy
        q_settings = settings
        if pooled is not None:
            default = pooled.accuracy.get(q.name, default)
            if q.name in pooled.rating_sd:
                q_settings = {**settings, "rating_prior_sd": pooled.rating_sd[q.name]}
        pairs = [(a["annotator_id"], a["value"][q.name]) for a in item_answers
                 if (a.get("value") or {}).get(q.name) is not None]
        if not pairs:
            continue
        ids = [p[0] for p in pairs]
        accuracy = np.full(len(ids), default)
        if q.kind in LEARNED_SKILL_KINDS:
            skills = (known or {}).get(q.name, (None, None))[0]
            if skills is None:
                skills = quality_store.fetch_skills(conn, project["id"], q.name, ids)
            accuracy = np.array([skills[a]["accuracy"] if a in skills and skills[a]["accuracy"] is not None
                                 else default for a in ids], dtype=np.float64)
        value, confidence = consensus_for(q, [p[1] for p in pairs], accuracy, q_settings)
        smallest = confidence if np.isnan(smallest) else min(smallest, confidence)
        rows.append({
            "question": q.name,
            "value": value,
            "confidence": confidence,
            "method": "posterior",
            "contributions": {str(a): v for a, v in pairs},
            "updated_at": now,
        })
    return rows, smallest


def decide_after_answer(ctx: Context, conn: Connection, project: dict, item: dict, item_answers: list[dict],
                        now: int, known: dict[str, tuple[dict[int, dict], dict]] | None = None,
                        model_vote: Any = UNREAD) -> tuple[str, int, list[dict]]:
    """:func:`after_answer`'s decision, from the item's answers (and, in ``known``, skills and
    model already read with them), writing nothing: (item status, target overlap, consensus
    rows with that status). ``item`` is the item as it was before the answer was counted.
    Reads only what ``known`` does not hold (skills and priors of further questions) and, unless
    given, the project model's vote (None: no vote). The stopping rule counts human answers
    only, so the model never finalizes an item alone; with a confident vote the humans' posterior
    reaches the target sooner."""
    if model_vote is UNREAD:
        model_vote = model_store.fetch_model_vote(conn, project["id"], item["id"]) if item_answers else None
    rows, smallest = item_consensus(ctx, conn, project, item_answers, now, known, model_vote)
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


def after_answer(ctx: Context, conn: Connection, project: dict, item: dict, answer: dict, now: int,
                 events: list[dict] | None = None, *, is_edit: bool = False) -> str:
    """Update the item after an answer; return the item status as the annotator is shown it.
    A gold answer is queued for scoring (in this transaction, so that nothing is lost) and
    scored after the response (services/gold.py), and its item's consensus written as any
    other's: a gold submit must cost what any other costs (issue 17). ``is_edit``: an edited
    answer (a gold one is not queued again: gold is scored once, on the first answer).
    ``events``: append the item's outbox event there (the caller inserts them in one statement)
    instead of inserting it here."""
    if item["is_gold"]:
        return _after_gold_answer(ctx, conn, project, item, answer, now, is_edit=is_edit)
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
    consensus_events.replace_consensus(conn, item["id"], project["id"], rows)
    if status != item["status"] or target != item["target_overlap"]:
        queue_store.update_item_state(conn, item["id"], status=status, target_overlap=target, now=now)
        if status != item["status"]:
            event = {"project_id": project["id"], "kind": f"item.{status}",
                     "payload": {"item_id": item["id"], "status": status}, "created_at": now}
            if events is None:
                consensus_events.insert_events(conn, [event])
            else:
                events.append(event)
    return status


def _after_gold_answer(ctx: Context, conn: Connection, project: dict, item: dict, answer: dict, now: int,
                       *, is_edit: bool = False) -> str:
    """A gold answer: queued for scoring (services/gold.py), then the same reads, decision and
    consensus write as a normal answer's, so that the submit does the work a normal one does
    (issue 17: on SQLite a gold submit that skipped the consensus write was measurably
    *faster*). What it writes is the crowd's consensus on the gold item (:func:`gold_decision`):
    its rows in the consensus table like any item's, for managers to compare with the gold
    answer (calibration). The item's own state is left alone (a gold item stays open, and its
    target overlap is what keeps it serving)."""
    if not is_edit:
        gold_store.insert_pending(conn, answer["id"], project["id"], now)
    choice = ctx.get_schema(project).choice_questions()
    known = None
    limit = project["overlap_max"]
    if choice:
        first, skills, model = quality_store.fetch_item_answers_with_skills(
            conn, project["id"], item["id"], choice[0].name, limit)
        known = {choice[0].name: (skills, model)}
    else:
        first = queue_store.fetch_first_answers(conn, item["id"], limit)
    # Read as a normal answer reads it (equal work), never used: the project model is trained on
    # the gold answers (storage.models.fetch_training_labels), and the status shown for a gold
    # item must not lean on them.
    model_store.fetch_model_vote(conn, project["id"], item["id"])
    status, target, rows = gold_decision(ctx, conn, project, first, now, known)
    consensus_events.replace_consensus(conn, item["id"], project["id"], rows)
    if status != "open" or target != project["overlap_min"]:
        # Where a normal item's state would move, the gold item's is written too, with its own
        # values (the answer's count already set updated_at to now: no change), so that the
        # statement count matches. Its outbox event is not mirrored: it would announce a status
        # the item does not have (one row less in the submit's one events insert).
        queue_store.update_item_state(conn, item["id"], status=item["status"],
                                      target_overlap=item["target_overlap"], now=now)
    return status


def gold_decision(ctx: Context, conn: Connection | None, project: dict, first: list[dict], now: int,
                  known: dict[str, tuple[dict[int, dict], dict]] | None = None) -> tuple[str, int, list[dict]]:
    """The crowd's consensus on a gold item, as a normal item of the project would have it: the
    item's ``first`` answers (at most the project's max overlap of them, oldest first: a gold
    item is served to more annotators than any overlap), the same posterior without the model's
    vote, the same stopping rule from the project's minimum overlap. Returns (the status an
    annotator is shown, the target overlap a normal item would now have, the consensus rows
    with that status).

    Q8: a gold item stays open for everyone (its answer is known), so its real status would give
    it away (a normal item of the same project goes final or to review); annotators are shown
    this status instead. The rows are the crowd's label of the gold item and its confidence
    (source ``consensus``): exports, the item browser and the dashboard show them beside the
    gold answer; the gold item itself never goes final, so no training label, review or
    auto-label calibration reads them (those read final items)."""
    rows, smallest = item_consensus(ctx, conn, project, first, now, known)
    status, target = decide_status(
        np.array([len(first)]),
        np.array([smallest]),
        np.array([project["overlap_min"]]),
        project["overlap_min"],
        project["overlap_max"],
        project["settings"].get("target_confidence", 0.95),
    )
    shown = str(status[0])
    return shown, int(target[0]), [{**r, "status": shown} for r in rows]


def gold_status_as_seen(ctx: Context, conn: Connection | None, project: dict, first: list[dict], now: int,
                        known: dict[str, tuple[dict[int, dict], dict]] | None = None) -> str:
    """The status an annotator is shown for a gold item with these ``first`` answers
    (:func:`gold_decision`)."""
    return gold_decision(ctx, conn, project, first, now, known)[0]


# ---------------------------------------------------------------- items no annotator is left for


def settle_stalled(ctx: Context, conn: Connection, project: dict, now: int, item_id: int | None = None) -> int:
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
    consensus_events.insert_events(conn, [
        {"project_id": project["id"], "kind": f"item.{u['status']}",
         "payload": {"item_id": u["b_id"], "status": u["status"], "by": "no_annotator_left"}, "created_at": now}
        for u in updates
    ])
    return moved
