"""Import items (with optional predictions and gold answers) into a project.

Rows stream in batches inside ONE write transaction: nothing is visible until the whole file is
valid, and any error rolls everything back (all-or-nothing), unless the caller asks for a
partial import, which keeps the valid rows and reports the rest. Re-importing is idempotent by
``external_id``: existing items are skipped (``on_conflict="skip"``) or updated ("update"),
never duplicated. Memory is bounded by the batch size, whatever the file size.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from goldlabel.domain import chat
from goldlabel.domain.errors import FieldError, GoldlabelError, forbidden
from goldlabel.domain.json_limits import MESSAGES, check_json, printable, text_problem
from goldlabel.domain.label_schema import BoxesQuestion, LabelSchema
from goldlabel.domain.media_sources import parse_fetch_schemes, parse_hosts
from goldlabel.formats import detect_format, parquet
from goldlabel.services.access import Actor, load_project
from goldlabel.services.bulk_gc import fewer_gc_passes
from goldlabel.services.context import Context
from goldlabel.services.media_in_place import reference_in_place
from goldlabel.storage import consensus_events
from goldlabel.storage import imports as import_store
from goldlabel.storage import projects as project_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx

# Gold items are answered by every annotator who meets them, so their overlap is unbounded in
# practice; the CHECK constraints still hold against this ceiling.
GOLD_OVERLAP = 1_000_000
ITEM_KEYS = frozenset({"external_id", "data", "priority", "meta", "predictions", "gold"})
# Keys an export writes (results, not input): ignored on import so an export re-imports as is.
EXPORT_KEYS = frozenset({"id", "status", "is_gold", "answer", "confidence", "source", "reviewer", "reviewed_at",
                         "answers"})
ON_CONFLICT = ("skip", "update")
MAX_PRIORITY = 2**31 - 1


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


def check_row(row: Any, line: int, schema: LabelSchema, *, with_answers: bool = False
              ) -> tuple[dict | None, list[FieldError]]:
    """Validate one row by hand (no model per row: this runs a million times per import).

    ``with_answers``: the row may carry ``answers`` (``[{"annotator", "value", "created_at",
    "duration_ms"}]``, what a Label Studio import makes of annotations) and its predictions may
    answer some questions only; elsewhere ``answers`` is what an export wrote, and is ignored."""
    if row.__class__ is dict:
        # Fast path for the common row (no gold, no predictions, well-formed): plain type
        # checks only; anything unusual falls through to the full check below.
        get = row.get
        ext, data, meta, priority = get("external_id"), get("data"), get("meta"), get("priority", 0)
        if priority is None:
            priority = 0
        if (
            ext.__class__ is str and 0 < len(ext) <= 255 and ext.isascii() and "\x00" not in ext
            and data.__class__ is dict
            and priority.__class__ is int and -MAX_PRIORITY <= priority <= MAX_PRIORITY
            and (meta is None or meta.__class__ is dict)
            and get("gold") is None and get("predictions") is None
            and ITEM_KEYS.issuperset(row)
        ):
            return {"external_id": ext, "data": data, "priority": priority, "meta": meta, "gold": None,
                    "predictions": ()}, []
    if not isinstance(row, dict):
        return None, [FieldError((), "not_an_object", "each row must be a JSON object", line)]
    errors: list[FieldError] = []
    unknown = () if ITEM_KEYS.issuperset(row) else row.keys() - ITEM_KEYS - EXPORT_KEYS
    if unknown:
        errors.append(
            FieldError((min(unknown),), "unknown_field",
                       f"unknown field(s) {', '.join(sorted(unknown))}; expected {', '.join(sorted(ITEM_KEYS))}", line)
        )
    ext = row.get("external_id")
    if isinstance(ext, int) and not isinstance(ext, bool):
        ext = str(ext)
    if not isinstance(ext, str) or not ext or len(ext) > 255:
        errors.append(FieldError(("external_id",), "bad_external_id",
                                 "external_id must be a non-empty string of at most 255 characters", line))
    elif (code := text_problem(ext)) is not None:
        errors.append(FieldError(("external_id",), code, f"external_id: {MESSAGES[code]}", line))
        ext = printable(ext)
    data = row.get("data")
    if not isinstance(data, dict):
        errors.append(FieldError(("data",), "bad_data", "data must be a JSON object", line))
        data = None
    priority = row.get("priority", 0)
    if priority is None:
        priority = 0
    if not isinstance(priority, int) or isinstance(priority, bool) or abs(priority) > MAX_PRIORITY:
        errors.append(FieldError(("priority",), "bad_priority", "priority must be an integer", line))
    meta = row.get("meta")
    if meta is not None and not isinstance(meta, dict):
        errors.append(FieldError(("meta",), "bad_meta", "meta must be a JSON object", line))
    gold = row.get("gold")
    if gold is not None:
        gold = _check_answer(schema, gold, data, ("gold",), line, errors)
    preds = row.get("predictions")
    clean_preds: list[dict] = []
    if preds is not None:
        if not isinstance(preds, list):
            errors.append(FieldError(("predictions",), "bad_predictions", "predictions must be a list", line))
        else:
            for i, pred in enumerate(preds):
                clean = _check_prediction(schema, pred, data, i, line, errors, partial=with_answers)
                if clean is not None:
                    clean_preds.append(clean)
    clean_answers = _check_answers(schema, row.get("answers"), data, line, errors) if with_answers else ()
    # Data and meta are checked when they are serialised (_encode); answers here.
    if gold is not None:
        errors.extend(check_json(gold, ("gold",), line=line))
    for i, pred in enumerate(clean_preds):
        errors.extend(check_json(pred["value"], ("predictions", i, "value"), line=line))
    if errors:
        return None, errors
    return {
        "external_id": ext,
        "data": data,
        "priority": priority,
        "meta": meta,
        "gold": gold,
        "predictions": clean_preds,
        "answers": clean_answers,
    }, []


def _check_answers(schema, answers, data, line, errors) -> list[dict]:
    clean: list[dict] = []
    if answers is None:
        return clean
    if not isinstance(answers, list):
        errors.append(FieldError(("answers",), "bad_answers", "answers must be a list", line))
        return clean
    for i, answer in enumerate(answers):
        loc = ("answers", i)
        name = answer.get("annotator") if isinstance(answer, dict) else None
        if not isinstance(name, str) or not 0 < len(name) <= 150 or text_problem(name) is not None:
            errors.append(FieldError(loc, "bad_answer", "an answer needs an 'annotator' name and a 'value'", line))
            continue
        try:
            value = schema.validate_answer(answer.get("value"), data, loc_prefix=(*loc, "value"), partial=True)
        except GoldlabelError as exc:
            errors.extend(FieldError(e.loc, e.code, e.message, line) for e in exc.errors)
            continue
        errors.extend(check_json(value, (*loc, "value"), line=line))
        created, duration = answer.get("created_at"), answer.get("duration_ms")
        clean.append({"annotator": name, "value": value,
                      "created_at": created if isinstance(created, int) and created > 0 else None,
                      "duration_ms": duration if isinstance(duration, int) and 0 <= duration < 2**31 else None})
    return clean


def _check_image_sources(boxes, data: dict, line: int, http_hosts, fetch_schemes) -> list[FieldError]:
    errors: list[FieldError] = []
    for q in boxes:
        q.check_image_source(data, ("data",), errors, http_hosts, fetch_schemes)
    return [FieldError(e.loc, e.code, e.message, line) for e in errors]


def _check_answer(schema, value, data, loc, line, errors, partial: bool = False) -> dict | None:
    try:
        return schema.validate_answer(value, data, loc_prefix=loc, partial=partial)
    except GoldlabelError as exc:
        errors.extend(FieldError(e.loc, e.code, e.message, line) for e in exc.errors)
        return None


def _check_prediction(schema, pred, data, i, line, errors, partial: bool = False) -> dict | None:
    loc = ("predictions", i)
    if not isinstance(pred, dict) or "value" not in pred:
        errors.append(FieldError(loc, "bad_prediction", "a prediction is an object with a 'value'", line))
        return None
    score = pred.get("score")
    if score is not None and (not isinstance(score, (int, float)) or isinstance(score, bool)):
        errors.append(FieldError((*loc, "score"), "bad_score", "score must be a number", line))
        return None
    version = pred.get("model_version", "")
    if not isinstance(version, str) or len(version) > 200:
        errors.append(FieldError((*loc, "model_version"), "bad_model_version", "model_version must be a string", line))
        return None
    value = _check_answer(schema, pred["value"], data, (*loc, "value"), line, errors, partial)
    if value is None:
        return None
    return {"value": value, "score": None if score is None else float(score), "model_version": version}


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
        staging = _Staging(baseline=import_store.fetch_max_item_id(conn))
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
                    errors = _check_image_sources(boxes, item["data"], line, http_hosts, fetch_schemes)
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
            _settle_answered(ctx, conn, project, answered)
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
class _Staging:
    baseline: int  # the largest item id before this import: items above it are its own
    touched: set[int] = field(default_factory=set)  # pre-existing items this file skipped or updated
    annotators: dict[str, int | None] = field(default_factory=dict)  # name -> account (None: refused)


def _encode(row: dict, line: int, limit: int) -> tuple[str, str | None, list[FieldError]]:
    """The row's data and meta as stored (JSON text), or the errors that keep them out: too deep,
    unencodable text or integers (domain.json_limits), or larger than ``limit`` bytes."""
    texts: list[str | None] = []
    for key in ("data", "meta"):
        value = row[key]
        if value is None:
            texts.append(None)
            continue
        try:
            encoded = orjson.dumps(value)
        except orjson.JSONEncodeError:
            encoded = None
        errors = check_json(value, (key,), line=line, encoded=encoded)
        if errors:
            return "", None, errors
        if encoded is None:  # nothing storable refused, yet orjson did: a type JSON lacks
            return "", None, [FieldError((key,), "not_json", f"{key} holds a value JSON cannot represent", line)]
        if len(encoded) > limit:
            return "", None, [FieldError((key,), "too_large", f"{key} is {len(encoded)} bytes as JSON; "
                                         f"the limit is {limit} (setting max_item_bytes)", line)]
        texts.append(encoded.decode())
    return texts[0] or "", texts[1], []


def _write_batch(
    conn, project: dict, batch: list[tuple[int, dict]], on_conflict: str, report: ImportReport,
    staging: _Staging, max_errors: int, max_item_bytes: int, answered: dict[int, list[dict]] | None = None,
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
        data_text, meta_text, errors = _encode(r, line, max_item_bytes)
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
        _write_answers(conn, project, answer_rows, report, staging, max_errors, now, answered)
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


def _write_answers(conn, project: dict, rows: list[tuple[int, int, dict]], report: ImportReport,
                   staging: _Staging, max_errors: int, now: int, answered: dict[int, list[dict]]) -> None:
    """Answers of named annotators (a Label Studio import). Each name is an annotator account
    made for the import: no password, inactive (it cannot sign in or hold a token) and no
    project member (the queue never waits for it), so quality and exports see its answers like
    anyone's. A name taken by a real account is refused. An item keeps one answer per annotator
    (Q2): an answer the item already has from that annotator is left as it is (re-importing the
    same export changes nothing). The item's overlap ceiling grows to hold the answers (Q1)."""
    names = {a["annotator"] for _, _, a in rows} - staging.annotators.keys()
    if names:
        accounts = import_store.fetch_users_by_name(conn, sorted(names))
        for name in sorted(names):
            account = accounts.get(name)
            if account is None:
                staging.annotators[name] = import_store.insert_imported_annotator(conn, name, now)
            elif account["password_hash"] is None and not account["is_active"]:
                staging.annotators[name] = account["id"]
            else:
                staging.annotators[name] = None  # a real account: refused below, once per row
    have = import_store.fetch_answer_pairs(conn, sorted({item_id for _, item_id, _ in rows}))
    new: list[dict] = []
    counts: dict[int, int] = {}
    for line, item_id, a in rows:
        annotator_id = staging.annotators[a["annotator"]]
        if annotator_id is None:
            report.add_errors([FieldError(("answers",), "annotator_name_taken",
                                          f"annotator {a['annotator']!r} is the name of an existing account; "
                                          "import with another annotator prefix", line)], max_errors)
            continue
        if (item_id, annotator_id) in have:
            continue
        have.add((item_id, annotator_id))
        at = a["created_at"] or now
        new.append({"project_id": project["id"], "item_id": item_id, "annotator_id": annotator_id,
                    "value": a["value"], "status": "submitted", "duration_ms": a["duration_ms"],
                    "created_at": at, "updated_at": at, "schema_version": project.get("schema_version")})
        counts[item_id] = counts.get(item_id, 0) + 1
    import_store.insert_answers(conn, new)
    import_store.add_answer_counts(conn, counts, now)
    for answer in new:  # what quality.after_answer reads of an answer: its value and annotator
        answered.setdefault(answer["item_id"], []).append(answer)
    report.answers += len(new)


