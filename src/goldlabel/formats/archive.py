"""A zip archive written to a stream that cannot seek (an HTTP response, a pipe).

Training formats are several files: small ones known whole (a label file per image, an image
decoded from a data: URI) go into the zip at once; large ones that grow while the export runs
(a COCO file per split, a list per split) are written to spooled temporary files and copied in
by ``close``. Memory stays bounded by the spool size plus zipfile's directory entry per member.
zipfile writes data descriptors when the stream cannot seek, so nothing is buffered whole.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import zipfile
from typing import BinaryIO

# Spooled members smaller than this stay in memory; larger ones go to a temporary file.
SPOOL_BYTES = 4 * 1024 * 1024


class ZipArchive:
    def __init__(self, out: BinaryIO) -> None:
        self._zip = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED)
        self._members: dict[str, tempfile.SpooledTemporaryFile] = {}
        self._stamp = time.localtime()[:6]

    def _info(self, name: str, size: int) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self._stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.file_size = size
        return info

    def member(self, name: str) -> BinaryIO:
        """The append-only file of member ``name`` (created on first use), zipped at close."""
        spool = self._members.get(name)
        if spool is None:
            spool = self._members[name] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed at close()
        return spool  # type: ignore[return-value]

    def put(self, name: str, data: bytes) -> None:
        """A member known whole, written into the zip now."""
        with self._zip.open(self._info(name, len(data)), "w") as dst:
            dst.write(data)

    def close(self) -> None:
        for name in sorted(self._members):
            spool = self._members.pop(name)
            size = spool.tell()
            spool.seek(0)
            with self._zip.open(self._info(name, size), "w", force_zip64=size > 0x7FFFFFFF) as dst:
                shutil.copyfileobj(spool, dst, 1024 * 1024)
            spool.close()
        self._zip.close()
