"""The full re-fit of a project and its background scheduler.

The re-fit runs the project's aggregation model (:mod:`goldlabel.quality`; the recommended one
unless the project names another) over all of its choice answers (gold-clamped) and the per-kind
re-fits (:func:`goldlabel.quality.consensus.refit_question`) over the other questions' answers;
it stores the learned skills and class priors that the per-answer update
(:mod:`goldlabel.services.consensus`) uses, and refreshes every item's consensus and state in
short write batches. :class:`RefitScheduler` runs it in the background for projects with new
answers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from goldlabel import quality
from goldlabel.domain.errors import GoldlabelError, not_found
from goldlabel.domain.label_schema import LabelSchema
from goldlabel.domain.stopping import decide_status
from goldlabel.quality.consensus import KINDS, RefitResult, refit_question
from goldlabel.quality.skill import confusions_from_skills
from goldlabel.services import cold_start
from goldlabel.services import models as model_service
from goldlabel.services.access import Actor, load_project
from goldlabel.services.background import BackgroundLoop
from goldlabel.services.consensus import MODEL_METHOD_SUFFIX, settle_stalled
from goldlabel.services.context import Context
from goldlabel.storage import consensus_events
from goldlabel.storage import items as item_store
from goldlabel.storage import models as model_store
from goldlabel.storage import projects as project_store
from goldlabel.storage import quality as quality_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx
from goldlabel.storage.handles import Connection

log = logging.getLogger(__name__)

REFIT_BATCH = 5000
REFIT_HOLD_MS = 15 * 60 * 1000
# How much nicer than its process the background re-fit thread runs (RefitScheduler).
REFIT_NICE = 10


# ---------------------------------------------------------------- reading the answers


def load_choice_answers(conn: Connection, project_id: int, question: str, labels: list[str]):
    """(item ids, annotator ids, labels) of one choice question's answers whose label is one
    of ``labels``; None when there is none."""
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


def load_kind_answers(conn: Connection, project_id: int, schema: LabelSchema,
                 page: int = 5000) -> dict[str, tuple[np.ndarray, np.ndarray, list]]:
    """(item_ids, annotator_ids, values) per non-choice question, over all the project's answers."""
    names = [q.name for q in schema.questions if q.kind in KINDS]
    out: dict[str, tuple[list, list, list]] = {n: ([], [], []) for n in names}
    if not names:
        return {}
    after = 0
    while True:
        batch = item_store.list_project_answers(conn, project_id, after, page)
        if not batch:
            break
        after = batch[-1]["id"]
        for a in batch:
            value = a["value"] or {}
            for n in names:
                v = value.get(n)
                if v is not None:
                    out[n][0].append(a["item_id"])
                    out[n][1].append(a["annotator_id"])
                    out[n][2].append(v)
    return {n: (np.asarray(i, np.int64), np.asarray(j, np.int64), v) for n, (i, j, v) in out.items() if v}


