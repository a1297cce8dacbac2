"""Browsing items (managers and reviewers), item detail, events; bulk actions, soft delete and
its undo, the purge sweep; an annotator's report of an item they cannot answer."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

from goldlabel.domain.errors import GoldlabelError, not_found
from goldlabel.domain.splits import splits_of
from goldlabel.quality.gold import GoldThresholds
from goldlabel.quality.skill import estimate_skill
from goldlabel.schemas import BulkItemsRequest, ItemReport, RestoreItemsRequest
from goldlabel.services import audit, cold_start, login_guard
from goldlabel.services.access import Actor, fetch_project_role, is_allowed, load_project
from goldlabel.services.background import BackgroundLoop
from goldlabel.services.consensus import score_gold_answer
from goldlabel.services.context import Context
from goldlabel.services.item_refs import decode_item
from goldlabel.services.queue.views import public_answer
from goldlabel.storage import consensus_events
from goldlabel.storage import items as item_store
from goldlabel.storage import quality as quality_store
from goldlabel.storage import queue as queue_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx
from goldlabel.storage.handles import Connection

log = logging.getLogger(__name__)

ITEM_FIELDS = (
    "id", "external_id", "data", "meta", "priority", "status", "is_gold", "answer_count",
    "target_overlap", "created_at", "updated_at", "flag", "flagged_by", "flagged_at", "deleted_at",
)
#: items per transaction of a bulk action over a filter
BULK_BATCH = 500
#: a split filter is tested in Python (a split is a hash of the external_id): a page reads at
#: most this many items of the project looking for matches, then hands back a cursor
SPLIT_SCAN = 5000


def public_item(row: dict) -> dict[str, Any]:
    return {k: row[k] for k in ITEM_FIELDS}


def _split_ratios(project: dict) -> tuple[float, float, float]:
    from goldlabel.services.exports import project_split_ratios

    return project_split_ratios(project)


def check_filters(project: dict, filters: dict[str, Any]) -> dict[str, Any]:
    """Drop unset filters; 422 when consensus filters lack their question."""
    filters = {k: v for k, v in filters.items() if v is not None and v is not False}
    if "question" not in filters and any(k in filters for k in ("label", "min_confidence", "max_confidence",
                                                                "disagreement")):
        raise GoldlabelError(
            "label, confidence and disagreement filters need ?question=NAME", code="missing_question", status=422
        )
    for key in filters.get("meta") or {}:
        if not key or len(key) > 100 or not all(ch.isalnum() or ch in "_-." for ch in key):
            raise GoldlabelError(f"meta key {key!r}: letters, digits, _ - . only", code="bad_meta_key", status=422)
    return filters


def filtered_page(conn: Connection, project: dict, after: int, limit: int,
                  filters: dict[str, Any]) -> tuple[list[dict], int | None]:
    """A keyset page of the project's items matching ``filters`` and its next cursor (None at
    the end). Without a split filter: one indexed query. With one: batches in id order, each
    item's split computed, until the page is full or SPLIT_SCAN items were read (the cursor then
    points past the last one read, so a page may come back short, never wrong)."""
    filters = dict(filters)
    split = filters.pop("split", None)
    if split is None:
        rows = item_store.list_items(conn, project["id"], after, limit, **filters)
        return rows, rows[-1]["id"] if len(rows) == limit else None
    ratios = _split_ratios(project)
    out: list[dict] = []
    cursor, read = after, 0
    while read < SPLIT_SCAN:
        batch = item_store.list_items(conn, project["id"], cursor, max(limit, 200), **filters)
        for row, row_split in zip(batch, splits_of([r["external_id"] for r in batch], ratios), strict=True):
            cursor = row["id"]
            if row_split == split:
                out.append(row)
                if len(out) == limit:
                    return out, cursor
        read += len(batch)
        if len(batch) < max(limit, 200):
            return out, None
    return out, cursor


def _answers_left_out(ctx: Context, conn: Connection, project: dict, item_ids: list[int], now: int, *,
                      restored: bool = False) -> None:
    """Items just deleted (or, ``restored``, back): their answers leave (or rejoin) the
    statistics at once. The re-fit, the pooled knowledge and the annotator table read only live
    items' answers (storage.quality.is_live_item): the project is marked due for a re-fit and
    this process's pooled knowledge dropped. The gold record is a running count, kept per
    submit: the answers to these gold items are scored again, as the submit scores them
    (services.consensus.score_gold_answer, the project's current thresholds), and taken out of
    (put back into) their annotators' counts. A qualification or suspension already decided on
    them stands (a manager can reinstate)."""
    if not item_ids:
        return
    quality_store.mark_refit_due(conn, project["id"])
    cold_start.forget(ctx, project["id"])
    pairs = quality_store.fetch_gold_answer_pairs(conn, item_ids)
    if not pairs:
        return
    sign = 1 if restored else -1
    schema = ctx.get_schema(project)
    thresholds = GoldThresholds.from_settings(project["settings"])
    moved: dict[int, dict[str, Any]] = {}
    for annotator_id, value, gold in pairs:
        per_question = score_gold_answer(schema, value, gold, thresholds)
        if not per_question:
            continue
        acc = moved.setdefault(annotator_id, {"n": 0, "correct": 0, "by_question": {}})
        acc["n"] += 1
        acc["correct"] += int(all(passed for _, passed in per_question.values()))
        for name, (score, passed) in per_question.items():
            counts = acc["by_question"].setdefault(name, [0, 0, 0.0])
            counts[0] += 1
            counts[1] += int(passed)
            counts[2] += score
    prior_mean = ctx.settings.default_annotator_accuracy
    prior = (2 * prior_mean, 2 * (1 - prior_mean))  # as services.consensus scores a gold answer
    for annotator_id, acc in moved.items():
        stats = quality_store.fetch_stats(conn, project["id"], annotator_id)
        if stats is None:
            continue
        n_gold = max(0, stats["n_gold"] + sign * acc["n"])
        n_correct = min(n_gold, max(0, stats["n_gold_correct"] + sign * acc["correct"]))
        evidence = dict(stats["evidence"] or {})
        by_question = {k: dict(v) for k, v in (evidence.get("gold_by_question") or {}).items()}
        for name, (n, passed, score) in acc["by_question"].items():
            counts = by_question.setdefault(name, {"n": 0, "passed": 0, "score_sum": 0.0})
            counts["n"] = max(0, counts["n"] + sign * n)
            counts["passed"] = min(counts["n"], max(0, counts["passed"] + sign * passed))
            counts["score_sum"] = round(max(0.0, counts["score_sum"] + sign * score), 6)
        evidence.update(n_gold=n_gold, n_gold_correct=n_correct, gold_by_question=by_question)
        if n_gold:
            estimate = estimate_skill(n_correct, n_gold, prior=prior)
            evidence.update(accuracy=float(estimate.mean), interval=[float(estimate.lower), float(estimate.upper)])
        else:
            evidence.pop("accuracy", None)
            evidence.pop("interval", None)
        quality_store.upsert_stats(conn, project["id"], annotator_id, n_gold=n_gold, n_gold_correct=n_correct,
                                   evidence=evidence, updated_at=now)


def check_text_index(ctx: Context) -> bool:
    """Whether the database has the text index of the item browser's search; logs why not
    (a server start calls it: a deployment without it works, its searches scan)."""
    with read_tx(ctx.engine) as conn:
        present = item_store.has_text_index(conn)
    if not present:
        log.warning("item text search: the database has no text index (%s), so each search in the item "
                    "browser scans the project's items; docs/deployment.md, 'Text search', says how to add it",
                    "pg_trgm index ix_item_text_body" if ctx.engine.dialect.name == "postgresql"
                    else "FTS5 table items_fts")
    return present


def list_items(
    ctx: Context,
    actor: Actor,
    project_id: int,
    after: int,
    limit: int,
    **filters: Any,
) -> list[dict]:
    """Filters: see storage.items.item_filters, plus split (train / validation / test)."""
    return list_items_page(ctx, actor, project_id, after, limit, **filters)["items"]


def list_items_page(ctx: Context, actor: Actor, project_id: int, after: int, limit: int,
                    **filters: Any) -> dict[str, Any]:
    with read_tx(ctx.engine) as conn:
        project = load_project(conn, actor, project_id, "review")
        rows, next_after = filtered_page(conn, project, after, limit, check_filters(project, filters))
    return {"items": [public_item(r) for r in rows], "next_after": next_after}


def get_item(ctx: Context, actor: Actor, project_id: int, item_id: int) -> dict:
    with read_tx(ctx.engine) as conn:
        load_project(conn, actor, project_id, "review")
        row = item_store.fetch_item(conn, project_id, item_id)
        if row is None or row["status"] == "deleted":
            raise not_found("item")
        detail = public_item(row)
        detail["answers"] = [public_answer(a) for a in item_store.fetch_answers(conn, item_id)]
        detail["predictions"] = [
            {"value": p["value"], "score": p["score"], "model_version": p["model_version"],
             "created_at": p["created_at"]}
            for p in item_store.fetch_predictions(conn, item_id)
        ]
        detail["consensus"] = [
            {k: c[k] for k in ("question", "value", "confidence", "method", "status", "contributions", "agreement",
                           "updated_at", "source", "reviewer_id", "reviewed_at")}
            for c in consensus_events.fetch_consensus(conn, item_id)
        ]
        # Gold answers are for managers only: reviewers may also answer items.
        role = fetch_project_role(conn, actor, project_id)
        detail["gold"] = item_store.fetch_gold(conn, item_id) if is_allowed(role, "manage") else None
    return detail


def delete_item(ctx: Context, actor: Actor, project_id: int, item_id: int) -> dict[str, Any]:
    """Soft delete: hidden everywhere, restorable for settings.delete_undo_s."""
    now = now_ms()
    with write_tx(ctx.engine) as conn:
        project = load_project(conn, actor, project_id, "manage")
        if not item_store.soft_delete_items(conn, project_id, [item_id], now):
            raise not_found("item")
        _answers_left_out(ctx, conn, project, [item_id], now)
        audit.record(conn, actor, "item.delete", project_id=project_id, target=("item", item_id))
    return {"deleted_at": now, "undo_until": now + ctx.settings.delete_undo_s * 1000}


def bulk_action(ctx: Context, actor: Actor, project_id: int, spec: BulkItemsRequest) -> dict[str, Any]:
    """Apply ``spec.action`` to ``spec.item_ids`` or to every item matching ``spec.filter``, in
    transactions of BULK_BATCH items (walked by id, a keyset: no COUNT, no OFFSET), so a
    million-item action never holds the write lock for long. Returns the counts."""
    if (spec.item_ids is None) == (spec.filter is None):
        raise GoldlabelError("give item_ids or filter (one of them)", code="bad_selection", status=422)
    if spec.action == "priority" and spec.priority is None:
        raise GoldlabelError("action priority needs priority", code="missing_priority", status=422)
    now = now_ms()
    with read_tx(ctx.engine) as conn:
        project = load_project(conn, actor, project_id, "manage")
    filters = None
    if spec.filter is not None:
        filters = check_filters(project, spec.filter.model_dump())
        if filters.get("status") == "deleted":
            raise GoldlabelError("deleted items can only be restored", code="bad_selection", status=422)
    matched = changed = batches = 0
    ids = sorted(set(spec.item_ids or []))
    cursor = 0
    while True:
        with write_tx(ctx.engine) as conn:
            load_project(conn, actor, project_id, "manage")
            if filters is None:
                chunk = ids[:BULK_BATCH]
                ids = ids[BULK_BATCH:]
                keys = item_store.existing_item_keys(conn, project_id, chunk) if chunk else []
                keys = [k for k in keys if item_store.fetch_item_status(conn, k[0]) != "deleted"]
                more = bool(ids)
            elif "split" not in filters:
                keys = item_store.list_item_keys(conn, project_id, cursor, BULK_BATCH, **filters)
                more = len(keys) == BULK_BATCH
                cursor = keys[-1][0] if keys else cursor
            else:
                rows, next_after = filtered_page(conn, project, cursor, BULK_BATCH, filters)
                keys = [(r["id"], r["external_id"]) for r in rows]
                more = next_after is not None
                cursor = next_after or cursor
            if keys:
                batches += 1
                matched += len(keys)
                chunk_ids = [k[0] for k in keys]
                if spec.action == "delete":
                    done = item_store.soft_delete_items(conn, project_id, chunk_ids, now)
                    _answers_left_out(ctx, conn, project, done, now)
                elif spec.action == "priority":
                    done = item_store.set_priority(conn, project_id, chunk_ids, int(spec.priority), now)
                else:
                    done = item_store.send_to_review(conn, project_id, chunk_ids, now)
                    consensus_events.insert_events(conn, [
                        {"project_id": project_id, "kind": "item.needs_review",
                         "payload": {"item_id": i, "status": "needs_review", "by": "bulk"}, "created_at": now}
                        for i in done
                    ])
                changed += len(done)
        if not more:
            break
    out: dict[str, Any] = {"action": spec.action, "matched": matched, "changed": changed, "batches": batches}
    audit.record_now(ctx, actor, "item.bulk", project_id=project_id,
                     detail={**out, "filter": spec.filter.model_dump(exclude_none=True) if spec.filter else None,
                             "item_ids": len(spec.item_ids or [])})
    if spec.action == "delete":
        out |= {"deleted_at": now, "undo_until": now + ctx.settings.delete_undo_s * 1000}
    return out


def restore_items(ctx: Context, actor: Actor, project_id: int, spec: RestoreItemsRequest) -> dict[str, int]:
    """Undo a delete within settings.delete_undo_s: by ids, or every item one delete removed."""
    if (spec.item_ids is None) == (spec.deleted_at is None):
        raise GoldlabelError("give item_ids or deleted_at (one of them)", code="bad_selection", status=422)
    now = now_ms()
    since = now - ctx.settings.delete_undo_s * 1000
    restored = 0
    with write_tx(ctx.engine) as conn:
        project = load_project(conn, actor, project_id, "manage")
        back = item_store.restore_items(conn, project_id, since, item_ids=spec.item_ids,
                                        deleted_at=spec.deleted_at, now=now)
        _answers_left_out(ctx, conn, project, back, now, restored=True)
        restored = len(back)
        audit.record(conn, actor, "item.restore", project_id=project_id, detail={"restored": restored})
    return {"restored": restored}


def report_item(ctx: Context, actor: Actor, project_id: int, item_ref: str, spec: ItemReport) -> dict[str, Any]:
    """An annotator cannot answer the item (its media failed to load): the item is flagged with
    the reason and goes to review. An annotator reports through their lease on the item (which
    is skipped: never served to them again), naming the item by the reference the lease showed
    (services/item_refs.py); reviewers and managers may report any item, by reference or id.
    The answer names the item as the caller named it."""
    from goldlabel.services.queue import lease as lease_service

    with read_tx(ctx.engine) as conn:
        load_project(conn, actor, project_id, "annotate")
        role = fetch_project_role(conn, actor, project_id)
        if spec.lease_token is None and not is_allowed(role, "review"):
            raise GoldlabelError("an annotator reports an item through its lease: give lease_token",
                                 code="lease_required", status=422)
        if item_ref.isdigit() and len(item_ref) < 19 and is_allowed(role, "review"):
            item_id = int(item_ref)
        else:
            item_id = decode_item(ctx, project_id, actor.id, item_ref)
        lease = None
        if spec.lease_token is not None:
            lease = queue_store.fetch_lease_by_token(conn, hashlib.sha256(spec.lease_token.encode()).hexdigest())
            if lease is None or lease["annotator_id"] != actor.id or lease["project_id"] != project_id \
                    or lease["item_id"] != item_id:
                raise not_found("lease")
    if lease is not None and lease["status"] in ("active", "expired"):
        lease_service.skip_item(ctx, actor, project_id, spec.lease_token)
    now = now_ms()
    with write_tx(ctx.engine) as conn:
        before = item_store.flag_item(conn, project_id, item_id, spec.reason, actor.id, now)
        if before is None:
            raise not_found("item")
        consensus_events.insert_events(conn, [{"project_id": project_id, "kind": "item.needs_review",
                                      "payload": {"item_id": item_id, "status": "needs_review",
                                                  "by": "report", "reason": spec.reason},
                                      "created_at": now}])
    return {"item_id": item_ref, "flag": spec.reason, "status": "needs_review"}


def purge_expired(ctx: Context, now: int | None = None, batch: int = 1000) -> dict[str, int]:
    """Remove items and projects deleted longer than settings.delete_undo_s ago, in batches."""
    before = (now or now_ms()) - ctx.settings.delete_undo_s * 1000
    from goldlabel.storage import projects as project_store

    with write_tx(ctx.engine) as conn:
        n_projects = project_store.purge_deleted_projects(conn, before)
    n_items = 0
    while True:
        with write_tx(ctx.engine) as conn:
            n = item_store.purge_deleted_items(conn, before, batch)
        n_items += n
        if n < batch:
            break
    return {"items": n_items, "projects": n_projects}


TEXT_INDEX_BATCH = 5000
# SQLite has one writer: a batch holds the write lock that every lease and submit needs, so its
# batches are small, and the background indexer rests between them REST_FACTOR times as long as
# each took (it holds the lock a quarter of the time at most; search reads the tail it has not
# reached by a scan meanwhile). With 5,000 items back to back, an annotator's request after a
# 1M-item import waited 300-600 ms for minutes; with 500-item batches and equal rests, p99 was
# 57-510 ms while it ran (benchmarks/annotate_loop.py, 2026-12-07).
SQLITE_TEXT_INDEX_BATCH = 200
REST_FACTOR = 3.0


def index_text(ctx: Context, batch: int | None = None, max_batches: int | None = None,
               pause: Callable[[float], bool] | None = None) -> int:
    """Add the items above the text index's watermark to it, ``batch`` items per transaction
    (so imports and other writes interleave), until caught up (or ``max_batches``); how many.
    Imports do not index (their rate is the point): this does, after them. Nothing without the
    index (docs/deployment.md, "Text search"). ``pause(seconds)``, when given, is called between
    SQLite batches with ``REST_FACTOR`` times the time the batch took (the background indexer
    waits that long); it returns True to stop."""
    sqlite = ctx.engine.dialect.name == "sqlite"
    if batch is None:
        batch = SQLITE_TEXT_INDEX_BATCH if sqlite else TEXT_INDEX_BATCH
    with read_tx(ctx.engine) as conn:
        if not item_store.has_text_index(conn):
            return 0
        mark, highest = item_store.text_index_lag(conn)
    if highest <= mark:
        return 0  # caught up: no lock taken
    top = None
    if not sqlite:
        with write_tx(ctx.engine, durable=False) as conn:
            top = item_store.text_index_safe_top(conn)
        if top is None:
            return 0
    done = runs = 0
    while max_batches is None or runs < max_batches:
        started = time.monotonic()
        # durable=False: the index can be rebuilt from the items, and a lost batch takes its
        # watermark with it (one transaction), so a crash only makes the indexer do it again.
        with write_tx(ctx.engine, durable=False) as conn:
            n = item_store.index_text_batch(conn, batch, top)
        done += n
        runs += 1
        if n < batch:
            break
        if sqlite and pause is not None and pause(REST_FACTOR * (time.monotonic() - started)):
            break
    if done and not sqlite:
        with write_tx(ctx.engine, durable=False) as conn:
            why = item_store.flush_text_index(conn)
        if why:
            log.info("text index: the GIN pending list is left to autovacuum (%s)", why)
    return done


class TextIndexer(BackgroundLoop):
    """Runs index_text about every ``interval_s`` in a thread of a serving process, resting
    between SQLite batches (and stopping there when asked)."""

    thread_name = "goldlabel-text-index"
    failure = "text index: adding items failed"
    nice = 10  # as the re-fit and model threads: the annotate loop gets the cores first

    def __init__(self, ctx: Context, interval_s: float) -> None:
        super().__init__(interval_s)
        self.ctx = ctx

    def run_once(self) -> int:
        return index_text(self.ctx, pause=self._stop.wait)


class PurgeSweeper(BackgroundLoop):
    """Runs purge_expired, the audit retention sweep and the login throttle's sweep about every
    ``interval_s`` in a thread of a serving process."""

    thread_name = "goldlabel-purge"
    failure = "purge of deleted items failed"

    def __init__(self, ctx: Context, interval_s: float) -> None:
        super().__init__(interval_s)
        self.ctx = ctx

    def run_once(self) -> dict[str, int]:
        purged = purge_expired(self.ctx)
        # The other housekeeping of the same rhythm: the audit log's retention and the login
        # throttle's forgotten rows; one failing must not skip the other.
        for sweep in (audit.sweep_expired, login_guard.sweep):
            try:
                sweep(self.ctx)
            except Exception:
                log.exception("%s failed", sweep.__qualname__)
        return purged


def list_answers(ctx: Context, actor: Actor, project_id: int, after: int, limit: int) -> list[dict]:
    with read_tx(ctx.engine) as conn:
        load_project(conn, actor, project_id, "review")
        return [public_answer(a) for a in item_store.list_project_answers(conn, project_id, after, limit)]


def list_events(ctx: Context, actor: Actor, project_id: int, after: int, limit: int) -> list[dict]:
    with read_tx(ctx.engine) as conn:
        load_project(conn, actor, project_id, "manage")
        return [
            {k: e[k] for k in ("id", "kind", "payload", "created_at")}
            for e in consensus_events.list_events(conn, project_id, after, limit)
        ]
