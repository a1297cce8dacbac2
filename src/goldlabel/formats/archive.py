"""A zip archive written to a stream that cannot seek (an HTTP response, a pipe).

Training formats are several files: small ones known whole (a label file per image, an image
decoded from a data: URI) go into the zip at once; large ones that grow while the export runs
(a COCO file per split, a list per split) are written to spooled temporary files and copied in
by ``close``. zipfile writes data descriptors when the stream cannot seek, so no member is
buffered whole.

Memory stays bounded by the spool size, whatever the number of members: zipfile keeps a
``ZipInfo`` per member until it writes the central directory at the end, about 550 bytes each,
which made a YOLO export of 1,000,000 items (a label file per image) peak at 556 MB
(benchmarks/media_formats.py, docs/benchmarks.md). Here each member's central-directory fields
are packed into a 56-byte record in a spooled temporary file as the member is written, and read
back one at a time when zipfile writes the directory (:class:`_SpilledEntries`).
"""

from __future__ import annotations

import shutil
import struct
import tempfile
import time
import zipfile
from collections.abc import Iterator
from typing import BinaryIO

# Spooled members smaller than this stay in memory; larger ones go to a temporary file.
SPOOL_BYTES = 4 * 1024 * 1024

# The fields of a central-directory entry that differ between members, and the lengths of the
# name and extra field that follow the record.
_RECORD = struct.Struct("<QQQIIHHHBBHH")


class _SpilledEntries:
    """Stands in for ``ZipFile.filelist`` while writing: ``append`` packs the member's directory
    fields into a spooled file and drops the ``ZipInfo``; iterating (zipfile does it once, in
    ``close``) rebuilds one ``ZipInfo`` at a time. zipfile's writer only appends to, counts and
    iterates ``filelist`` (CPython 3.11-3.13, checked by tests/formats/test_zip_archive.py)."""

    def __init__(self, date_time: tuple[int, ...]) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed in close()
        self._count = 0
        self._date_time = date_time

    def append(self, info: zipfile.ZipInfo) -> None:
        name = info.filename.encode("utf-8")
        self._file.write(_RECORD.pack(info.header_offset, info.compress_size, info.file_size, info.CRC,
                                      info.external_attr, info.flag_bits, info.compress_type, info.create_version,
                                      info.create_system, info.extract_version, len(name), len(info.extra))
                         + name + info.extra)
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[zipfile.ZipInfo]:
        f = self._file
        f.seek(0)
        for _ in range(self._count):
            (offset, compress_size, file_size, crc, external_attr, flag_bits, compress_type, create_version,
             create_system, extract_version, name_len, extra_len) = _RECORD.unpack(f.read(_RECORD.size))
            info = zipfile.ZipInfo(f.read(name_len).decode("utf-8"), date_time=self._date_time)
            info.extra = f.read(extra_len)
            info.header_offset, info.compress_size, info.file_size, info.CRC = offset, compress_size, file_size, crc
            info.external_attr, info.flag_bits, info.compress_type = external_attr, flag_bits, compress_type
            info.create_version, info.create_system, info.extract_version = (create_version, create_system,
                                                                             extract_version)
            yield info

    def close(self) -> None:
        self._file.close()


class _NoNames(dict):
    """Stands in for ``ZipFile.NameToInfo`` while writing: keeps nothing (a name per member is
    what bounded memory rules out). The writers' member names are unique by construction
    (``formats.labeled.file_stem``), which zipfile would only have warned about."""

    def __setitem__(self, key: str, value: zipfile.ZipInfo) -> None:
        pass


class ZipArchive:
    def __init__(self, out: BinaryIO) -> None:
        self._zip = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED)
        self._stamp = time.localtime()[:6]
        self._entries = _SpilledEntries(self._stamp)
        self._zip.filelist = self._entries  # type: ignore[assignment]
        self._zip.NameToInfo = _NoNames()
        self._members: dict[str, tempfile.SpooledTemporaryFile] = {}

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
        self._entries.close()