# ---------------------------------------------------------------- the re-fit


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
            data = load_choice_answers(conn, pid, q.name, list(q.labels))
            if data is not None:
                loaded[q.name] = (q, data, quality_store.fetch_gold_labels(conn, pid, q.name))
        kind_answers = load_kind_answers(conn, pid, schema)
        pooled = cold_start.compute(ctx, conn, project)
        # The project model as one more annotator (services/models/): its votes on the items
        # humans answered, so EM learns its confusion per confidence band only there.
        model_question = model_service.annotator_question(conn, project, schema)
        model_votes = model_store.fetch_model_votes(conn, pid, model_question) if model_question else []
    confidences: dict[int, float] = {}
    consensus_rows: list[dict] = []
    for name, (q, (item_ids, annotator_ids, labels), gold) in loaded.items():
        answers = quality.encode(item_ids, annotator_ids, labels, label_order=list(q.labels))
        n_humans, model_codes = answers.n_annotators, None
        if name == model_question and model_votes:
            answers, model_codes, voted = _with_model_votes(answers, list(q.labels), model_votes)
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
        # Humans' answers only: the model's vote is no agreement of the crowd.
        human = answers.annotator < n_humans
        agreement = np.bincount(answers.item[human], weights=answers.label[human] == codes[answers.item[human]],
                                minlength=answers.n_items) / np.bincount(answers.item[human], minlength=answers.n_items)
        with_model = np.zeros(len(fitted_items), dtype=bool)
        if model_codes is not None:
            with_model[answers.item[~human]] = True
        decisive = conf
        if model_codes is not None:
            from goldlabel.models import decisive_confidence

            # a label no human gave never stops the item, however sure the model is
            decisive = decisive_confidence(conf, with_model, agreement > 0)
        for item_id, code, c, d, agree, by_model in zip(fitted_items.tolist(), codes.tolist(), conf.tolist(),
                                                        decisive.tolist(), agreement.tolist(), with_model.tolist()):
            confidences[item_id] = min(confidences.get(item_id, 1.0), d)
            consensus_rows.append({"item_id": item_id, "question": name, "value": label_order[code],
                                   "confidence": c, "method": method + MODEL_METHOD_SUFFIX if by_model else method,
                                   "contributions": None, "agreement": agree, "updated_at": now})
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
            if i < n_humans
        ]
        with write_tx(ctx.engine) as conn:
            quality_store.replace_skills(conn, pid, name, skill_rows)
            if name == model_question:
                learned = None
                if model_codes is not None and confusions is not None:
                    from goldlabel.models import model_skill

                    learned = {"question": name, "fitted_at": now, "items": voted,
                               **model_skill(confusions, skills, per_annotator, model_codes)}
                model_store.set_model_annotator(conn, pid, learned, now)
            quality_store.upsert_model(conn, pid, name, prior=None if prior is None else prior.tolist(),
                                       method=method, n_answers=int(answers.n_answers), fitted_at=now)
        summary["questions"][name] = {"method": method, "answers": int(answers.n_answers),
                                      "items": int(answers.n_items), "annotators": int(answers.n_annotators)}
    for fit in refit_kinds(schema, kind_answers, default_accuracy=ctx.settings.default_annotator_accuracy,
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
    if model_question is None:
        with write_tx(ctx.engine) as conn:  # setting off, or no model: nothing may stay learned
            model_store.set_model_annotator(conn, pid, None, now)
    summary["items_changed"] = _write_refit(ctx, project, consensus_rows, confidences, now)
    with write_tx(ctx.engine) as conn:
        quality_store.upsert_model(conn, pid, "", n_answers=n_answers, fitted_at=now)
        summary["items_changed"] += settle_stalled(ctx, conn, project, now)
    return summary


def _with_model_votes(answers, labels: list[str], votes: list[tuple[int, Any, float]]):
    """``answers`` plus the model's votes (goldlabel.models.add_model_votes: on items with human
    answers only), the bands' annotator codes and how many items it voted on."""
    position = {int(i): j for j, i in enumerate(np.asarray(answers.item_ids).tolist())}
    code_of = {label: k for k, label in enumerate(labels)}
    label = np.full(answers.n_items, -1, dtype=np.int64)
    score = np.zeros(answers.n_items)
    for item_id, value, s in votes:
        j = position.get(item_id)
        if j is not None and value in code_of:
            label[j], score[j] = code_of[value], s
    from goldlabel.models import add_model_votes  # the ml extra: only with a model there

    combined, codes = add_model_votes(answers, label, score)
    return combined, codes, int(len(combined.item) - len(answers.item))


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


def _announce_status_changes(conn: Connection, project_id: int, updates: list[dict], before: dict[int, str],
                             now: int) -> None:
    """Outbox events for the items the re-fit moved (those answered meanwhile kept their state)."""
    moved = [u for u in updates if u["status"] != before[u["b_id"]]]
    if not moved:
        return
    now_status = quality_store.fetch_item_counts(conn, [u["b_id"] for u in moved])
    consensus_events.insert_events(conn, [
        {"project_id": project_id, "kind": f"item.{u['status']}",
         "payload": {"item_id": u["b_id"], "status": u["status"], "by": "refit"}, "created_at": now}
        for u in moved if now_status[u["b_id"]][2] == u["status"]
    ])


def refit_kinds(schema: LabelSchema, loaded: Mapping[str, tuple[np.ndarray, np.ndarray, list]], *,
                default_accuracy: float, settings: Mapping[str, Any] | None, now: int,
                pooled: Any = None) -> list[RefitResult]:
    """Re-fit every non-choice question that has answers (``loaded`` from :func:`load_kind_answers`);
    ``pooled``: the project's knowledge of unknown annotators, as the per-answer update uses it."""
    out = []
    for q in schema.questions:
        if q.kind in KINDS and q.name in loaded:
            item_ids, annotator_ids, values = loaded[q.name]
            accuracy, q_settings = default_accuracy, dict(settings or {})
            if pooled is not None:
                accuracy = pooled.accuracy.get(q.name, accuracy)
                if q.name in pooled.rating_sd:
                    q_settings["rating_prior_sd"] = pooled.rating_sd[q.name]
            out.append(refit_question(q, item_ids, annotator_ids, values,
                                      default_accuracy=accuracy, settings=q_settings, now=now))
    return out


# ---------------------------------------------------------------- background re-fit


class RefitScheduler(BackgroundLoop):
    """Re-fits projects whose answers changed since their last fit, about every ``interval_s``.

    It runs in a thread of a serving process, so it keeps out of the annotate loop's way (a
    re-fit at full priority halved the loop's throughput while it ran; measured:
    docs/benchmarks.md, "Numbers behind the code"): the thread runs at a lower CPU priority (Linux: a nice value of its
    own, ``REFIT_NICE`` above the process's), so the event loop and the database get the cores
    first; each wait is drawn from 0.75-1.25 x the interval, so the schedulers of a server's
    workers, started together, do not all count the answers at once; and a project re-fitted
    by any of them is left alone by the others until the interval has passed.
    """

    thread_name = "goldlabel-refit"
    failure = "background re-fit failed"
    nice = REFIT_NICE

    def __init__(self, ctx: Context, interval_s: float) -> None:
        super().__init__(interval_s)
        self.ctx = ctx

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
            if self.stopping:
                break
            try:
                refit_project(self.ctx, None, project_id)
                done.append(project_id)
            except GoldlabelError as exc:
                if exc.code != "refit_running":
                    raise
        return done
