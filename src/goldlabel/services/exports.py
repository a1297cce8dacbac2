"""Export a project's items with their results: JSONL, CSV or Parquet, streamed.

Memory is bounded by one batch: items are read in keyset batches by id, and each batch's
answers, consensus, predictions and gold come from one range query each. JSON values travel as
JSON text from the database to the file, never parsed.

Per item: id, external_id, status, priority, is_gold, data, meta, the consensus answer and its
confidence per question, where that label came from (``source``: consensus, consensus+model, review, gold; auto
later) with who reviewed it and when, and every raw answer. Annotators appear as stable
pseudonyms (a keyed hash of their id with a random per-install salt, or
``settings.pseudonym_salt`` when set) unless a manager asks for real usernames.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from goldlabel.domain.errors import GoldlabelError, forbidden
from goldlabel.domain.splits import DEFAULT_SPLIT_RATIOS, check_split_ratios
from goldlabel.domain.vocabulary import ITEM_STATUSES
from goldlabel.formats import get_format
from goldlabel.services import audit
from goldlabel.services.access import Actor, fetch_project_role, is_allowed, load_project
from goldlabel.services.bulk_gc import fewer_gc_passes
from goldlabel.services.context import Context
from goldlabel.storage import exports as export_store
from goldlabel.storage import projects as project_store
from goldlabel.storage.engine import read_tx, scan_tx
from goldlabel.storage.secrets import install_secret

BATCH_SIZE = 5000
# Streamed responses hand the server chunks of about this size.
CHUNK_BYTES = 1024 * 1024


def pseudonym(annotator_id: int, salt: str) -> str:
    """Stable, salted, not reversible without the salt: ``a_`` + 16 hex digits."""
    key = hashlib.sha256(salt.encode()).digest()
    return "a_" + hashlib.blake2b(str(annotator_id).encode(), key=key, digest_size=8).hexdigest()


def pseudonym_salt(ctx: Context) -> str:
    """``settings.pseudonym_salt`` when set, else the install's random salt (made on first use,
    stored in the database so that every process and every export agree)."""
    salt = ctx.settings.pseudonym_salt or getattr(ctx, "_pseudonym_salt", None)
    if not salt:
        salt = install_secret(ctx.engine, "pseudonym_salt", lambda: secrets.token_hex(32))
        ctx._pseudonym_salt = salt  # type: ignore[attr-defined]
    return salt


@dataclass
class Export:
    """A checked export request: ``write_to(out)`` or ``iter_bytes()`` runs it."""

    ctx: Context
    project: dict
    fmt: str
    status: str | None = None
    include_gold: bool = False
    include_predictions: bool = False
    pseudonymous: bool = True
    questions: list[str] = field(default_factory=list)
    question: str | None = None
    min_confidence: float | None = None

    @property
    def media_type(self) -> str:
        return get_format(self.fmt).MEDIA_TYPE

    @property
    def filename(self) -> str:
        suffix = getattr(get_format(self.fmt), "FILE_EXTENSION", self.fmt)
        return f"project-{self.project['id']}-{self.fmt}.{suffix}" if suffix != self.fmt \
            else f"project-{self.project['id']}.{self.fmt}"

    def _writer(self, out: BinaryIO):
        """The format's writer; the training formats also get the schema, the project's split
        ratios, the question to write and the confidence floor."""
        return get_format(self.fmt).Writer(
            out, self.questions, include_predictions=self.include_predictions, include_gold=self.include_gold,
            schema=self.ctx.get_schema(self.project), split_ratios=project_split_ratios(self.project),
            question=self.question, min_confidence=self.min_confidence,
        )

    def write_to(self, out: BinaryIO, on_batch: Callable[[int], None] | None = None) -> int:
        """Write the whole export to a binary stream; returns the number of items.
        ``on_batch(n)`` is told of every batch of ``n`` items written (a progress bar)."""
        count = 0
        writer = self._writer(_Positioned(out))
        with fewer_gc_passes():
            for records in self._batches():
                writer.write_batch(records)
                count += len(records)
                if on_batch is not None:
                    on_batch(len(records))
            writer.close()
        # The training formats skip items without a label for their question: count what they wrote.
        return getattr(writer, "written", count)

    def item_count(self) -> int:
        """How many items the export holds, as of now (for a progress bar's total)."""
        with read_tx(self.ctx.engine) as conn:
            counts = project_store.count_items_by_status(conn, self.project["id"])
        return counts.get(self.status, 0) if self.status else sum(counts.values())

    def iter_bytes(self) -> Iterator[bytes]:
        """The export as chunks of bytes, produced batch by batch (for a streamed response)."""
        sink = _ChunkSink()
        writer = self._writer(sink)
        with fewer_gc_passes():
            for records in self._batches():
                writer.write_batch(records)
                if sink.size >= CHUNK_BYTES:
                    yield sink.drain()
            writer.close()
        tail = sink.drain()
        if tail:
            yield tail

    def _batches(self) -> Iterator[list[tuple]]:
        """Lists of export records (the tuple layout of ``formats.registry.EXPORT_RECORD``)."""
        pid = self.project["id"]
        salt = pseudonym_salt(self.ctx)
        names: dict[int, str] = {}
        none: tuple = ()
        # One read transaction: the export is one consistent snapshot of the project.
        with scan_tx(self.ctx.engine) as conn:
            export_store.prefer_indexes(conn)
            after = 0
            while True:
                batch = export_store.fetch_item_batch(conn, pid, after, BATCH_SIZE, status=self.status)
                if not batch:
                    return
                first, last = batch[0][0], batch[-1][0]
                after = last
                answer_rows = export_store.fetch_answers(conn, pid, first, last)
                missing = {row[1] for row in answer_rows} - names.keys()
                if missing:
                    if self.pseudonymous:
                        names.update({a: pseudonym(a, salt) for a in missing})
                    else:
                        names.update(export_store.fetch_usernames(conn, missing))
                answers = _group((i, names[a], v, t, d) for i, a, v, t, d in answer_rows)
                consensus_rows = export_store.fetch_consensus(conn, pid, first, last)
                reviewers = {row[5] for row in consensus_rows if row[5] is not None} - names.keys()
                if reviewers:
                    if self.pseudonymous:
                        names.update({a: pseudonym(a, salt) for a in reviewers})
                    else:
                        names.update(export_store.fetch_usernames(conn, reviewers))
                consensus = _group(
                    (i, q, v, c, s, None if r is None else names.get(r), t)
                    for i, q, v, c, s, r, t in consensus_rows
                )
                predictions = (
                    _group(export_store.fetch_predictions(conn, pid, first, last)) if self.include_predictions else {}
                )
                gold = dict(export_store.fetch_gold(conn, pid, first, last)) if self.include_gold else {}
                yield [
                    (item_id, ext, data, meta, priority, status, bool(is_gold), consensus.get(item_id, none),
                     answers.get(item_id, none), predictions.get(item_id, none), gold.get(item_id))
                    for item_id, ext, data, meta, priority, status, is_gold in batch
                ]
                if len(batch) < BATCH_SIZE:
                    return


def _group(rows: Iterable[tuple]) -> dict[int, list[tuple]]:
    """Rows ordered by item id -> {item_id: [rest of each row]}."""
    out: dict[int, list[tuple]] = {}
    get = out.get
    for row in rows:
        bucket = get(row[0])
        if bucket is None:
            out[row[0]] = [row[1:]]
        else:
            bucket.append(row[1:])
    return out


class _WriteOnlyStream:
    """What ParquetWriter needs of a file: sequential writes and tell(), nothing more."""

    def __init__(self) -> None:
        self._pos = 0
        self.closed = False

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False


class _ChunkSink(_WriteOnlyStream):
    """A write-only binary stream whose bytes are taken out in chunks (ParquetWriter writes
    sequentially and asks only for tell(), so no temporary file is needed)."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        data = bytes(data)
        self._parts.append(data)
        self.size += len(data)
        self._pos += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        self.size = 0
        return data


class _Positioned(_WriteOnlyStream):
    """Forwards writes and answers tell() itself: ParquetWriter asks for the position, which a
    pipe (``--output -``) or a socket cannot give. The caller owns ``out`` and closes it."""

    def __init__(self, out: BinaryIO) -> None:
        super().__init__()
        self._out = out

    def write(self, data: bytes) -> int:
        self._out.write(data)
        self._pos += len(data)
        return len(data)

    def flush(self) -> None:
        self._out.flush()


def project_split_ratios(project: dict) -> tuple[float, float, float]:
    """The project's train / validation / test shares (settings ``split_ratios``)."""
    ratios = (project.get("settings") or {}).get("split_ratios")
    return check_split_ratios(ratios) if ratios else DEFAULT_SPLIT_RATIOS


def prepare_export(
    ctx: Context,
    actor: Actor | None,
    project_id: int,
    fmt: str,
    *,
    status: str | None = None,
    include_gold: bool = False,
    include_predictions: bool = False,
    pseudonymous: bool = True,
    question: str | None = None,
    min_confidence: float | None = None,
) -> Export:
    """Check the request (permission, format, status) now, so errors surface before any byte
    is streamed. Reviewers may export; real usernames and gold answers need manage."""
    module = get_format(fmt)
    if status is not None and status not in ITEM_STATUSES:
        raise GoldlabelError(
            f"status must be one of {', '.join(ITEM_STATUSES)}", code="bad_status", status=422
        )
    with read_tx(ctx.engine) as conn:
        if actor is None:
            project = project_store.fetch_project(conn, project_id)
            if project is None:
                raise forbidden("no such project")
        else:
            project = load_project(conn, actor, project_id, "review")
            if (include_gold or not pseudonymous) and not is_allowed(
                fetch_project_role(conn, actor, project_id), "manage"
            ):
                raise forbidden("exporting gold answers or annotator usernames needs the manage permission")
    schema = ctx.get_schema(project)
    questions = [q.name for q in schema.questions]
    if question is not None and question not in questions:
        raise GoldlabelError(f"no question {question!r}; this project has {', '.join(questions)}",
                             code="unknown_question", status=422)
    if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
        raise GoldlabelError("min_confidence must lie in [0, 1]", code="bad_min_confidence", status=422)
    job = Export(ctx, project, module.NAME, status, include_gold, include_predictions, pseudonymous, questions,
                 question, min_confidence)
    # A training format that cannot hold this project's questions fails now, before a byte is sent.
    check = getattr(module.Writer, "check", None)
    if check is not None:
        check(schema, question)
    return job


def export_project(
    ctx: Context,
    actor: Actor | None,
    project_id: int,
    fmt: str,
    out: BinaryIO,
    *,
    status: str | None = None,
    include_gold: bool = False,
    include_predictions: bool = False,
    pseudonymous: bool = True,
    question: str | None = None,
    min_confidence: float | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Write the project's export to ``out`` (a binary stream); returns the number of items.
    ``actor=None`` is the local operator (CLI); ``on_batch`` as in ``Export.write_to``."""
    job = prepare_export(
        ctx, actor, project_id, fmt, status=status, include_gold=include_gold,
        include_predictions=include_predictions, pseudonymous=pseudonymous, question=question,
        min_confidence=min_confidence,
    )
    record_export(ctx, actor, job)
    return job.write_to(out, on_batch)


def record_export(ctx: Context, actor: Actor | None, job: Export) -> None:
    """Log an export about to be sent (before its first byte: a download cut short was still
    a download of what arrived)."""
    audit.record_now(ctx, actor, "export.download", project_id=job.project["id"],
                     target=("project", job.project["id"]),
                     detail={"format": job.fmt, "status": job.status, "include_gold": job.include_gold,
                             "include_predictions": job.include_predictions,
                             "pseudonymous": job.pseudonymous, "question": job.question,
                             "min_confidence": job.min_confidence})
