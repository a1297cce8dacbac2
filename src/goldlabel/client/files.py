"""``Client`` methods: files: imports, media, exports and snapshots."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Literal

from goldlabel.client._base import ClientBase, ExportFormat, ImportFormat, OnConflict, _query
from goldlabel.schemas import (
    ImportReport,
    ItemStatus,
    SnapshotPublic,
)


class FilesMixin(ClientBase):
    """Files in and out: imports, media uploads and downloads, exports and snapshots."""

    def import_file(
        self,
        project_id: int,
        file: str | os.PathLike[str] | IO[bytes],
        *,
        on_conflict: OnConflict = "skip",
        partial: bool = False,
        format: ImportFormat | None = None,
        target: Literal["predictions", "gold"] | None = None,
        question: str | None = None,
        model_version: str | None = None,
        id_field: str | None = None,
    ) -> ImportReport:
        """Upload a JSONL, CSV or Parquet file of items (``format`` defaults to the one the file
        name's extension says). The file is streamed, not read into memory. Same rules as
        ``add_items``: all or nothing unless ``partial``; errors carry line numbers.

        Files of other tools: a Label Studio JSON export (``format="labelstudio"``, found by
        content in a ``.json`` file; ``id_field`` names a data field for the external_id) makes
        items with their answers, predictions and gold; a COCO ``.json`` or a YOLO ``.zip``
        (``format="coco"`` / ``"yolo"``) puts boxes on the project's items as ``target``
        predictions (``model_version``) or gold, for the boxes ``question``."""
        params = _query(on_conflict=on_conflict, partial=partial, format=format, target=target, question=question,
                        model_version=model_version, id_field=id_field)
        path = f"/projects/{int(project_id)}/imports"
        if isinstance(file, (str, os.PathLike)):
            with open(file, "rb") as stream:
                files = {"file": (Path(file).name, stream)}
                res = self._request("POST", path, files=files, params=params)
        else:
            name = Path(str(getattr(file, "name", "") or "items.jsonl")).name
            res = self._request("POST", path, files={"file": (name, file)}, params=params)
        return ImportReport.model_validate(res.json())

    def upload_media(
        self,
        project_id: int,
        files: Iterable[str | os.PathLike[str]],
        *,
        sidecar: str | os.PathLike[str] | None = None,
        on_conflict: OnConflict = "skip",
        partial: bool = False,
    ) -> ImportReport:
        """Upload media files (images, audio, video, PDF, UTF-8 text; or one ``.zip`` of them):
        one item per file, its external_id the file name (a zip's entries: their paths). An
        optional ``sidecar`` JSONL / CSV adds fields to the item of each file (column ``file``).
        A whole folder on the server's disk imports faster with ``goldlabel import PROJECT DIR``."""
        params = _query(on_conflict=on_conflict, partial=partial)
        named = [("file", Path(f)) for f in files]
        if sidecar is not None:
            named.append(("sidecar", Path(sidecar)))
        with contextlib.ExitStack() as stack:
            parts = [(field, (path.name, stack.enter_context(path.open("rb")))) for field, path in named]
            res = self._request("POST", f"/projects/{int(project_id)}/media", files=parts, params=params)
        return ImportReport.model_validate(res.json())

    def download_media(self, url: str, *, thumb: int | None = None, page: int | None = None) -> bytes:
        """The bytes of a media file an item's data points at (``item.data["image"]``, ...), or
        a JPEG thumbnail at most ``thumb`` (128, 256, 512) pixels wide, or page ``page`` (from 1)
        of a PDF as the PNG the workspace shows."""
        prefix = "/api/v1"
        path = url[len(prefix):] if url.startswith(prefix + "/") else url
        res = self._request("GET", path, params=_query(thumb=thumb, page=page), headers={"Accept": "*/*"})
        return res.content

    def export(
        self,
        project_id: int,
        format: ExportFormat,
        dest: str | os.PathLike[str] | IO[bytes],
        *,
        status: ItemStatus | None = None,
        include_predictions: bool = False,
        include_gold: bool = False,
        pseudonymous: bool = True,
        question: str | None = None,
        min_confidence: float | None = None,
    ) -> int:
        """Stream the project's export (one record per item: final answers, confidence, status,
        raw answers) into ``dest``, a path or a binary stream; returns the bytes written.

        Only items with ``status`` when given. Annotators appear under pseudonyms unless
        ``pseudonymous=False``; that and ``include_gold`` need the manage permission.
        A path is written to ``<path>.part`` and renamed when the download is complete, so a
        failed export never leaves a truncated file behind.

        The training formats (``coco``, ``yolo``, ``voc``, ``conll``, ``spacy``, ``hf``) write a
        zip of one ``question``'s labels (default: the first the format can hold), split into
        train / validation / test, optionally only labels at least ``min_confidence`` confident.
        """
        params = _query(
            format=format,
            status=status,
            include_predictions=include_predictions,
            include_gold=include_gold,
            pseudonymous=pseudonymous,
            question=question,
            min_confidence=min_confidence,
        )
        return self._download(f"/projects/{int(project_id)}/export", params, dest)

    def create_snapshot(
        self,
        project_id: int,
        name: str,
        format: ExportFormat = "jsonl",
        *,
        status: ItemStatus | None = None,
        include_predictions: bool = False,
        include_gold: bool = False,
        pseudonymous: bool = True,
        question: str | None = None,
        min_confidence: float | None = None,
    ) -> SnapshotPublic:
        """Freeze the export these options describe under ``name`` (unique in the project): the
        server keeps the bytes, and ``download_snapshot`` returns them unchanged later."""
        body = {"name": name, "format": format, "status": status, "include_predictions": include_predictions,
                "include_gold": include_gold, "pseudonymous": pseudonymous, "question": question,
                "min_confidence": min_confidence}
        res = self._request("POST", f"/projects/{int(project_id)}/snapshots", json=body)
        return SnapshotPublic.model_validate(res.json())

    def list_snapshots(self, project_id: int) -> list[SnapshotPublic]:
        """The project's snapshots, newest first."""
        res = self._request("GET", f"/projects/{int(project_id)}/snapshots")
        return [SnapshotPublic.model_validate(row) for row in res.json()]

    def download_snapshot(self, project_id: int, snapshot_id: int, dest: str | os.PathLike[str] | IO[bytes]) -> int:
        """Write a snapshot's bytes into ``dest`` (a path or a binary stream); returns the bytes written."""
        return self._download(f"/projects/{int(project_id)}/snapshots/{int(snapshot_id)}/download", {}, dest)
