"""Read models of the manager console: the project dashboard, an annotator's confusion view,
the item browser and the review queue. Every function checks access like the API does
(``load_project``): non-members get 404, annotators 403."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from goldlabel.domain.errors import not_found
from goldlabel.services import annotators, refit
from goldlabel.services import items as item_service
from goldlabel.services.access import Actor, fetch_project_role, is_allowed, load_project
from goldlabel.services.context import Context
from goldlabel.storage import dashboard as store
from goldlabel.storage import items as item_store
from goldlabel.storage import projects as project_store
from goldlabel.storage import quality as quality_store
from goldlabel.storage.engine import now_ms, read_tx

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS
RECENT_ANSWERS = 500  # per annotator: median time and agreement are over the latest answers
HISTOGRAM_BINS = 10


def console_projects(ctx: Context, actor: Actor) -> list[dict]:
    """Projects the actor can review or manage, with item counts by status."""
    out = []
    with read_tx(ctx.engine) as conn:
        rows = project_store.list_projects(conn, 0, ctx.settings.page_size_max, None if actor.is_admin else actor.id)
        for row in rows:
            role = "admin" if actor.is_admin else fetch_project_role(conn, actor, row["id"])
            if not is_allowed(role, "review"):
                continue
            counts = project_store.count_items_by_status(conn, row["id"])
            out.append({"id": row["id"], "name": row["name"], "description": row["description"],
                        "role": role, "counts": counts, "total": sum(counts.values()),
                        "questions": row["label_schema"].get("questions", [])})
    return out


def load_for_console(ctx: Context, actor: Actor, project_id: int, need: str = "review") -> dict:
    with read_tx(ctx.engine) as conn:
        project = load_project(conn, actor, project_id, need)
        project = dict(project)
        project["role"] = fetch_project_role(conn, actor, project_id)
        project["can_manage"] = is_allowed(project["role"], "manage")
    return project


@dataclass
class Series:
    starts: list[int]  # bucket start times (ms)
    values: list[float]


def _buckets(end_ms: int, size_ms: int, n: int) -> list[int]:
    last = end_ms // size_ms
    return [b for b in range(last - n + 1, last + 1)]


def project_dashboard(ctx: Context, actor: Actor, project_id: int, now: int | None = None) -> dict[str, Any]:
    now = now or now_ms()
    hours = _buckets(now, HOUR_MS, 48)
    days = _buckets(now, DAY_MS, 14)
    with read_tx(ctx.engine) as conn:
        project = load_project(conn, actor, project_id, "review")
        counts = project_store.count_items_by_status(conn, project_id)
        start = store.first_id_since(conn, "answers", project_id, hours[0] * HOUR_MS)
        per_hour = store.answer_counts_by_bucket(conn, project_id, start, HOUR_MS) if start else {}
        start = store.first_id_since(conn, "answers", project_id, days[0] * DAY_MS)
        per_day = store.answer_counts_by_bucket(conn, project_id, start, DAY_MS) if start else {}
        start = store.first_id_since(conn, "events", project_id, days[0] * DAY_MS)
        finals = store.finalizations_by_bucket(conn, project_id, start, DAY_MS) if start else {}
        confidences, sampled = store.confidence_sample(conn, project_id)
        reviews = store.recent_reviews(conn, project_id)
        refit = store.refit_state(conn, project_id)
    # Final items at the end of each day, reconstructed backwards from today's count.
    final_now = counts.get("final", 0)
    final_series, later = [], 0
    for d in reversed(days):
        final_series.append(max(0, final_now - later))
        later += finals.get(d, 0)
    final_series.reverse()
    bins = [0] * HISTOGRAM_BINS
    for c in confidences:
        bins[min(HISTOGRAM_BINS - 1, max(0, int(c * HISTOGRAM_BINS)))] += 1
    return {
        "project": project,
        "counts": {s: counts.get(s, 0) for s in ("final", "open", "needs_review")},
        "total": sum(counts.values()),
        "answers_per_hour": Series([h * HOUR_MS for h in hours], [per_hour.get(h, 0) for h in hours]),
        "answers_per_day": Series([d * DAY_MS for d in days], [per_day.get(d, 0) for d in days]),
        "final_per_day": Series([d * DAY_MS for d in days], final_series),
        "confidence_bins": bins,
        "confidence_sampled": sampled,
        "confidence_n": len(confidences),
        "refit": _refit_summary(refit, now),
        "annotators": annotator_table(ctx, actor, project_id),
        "reviews": reviews,
    }


def annotator_table(ctx: Context, actor: Actor, project_id: int) -> list[dict]:
    """The API's annotator list plus median time per answer and agreement with the consensus,
    both over each annotator's latest answers."""
    rows = annotators.list_annotators(ctx, actor, project_id)
    with read_tx(ctx.engine) as conn:
        for row in rows:
            recent = store.recent_answers_of(conn, project_id, row["annotator_id"], RECENT_ANSWERS)
            durations = [a["duration_ms"] for a in recent if a["duration_ms"] is not None]
            row["median_duration_ms"] = statistics.median(durations) if durations else None
            cons = store.consensus_values(conn, (a["item_id"] for a in recent))
            agree = total = 0
            for a in recent:
                for question, c in cons.get(a["item_id"], {}).items():
                    if question in a["value"] and c["value"] is not None:
                        total += 1
                        agree += int(a["value"][question] == c["value"])
            row["agreement"] = agree / total if total else None
            skills = [s for s in row["skills"].values() if s.get("accuracy") is not None]
            row["skill"] = min(skills, key=lambda s: s["accuracy"]) if skills else None
            row["gold_accuracy"] = row["n_gold_correct"] / row["n_gold"] if row["n_gold"] else None
    return rows


