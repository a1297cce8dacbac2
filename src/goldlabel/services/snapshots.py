"""Snapshots: an export frozen under a name, re-downloadable later byte for byte.

The export runs as any other (same formats, filters and permission: review; gold and real
usernames need manage), into a temporary file that is hashed on the way; the bytes then go to
the media store and one row records what was frozen. Nothing changes a snapshot afterwards: a
later export with the same options may differ (new answers, reviews, re-fits), the snapshot does
not. Its name is unique in the project.
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from typing import Any, BinaryIO

from goldlabel.domain.errors import GoldlabelError, not_found
from goldlabel.formats import get_format
from goldlabel.services.access import Actor, load_project
from goldlabel.services.context import Context
from goldlabel.services.exports import prepare_export
from goldlabel.storage import consensus_events
from goldlabel.storage import snapshots as snapshot_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx


class _Hashing:
    """A write-only stream into a temporary file that hashes and counts what passes."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.out.write(data)

    def flush(self) -> None:
        self.out.flush()


def create_snapshot(ctx: Context, actor: Actor | None, project_id: int, name: str, fmt: str, *,
                    status: str | None = None, include_gold: bool = False, include_predictions: bool = False,
                    pseudonymous: bool = True, question: str | None = None,
                    min_confidence: float | None = None) -> dict[str, Any]:
    """Freeze the export these options describe under ``name``; returns the snapshot row."""
    name = name.strip()
    if not name or len(name) > 200:
        raise GoldlabelError("a snapshot name is 1 to 200 characters", code="bad_snapshot_name", status=422)
    job = prepare_export(ctx, actor, project_id, fmt, status=status, include_gold=include_gold,
                         include_predictions=include_predictions, pseudonymous=pseudonymous,
                         question=question, min_confidence=min_confidence)
    with read_tx(ctx.engine) as conn:
        if snapshot_store.fetch_snapshot_by_name(conn, project_id, name) is not None:
            raise GoldlabelError(f"project {project_id} already has a snapshot named {name!r}",
                                 code="snapshot_exists", status=409)
    module = get_format(job.fmt)
    key = f"{int(project_id)}/snapshots/{uuid.uuid4().hex}.{getattr(module, 'FILE_EXTENSION', job.fmt)}"
    with tempfile.TemporaryFile() as spool:
        sink = _Hashing(spool)
        count = job.write_to(sink)
        spool.seek(0)
        ctx.media.put(key, spool, sink.size)
    options = {"status": status, "include_gold": include_gold, "include_predictions": include_predictions,
               "pseudonymous": pseudonymous, "question": question, "min_confidence": min_confidence}
    row = {"project_id": project_id, "name": name, "format": job.fmt, "options": options, "item_count": count,
           "size_bytes": sink.size, "sha256": sink.digest.hexdigest(), "object_key": key,
           "created_by": actor.id if actor is not None else None, "created_at": now_ms()}
    with write_tx(ctx.engine) as conn:
        if snapshot_store.fetch_snapshot_by_name(conn, project_id, name) is not None:
            raise GoldlabelError(f"project {project_id} already has a snapshot named {name!r}",
                                 code="snapshot_exists", status=409)
        row = snapshot_store.insert_snapshot(conn, row)
        consensus_events.insert_event(conn, project_id, "export.snapshot_created",
                             {"snapshot_id": row["id"], "name": name, "format": job.fmt, "items": count},
                             row["created_at"])
    return row


def list_snapshots(ctx: Context, actor: Actor | None, project_id: int) -> list[dict[str, Any]]:
    with read_tx(ctx.engine) as conn:
        if actor is not None:
            load_project(conn, actor, project_id, "review")
        return snapshot_store.fetch_snapshots(conn, project_id)


def get_snapshot(ctx: Context, actor: Actor | None, project_id: int, snapshot_id: int) -> dict[str, Any]:
    """The snapshot row, if ``actor`` may export the project; one made with gold or real
    usernames needs the manage permission, like the export it froze."""
    with read_tx(ctx.engine) as conn:
        if actor is not None:
            load_project(conn, actor, project_id, "review")
        row = snapshot_store.fetch_snapshot(conn, project_id, snapshot_id)
        if row is None:
            raise not_found("snapshot")
        options = row["options"] or {}
        if actor is not None and (options.get("include_gold") or not options.get("pseudonymous", True)):
            load_project(conn, actor, project_id, "manage")
    return row


def media_type_of(row: dict[str, Any]) -> str:
    return get_format(row["format"]).MEDIA_TYPE


def filename_of(row: dict[str, Any]) -> str:
    module = get_format(row["format"])
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in row["name"])[:80]
    return f"project-{row['project_id']}-{safe}.{getattr(module, 'FILE_EXTENSION', row['format'])}"
