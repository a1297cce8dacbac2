"""Import items (with optional predictions and gold answers) into a project, from rows.

Rows stream in batches inside ONE write transaction: nothing is visible until the whole file is
valid, and any error rolls everything back (all-or-nothing), unless the caller asks for a
partial import, which keeps the valid rows and reports the rest. Re-importing is idempotent by
``external_id``: existing items are skipped (``on_conflict="skip"``) or updated ("update"),
never duplicated. Memory is bounded by the batch size, whatever the file size.

Each row is checked by services/import_checks.py; the answers a row brings (a Label Studio
import) are written by services/import_answers.py; reading a file into rows is
services/imports.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from goldlabel.domain import chat
from goldlabel.domain.errors import FieldError, GoldlabelError, forbidden
from goldlabel.domain.label_schema import BoxesQuestion
from goldlabel.domain.media_sources import parse_fetch_schemes, parse_hosts
from goldlabel.services.access import Actor, load_project
from goldlabel.services.bulk_gc import fewer_gc_passes
from goldlabel.services.context import Context
from goldlabel.services.import_answers import settle_answered, write_answers
from goldlabel.services.import_checks import check_image_sources, check_row, encode_row
from goldlabel.services.media_in_place import reference_in_place
from goldlabel.storage import consensus_events
from goldlabel.storage import imports as import_store
from goldlabel.storage import projects as project_store
from goldlabel.storage.engine import now_ms, write_tx

# Gold items are answered by every annotator who meets them, so their overlap is unbounded in
# practice; the CHECK constraints still hold against this ceiling.
GOLD_OVERLAP = 1_000_000
ON_CONFLICT = ("skip", "update")


@dataclass
class ImportReport:
    format: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    answers: int = 0  # answers written (a Label Studio import's annotations)
    error_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def add_errors(self, errors: list[FieldError], limit: int) -> None:
        self.error_count += len(errors)
        room = limit - len(self.errors)
        if room > 0:
            self.errors.extend(e.to_dict() for e in errors[:room])

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "format": self.format,
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "skipped": self.skipped,
            "answers": self.answers,
            "errors": self.errors,
            "error_count": self.error_count,
        }


class ImportFailed(GoldlabelError):
    """Raised when an all-or-nothing import had errors; carries the report."""


def _batches(rows: Iterable[tuple[int, Any]], size: int) -> Iterator[list[tuple[int, Any]]]:
    batch: list[tuple[int, Any]] = []
    for entry in rows:
        batch.append(entry)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def ingest_rows(
    ctx: Context,
    actor: Actor | None,
    project_id: int,
    rows: Iterable[tuple[int, Any]],
    *,
    fmt: str = "json",
    on_conflict: str = "skip",
    partial: bool = False,
    empty_ok: bool = True,
    with_answers: bool = False,
) -> ImportReport:
    """Import ``(line_number, row)`` pairs. ``actor=None`` is the local operator (CLI).

    Raises ImportFailed (422, with the report in ``extra``) when an all-or-nothing import had
    errors; nothing is written then. A row source reports a broken spot of the file (a line
    that is not JSON, ...) by yielding ``(line, FieldError)`` in place of a row: it lands in the
    report like any validation error.
    """
    if on_conflict not in ON_CONFLICT:
        raise GoldlabelError(f"on_conflict must be one of {ON_CONFLICT}", code="bad_on_conflict", status=422)
    report = ImportReport(format=fmt)
    max_errors = ctx.settings.import_max_errors
    with fewer_gc_passes(), write_tx(ctx.engine) as conn:
        if actor is not None:
            project = load_project(conn, actor, project_id, "manage")
        else:
            project = project_store.fetch_project(conn, project_id)
            if project is None:
                raise forbidden("no such project")
        schema = ctx.get_schema(project)
        # Image sources the workspace would refuse are refused here (one rule: media_sources).
        boxes = [q for q in schema.questions if isinstance(q, BoxesQuestion)]
        http_hosts = parse_hosts(ctx.settings.media_http_hosts)
        # A chat transcript is checked turn by turn, and has every turn a question is about.
        turns_asked = schema.turns_asked
        fetch_schemes = parse_fetch_schemes(ctx.settings.media_fetch_schemes)
        # Another import into this project commits first (PostgreSQL; SQLite's write transaction
        # already excludes it): the baseline below and every lookup then see its items.
        import_store.serialize_imports(conn, project_id)
        # In-file duplicates are found through the database rather than a set of every
        # external_id (~90 MB at a million rows): batches are staged even after an error (the
        # transaction rolls back at the end), so a row whose external_id matches an item above
        # `baseline` repeats one this file inserted; pre-existing items the file already touched
        # are remembered by their integer id.
        import_store.prefer_indexes(conn)
        staging = Staging(baseline=import_store.fetch_max_item_id(conn))
        answered: dict[int, list[dict]] = {}  # item id -> the answers this import gave it
        for batch in _batches(rows, ctx.settings.import_batch_size):
            report.rows += len(batch)
            clean: list[tuple[int, dict]] = []
            for line, row in batch:
                if row.__class__ is FieldError:  # the file itself is broken here (bad JSON, ...)
                    report.add_errors([row], max_errors)
                    continue
                if row.__class__ is tuple:  # several problems of one entry
                    report.add_errors(list(row), max_errors)
                    continue
                item, errors = check_row(row, line, schema, with_answers=with_answers)
                if not errors and boxes:
                    errors = check_image_sources(boxes, item["data"], line, http_hosts, fetch_schemes)
                if not errors and (turns_asked or chat.FIELD in item["data"]):
                    errors = [FieldError(e.loc, e.code, e.message, line)
                              for e in chat.check_messages(item["data"], turns_asked=turns_asked)]
                if not errors and fetch_schemes:
                    errors = reference_in_place(ctx, project_id, item["data"], line)
                if errors:
                    report.add_errors(errors, max_errors)
                    continue
                clean.append((line, item))
            _write_batch(conn, project, clean, on_conflict, report, staging, max_errors,
                         ctx.settings.max_item_bytes, answered)
        if not report.rows and not empty_ok:
            raise GoldlabelError(
                f"the {fmt} file holds no items (it is empty, or has only a header or blank lines)",
                code="empty_file", status=422,
            )
        if answered and not (report.error_count and not partial):
            settle_answered(ctx, conn, project, answered)
        if report.error_count and not partial:
            conn.rollback()
            report.created = report.updated = report.skipped = 0
            raise ImportFailed(
                f"import rejected: {report.error_count} error(s); nothing was imported",
                code="import_failed",
                status=422,
                errors=[],
                extra={"report": report.to_dict()},
            )
        consensus_events.insert_event(
            conn, project_id, "import.completed",
            {k: v for k, v in report.to_dict().items() if k != "errors"}, now_ms(),
        )
    return report


@dataclass
class Staging:
    baseline: int  # the largest item id before this import: items above it are its own
    touched: set[int] = field(default_factory=set)  # pre-existing items this file skipped or updated
    annotators: dict[str, int | None] = field(default_factory=dict)  # name -> account (None: refused)


def _write_batch(
    conn, project: dict, batch: list[tuple[int, dict]], on_conflict: str, report: ImportReport,
    staging: Staging, max_errors: int, max_item_bytes: int, answered: dict[int, list[dict]] | None = None,
) -> None:
    if not batch:
        return
    now = now_ms()
    pid = project["id"]
    existing = import_store.fetch_existing_ids(conn, pid, [r["external_id"] for _, r in batch])
    new_rows: list[import_store.NewItem] = []
    updates = []
    need_ids: list[str] = []  # new items carrying gold or predictions
    kept: list[dict] = []
    in_batch: set[str] = set()
    baseline, touched = staging.baseline, staging.touched
    for line, r in batch:
        ext = r["external_id"]
        item_id = existing.get(ext)
        if ext in in_batch or (item_id is not None and (item_id > baseline or item_id in touched)):
            report.add_errors([FieldError(("external_id",), "duplicate_external_id",
                                          f"external_id {ext!r} appears twice in this file", line)], max_errors)
            continue
        data_text, meta_text, errors = encode_row(r, line, max_item_bytes)
        if errors:
            report.add_errors(errors, max_errors)
            continue
        in_batch.add(ext)
        kept.append(r)
        if item_id is None:
            new_rows.append((ext, data_text, meta_text, r["priority"]))
            if r["gold"] is not None or r["predictions"] or r.get("answers"):
                need_ids.append(ext)
            continue
        touched.add(item_id)
        if on_conflict == "update":
            updates.append((data_text, meta_text, r["priority"], now, item_id))
    created, ids = import_store.insert_new_items(
        conn, pid, new_rows, target_overlap=project["overlap_min"], overlap_max=project["overlap_max"], now=now,
        want_ids=need_ids,
    )
    import_store.update_items(conn, updates)
    report.created += created
    report.updated += len(updates)
    report.skipped += len(kept) - created - len(updates)
    if on_conflict == "update":
        ids.update(existing)
    answer_rows: list[tuple[int, int, dict]] = []  # (line, item id, answer)
    lines = {id(r): line for line, r in batch}
    for r in kept:
        item_id = ids.get(r["external_id"]) or existing.get(r["external_id"])
        if item_id is not None:
            answer_rows.extend((lines[id(r)], item_id, a) for a in r.get("answers") or ())
    if answer_rows and answered is not None:
        write_answers(conn, project, answer_rows, report, staging, max_errors, now, answered)
    gold_rows, pred_rows = [], []
    for r in kept:
        if r["gold"] is None and not r["predictions"]:
            continue
        item_id = ids.get(r["external_id"])
        if item_id is None:
            continue
        if r["gold"] is not None:
            gold_rows.append({"item_id": item_id, "project_id": pid, "value": r["gold"], "created_at": now})
        for p in r["predictions"]:
            pred_rows.append({"item_id": item_id, "project_id": pid, "created_at": now, **p})
    import_store.upsert_gold(conn, gold_rows)
    import_store.mark_gold(conn, [g["item_id"] for g in gold_rows], GOLD_OVERLAP)
    import_store.upsert_predictions(conn, pred_rows)