def _settle_answered(ctx: Context, conn, project: dict, answered: dict[int, list[dict]]) -> None:
    """Consensus, status and (on gold items) annotator scores of the items that got answers, as
    if the answers had been submitted one by one: quality.decide_after_answer decides each item
    as a submission would (gold items' answers are scored at once, an answer at a time, to
    score their annotators); the writes go out in bulk, a few statements per batch instead of
    four per item."""
    from goldlabel.services import consensus as quality_service
    from goldlabel.storage import quality as quality_store
    from goldlabel.storage import queue as queue_store

    now = now_ms()
    pid = project["id"]
    choice = ctx.get_schema(project).choice_questions()
    ids = sorted(answered)
    for start in range(0, len(ids), 1000):
        items_by_id = import_store.fetch_items(conn, ids[start:start + 1000])
        consensus_rows: dict[int, list[dict]] = {}
        states, events = [], []
        for item_id, item in items_by_id.items():
            if item["is_gold"]:
                # Imported history, not a submit: nothing to hide in its timing, so scored here
                # (a submitted gold answer is scored after the response, services/gold.py).
                for answer in answered[item_id]:
                    quality_service.score_gold(ctx, conn, project, answer, now)
                continue
            known = None
            if choice:
                item_answers, skills, model = quality_store.fetch_item_answers_with_skills(
                    conn, pid, item_id, choice[0].name)
                known = {choice[0].name: (skills, model)}
            else:
                item_answers = queue_store.fetch_item_answers(conn, item_id)
            status, target, rows = quality_service.decide_after_answer(ctx, conn, project, item, item_answers, now,
                                                                       known)
            consensus_rows[item_id] = rows
            if status != item["status"] or target != item["target_overlap"]:
                states.append({"b_id": item_id, "b_status": status, "b_target": target, "b_now": now})
                if status != item["status"]:
                    events.append({"project_id": pid, "kind": f"item.{status}",
                                   "payload": {"item_id": item_id, "status": status}, "created_at": now})
        import_store.replace_consensus_many(conn, pid, consensus_rows)
        import_store.set_item_states(conn, states)
        if events:
            consensus_events.insert_events(conn, events)


