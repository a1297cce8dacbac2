"""A JSON file holding one array of items, e.g. ``[{"external_id": "x1", "data": {"text": "..."}}]``
(the shape Label Studio users and many scripts have at hand); each element is an item as in JSONL.

Unlike JSONL, the whole file is read into memory: use JSONL (or CSV, Parquet) for large files.
Each item is reported at the line where its ``{`` stands, a syntax error where the parser
stopped (the message gives the column). A syntax error stops the reading there
(no JSON parser can resynchronise inside an array); the items before it are still checked and,
with a partial import, kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, BinaryIO

from goldlabel.domain.errors import FieldError
from goldlabel.formats import jsonl

NAME = "json"
EXTENSIONS = (".json",)
MEDIA_TYPE = "application/json"
_SPACE = " \t\n\r"


def _bad(line: int, column: int, message: str) -> FieldError:
    return FieldError((), "bad_json", f"column {column}: {message}", line)


def read_rows(stream: BinaryIO) -> Iterator[tuple[int, Any]]:
    """``(line, item)`` per array element; a broken spot yields a FieldError and ends the reading."""
    raw = stream.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        column = len(raw[line_start : exc.start].decode("utf-8", errors="replace")) + 1
        yield line, FieldError((), "bad_encoding",
                               f"column {column}: byte {raw[exc.start]:#04x} is not UTF-8; "
                               "save the file as UTF-8", line)
        return
    del raw
    decode = json.JSONDecoder().raw_decode
    size = len(text)
    line, line_start = 1, 0  # the line at `counted` and where it starts

    def where(pos: int) -> tuple[int, int]:
        nonlocal line, line_start, counted
        newlines = text.count("\n", counted, pos)
        if newlines:
            line += newlines
            line_start = text.rfind("\n", counted, pos) + 1
        counted = pos
        return line, pos - line_start + 1

    counted = 0
    pos = _skip(text, 0)
    if pos == size:
        return  # an empty file: the import reports it
    if text[pos] != "[":
        at = where(pos)
        yield at[0], _bad(*at, "expected a JSON array of items ('[' first); "
                          "for one item per line, name the file .jsonl")
        return
    pos = _skip(text, pos + 1)
    if pos < size and text[pos] == "]":
        yield from _trailing(text, pos + 1, where)
        return
    while pos < size:
        at = where(pos)
        try:
            item, pos = decode(text, pos)
        except json.JSONDecodeError as exc:
            # Reported where the parser stopped, which may be lines below the item's start.
            spot = where(exc.pos)
            yield spot[0], _bad(*spot, f"not valid JSON: {exc.msg}; reading stopped here")
            return
        yield at[0], item
        pos = _skip(text, pos)
        if pos < size and text[pos] == ",":
            pos = _skip(text, pos + 1)
            continue
        if pos < size and text[pos] == "]":
            yield from _trailing(text, pos + 1, where)
            return
        break
    yield where(pos)[0], _bad(*where(pos), "expected ',' or ']' after an item; reading stopped here")


def _skip(text: str, pos: int) -> int:
    size = len(text)
    while pos < size and text[pos] in _SPACE:
        pos += 1
    return pos


def _trailing(text: str, pos: int, where) -> Iterator[tuple[int, Any]]:
    pos = _skip(text, pos)
    if pos < len(text):
        yield where(pos)[0], _bad(*where(pos), "unexpected text after the array")


class Writer(jsonl.Writer):
    """Writes an export as one JSON array, an item per line (the records of the JSONL export)."""

    def __init__(self, out: BinaryIO, questions: list[str], *, include_predictions: bool, include_gold: bool,
                 **_training_options: object) -> None:
        super().__init__(out, questions, include_predictions=include_predictions, include_gold=include_gold)
        self.first = True

    def write_batch(self, records: list[tuple]) -> None:
        chunks = self.encode(records)
        if not chunks:
            return
        self.out.write((b"[\n" if self.first else b",\n") + b",\n".join(chunks))
        self.first = False

    def close(self) -> None:
        self.out.write(b"[]\n" if self.first else b"\n]\n")