def annotator_detail(ctx: Context, actor: Actor, project_id: int, annotator_id: int) -> dict[str, Any]:
    """Per choice question: the model's confusion matrix (after a re-fit) and the empirical one
    (the annotator's latest answers against the current consensus)."""
    with read_tx(ctx.engine) as conn:
        project = load_project(conn, actor, project_id, "review")
        schema = ctx.get_schema(project)
        names = store.usernames(conn, [annotator_id])
        if annotator_id not in names:
            raise not_found("annotator")
        recent = store.recent_answers_of(conn, project_id, annotator_id, RECENT_ANSWERS)
        cons = store.consensus_values(conn, (a["item_id"] for a in recent))
        gold = store.gold_item_ids(conn, (a["item_id"] for a in recent))
        skills = {s["question"]: s for s in quality_store.list_skills(conn, project_id)
                  if s["annotator_id"] == annotator_id}
        stats = quality_store.fetch_stats(conn, project_id, annotator_id)
    questions = []
    for q in schema.choice_questions():
        labels = list(q.labels)
        index = {label: i for i, label in enumerate(labels)}
        empirical = [[0] * len(labels) for _ in labels]
        n = 0
        for a in recent:
            if a["item_id"] in gold:
                continue
            truth = cons.get(a["item_id"], {}).get(q.name, {}).get("value")
            given = a["value"].get(q.name)
            if truth in index and given in index:
                empirical[index[truth]][index[given]] += 1
                n += 1
        skill = skills.get(q.name)
        questions.append({"name": q.name, "title": q.title or q.name, "labels": labels, "empirical": empirical,
                          "n": n, "model": skill["confusion"] if skill else None, "skill": skill})
    return {"project": project, "annotator_id": annotator_id, "username": names[annotator_id],
            "questions": questions, "stats": stats, "recent_n": len(recent)}


def browse_items(ctx: Context, actor: Actor, project_id: int, after: int, limit: int,
                 **filters: Any) -> dict[str, Any]:
    with read_tx(ctx.engine) as conn:
        load_project(conn, actor, project_id, "review")
        rows = item_store.list_items(conn, project_id, after, limit, **filters)
        cons = store.consensus_values(conn, (r["id"] for r in rows))
    for r in rows:
        r["consensus"] = cons.get(r["id"], {})
    return {"items": rows, "next_after": rows[-1]["id"] if len(rows) == limit else None}


def item_view(ctx: Context, actor: Actor, project_id: int, item_id: int) -> dict[str, Any]:
    """Item detail (as the API gives it) with names for every annotator and reviewer."""
    from goldlabel.services import review as review_service

    detail = item_service.get_item(ctx, actor, project_id, item_id)
    detail["reviews"] = review_service.list_reviews(ctx, actor, project_id, item_id)
    with read_tx(ctx.engine) as conn:
        ids = [a["annotator_id"] for a in detail["answers"]] + [r["reviewer_id"] for r in detail["reviews"]]
        detail["names"] = store.usernames(conn, ids)
        detail["next_review_id"] = store.next_item_with_status(conn, project_id, "needs_review", item_id)
    return detail


def review_queue(ctx: Context, actor: Actor, project_id: int, after: int, limit: int) -> dict[str, Any]:
    return browse_items(ctx, actor, project_id, after, limit, status="needs_review", is_gold=False)


def next_review_item(ctx: Context, actor: Actor, project_id: int, after: int) -> int | None:
    with read_tx(ctx.engine) as conn:
        load_project(conn, actor, project_id, "review")
        return store.next_item_with_status(conn, project_id, "needs_review", after)


def annotator_names(ctx: Context, actor: Actor, project_id: int) -> list[dict]:
    """Members who may answer (for the item browser's annotator filter)."""
    from goldlabel.services import projects as project_service

    return [m for m in project_service.list_members(ctx, actor, project_id)]


def _refit_summary(state: tuple[int | None, int, int | None] | None, now: int) -> dict[str, Any]:
    """The background re-fit as the dashboard shows it: running (since when) and the last run.
    A re-fit claims the project until ``busy_until`` (its start + REFIT_HOLD_MS) and releases it
    when done, so a future ``busy_until`` means one is running now."""
    fitted_at, n_answers, busy_until = state or (None, 0, None)
    running = busy_until is not None and busy_until > now
    return {"running": running, "started_at": busy_until - refit.REFIT_HOLD_MS if running else None,
            "fitted_at": fitted_at, "n_answers": n_answers}