# Formats of other tools: a Label Studio export makes items; COCO and YOLO label existing items.
TOOL_FORMATS = ("labelstudio", "coco", "yolo")


def import_file(
    ctx: Context,
    actor: Actor | None,
    project_id: int,
    path_or_stream: str | os.PathLike | BinaryIO,
    *,
    fmt: str | None = None,
    on_conflict: str = "skip",
    partial: bool = False,
    filename: str | None = None,
    target: str | None = None,
    question: str | None = None,
    model_version: str | None = None,
    id_field: str | None = None,
    media_root: str | os.PathLike | None = None,
) -> ImportReport:
    """Import a JSONL / CSV / Parquet / JSON-array file (a path or a binary stream), streamed row by row,
    or a file of another tool (``fmt`` labelstudio, coco or yolo: services.tool_imports).

    The format is ``fmt`` when given, else the extension of the path (or of ``filename``, or of
    the stream's ``name``); a ``.json`` file that holds a Label Studio export or a COCO file is
    read as one. Parquet needs a seekable stream. Errors of the file itself (a
    malformed JSON line, a CSV row with the wrong number of cells) land in the same report as
    validation errors, with their line numbers. ``target`` (predictions or gold), ``question``
    and ``model_version`` go with coco and yolo; ``id_field`` and ``media_root`` (Label Studio's
    media folder, for the files uploaded into it) with labelstudio.
    """
    name = filename or (Path(path_or_stream).name if isinstance(path_or_stream, (str, os.PathLike))
                        else getattr(path_or_stream, "name", None))
    if fmt is None and isinstance(name, str) and name.lower().endswith(".json"):
        raw = Path(path_or_stream).read_bytes() if isinstance(path_or_stream, (str, os.PathLike)) \
            else path_or_stream.read()
        fmt = _sniff_json(raw) or "json"
        path_or_stream = io.BytesIO(raw)
    if fmt is not None and fmt.lower() in TOOL_FORMATS:
        return _import_tool_file(ctx, actor, project_id, path_or_stream, fmt.lower(), on_conflict=on_conflict,
                                 partial=partial, target=target, question=question, model_version=model_version,
                                 id_field=id_field, media_root=media_root)
    if target is not None or question is not None or model_version is not None:
        raise GoldlabelError("target, question and model_version go with a coco or yolo import",
                             code="bad_import_option", status=422)
    if isinstance(path_or_stream, (str, os.PathLike)):
        path = Path(path_or_stream)
        module = detect_format(filename or path.name, fmt)
        with path.open("rb", buffering=1024 * 1024) as stream:
            return ingest_rows(ctx, actor, project_id, _read_rows(ctx, module, stream), fmt=module.NAME,
                               on_conflict=on_conflict, partial=partial, empty_ok=False)
    module = detect_format(name, fmt)
    return ingest_rows(ctx, actor, project_id, _read_rows(ctx, module, path_or_stream), fmt=module.NAME,
                       on_conflict=on_conflict, partial=partial, empty_ok=False)


def _sniff_json(raw: bytes) -> str | None:
    """labelstudio or coco when a .json file holds one (by its content), else None. An array is
    judged by its first element alone (the reader decodes one element at a time)."""
    from goldlabel.formats import json_array, labelstudio

    if raw.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{":
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None  # the JSON-array reader reports where it breaks
        if isinstance(doc, dict) and all(isinstance(doc.get(k), list) for k in ("images", "annotations", "categories")):
            return "coco"
        return None
    first = next(iter(json_array.read_rows(io.BytesIO(raw))), None)
    if first is not None and labelstudio.looks_like_tasks(first[1]):
        return "labelstudio"
    return None


def _import_tool_file(ctx, actor, project_id, source, fmt: str, *, on_conflict, partial, target, question,
                      model_version, id_field, media_root=None) -> ImportReport:
    from goldlabel.formats import labelstudio
    from goldlabel.services import tool_imports

    if fmt == "labelstudio":
        if target is not None or question is not None or model_version is not None:
            raise GoldlabelError("a Label Studio export brings its own answers, predictions and gold; "
                                 "target, question and model_version go with coco and yolo",
                                 code="bad_import_option", status=422)
        options = labelstudio.Options(id_field=id_field)
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as stream:
                return tool_imports.import_labelstudio(ctx, actor, project_id, stream, on_conflict=on_conflict,
                                                       partial=partial, options=options, media_root=media_root)
        return tool_imports.import_labelstudio(ctx, actor, project_id, source, on_conflict=on_conflict,
                                               partial=partial, options=options, media_root=media_root)
    if id_field is not None or media_root is not None:
        raise GoldlabelError("id_field and media_root go with a labelstudio import", code="bad_import_option",
                             status=422)
    return tool_imports.import_labels(ctx, actor, project_id, source, fmt, target=target or "predictions",
                                      question=question, model_version=model_version, partial=partial)


def _read_rows(ctx: Context, module: Any, stream: BinaryIO) -> Iterable[tuple[int, Any]]:
    if module is parquet:  # compressed: bounded by what it decodes to as well as by its size
        settings = ctx.settings
        return parquet.read_rows(stream, parquet.ReadLimits(
            max_rows=settings.max_import_rows, expansion=settings.parquet_max_expansion,
            min_bytes=settings.parquet_min_decoded_bytes))
    return module.read_rows(stream)


def authorize_import(ctx: Context, actor: Actor, project_id: int) -> None:
    """Fail fast (404 / 403) before an upload is read; ingest_rows checks again in its transaction."""
    with read_tx(ctx.engine) as conn:
        load_project(conn, actor, project_id, "manage")
