"""CSV with a header row. Column mapping (see formats.columns): ``external_id``, ``priority``,
``data`` (a JSON object) and ``data.<field>``, ``meta`` / ``meta.<key>``, ``gold`` and
``predictions`` as JSON text; any other column is a field of ``data``. Cells are strings.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from goldlabel.domain.errors import FieldError
from goldlabel.formats.columns import HeaderError, build_row, plan_columns

NAME = "csv"
EXTENSIONS = (".csv",)
MEDIA_TYPE = "text/csv"
# csv's default cell limit (128 KiB) is smaller than a long document.
FIELD_SIZE_LIMIT = 256 * 1024 * 1024


class _Lines:
    """The file's physical lines as text for csv.reader, decoded one line at a time.

    A TextIOWrapper decodes 8 KiB ahead, so a bad byte on line 61 surfaced while the header was
    read, and nothing of the file could be imported. Decoding per line pins a bad byte to its
    line and column, and the records around it still read. Lines split as universal newlines
    (\\n, \\r\\n, a lone \\r), the same as ``open(newline="")`` hands csv.
    """

    __slots__ = ("bad", "line", "stream")

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.line = 0
        self.bad: dict[int, FieldError] = {}  # line -> its encoding error

    def __iter__(self) -> Iterator[str]:
        first = True
        for raw in self.stream:
            if first:
                first = False
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            # A lone CR ends a line too; splitlines on bytes splits on \r, \n and \r\n only.
            pieces = raw.splitlines(keepends=True) if b"\r" in raw[:-2] else (raw,)
            for piece in pieces:
                self.line += 1
                try:
                    yield piece.decode("utf-8")
                except UnicodeDecodeError as exc:
                    self.bad.setdefault(self.line, _encoding_error(piece, exc, self.line))
                    yield piece.decode("utf-8", errors="replace")


def _encoding_error(raw: bytes, exc: UnicodeDecodeError, line: int) -> FieldError:
    column = len(raw[: exc.start].decode("utf-8", errors="replace")) + 1
    bad = raw[exc.start : exc.end].hex(" ")
    return FieldError(
        (), "bad_encoding",
        f"column {column}: byte(s) {bad} are not UTF-8; save the file as UTF-8 "
        "(in a spreadsheet: CSV UTF-8)", line,
    )


def read_rows(stream: BinaryIO) -> Iterator[tuple[int, Any]]:
    csv.field_size_limit(FIELD_SIZE_LIMIT)
    lines = _Lines(stream)
    bad = lines.bad
    reader = csv.reader(iter(lines))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        yield 1, FieldError((), "bad_csv", f"cannot read the header: {exc}", 1)
        return
    if header is None:
        return
    if bad:
        yield 1, next(iter(bad.values()))
        return
    try:
        plan = plan_columns(header)
    except HeaderError as exc:
        yield 1, exc.error
        return
    width = len(header)
    end = reader.line_num
    while True:
        start = end + 1
        try:
            record = next(reader, None)
        except csv.Error as exc:
            # The reader cannot resynchronise after a broken record: stop with the error.
            yield start, FieldError((), "bad_csv", f"unreadable CSV, reading stopped here: {exc}", start)
            return
        end = reader.line_num
        if record is None:
            return
        if bad:
            # A record with a bad byte is rejected whole; the records around it read on.
            errors = [bad.pop(n) for n in sorted(bad) if start <= n <= end]
            if errors:
                yield start, errors[0]
                continue
        if not record or (len(record) == 1 and record[0] == ""):
            continue  # blank line
        if len(record) != width:
            yield start, FieldError((), "bad_column_count",
                                    f"{len(record)} cells but the header has {width} columns", start)
            continue
        yield start, build_row(plan, record, start, is_text=True)


def _cell(json_text: str | None) -> str:
    """A JSON value as a cell: strings bare (a choice label reads as itself), the rest as JSON."""
    if json_text is None:
        return ""
    if json_text.startswith('"'):
        return orjson.loads(json_text)
    return json_text


def _quoted(text: str) -> str:
    """``text`` as one cell: quoted when it holds a comma, a double quote, a newline or a carriage
    return (QUOTE_MINIMAL), double quotes doubled.

    The export formats its lines itself: csv.writer walks every character of every cell in C,
    and most of an export's bytes are JSON cells (data, answers) that need quoting for their
    double quotes anyway; str.replace does that several times faster (measured:
    docs/benchmarks.md, "Numbers behind the code"). The bytes are
    csv.writer's, except that a lone CR is quoted too: with ``lineterminator="\n"`` csv.writer
    left it bare, and csv readers (ours included) end the record there.
    """
    if '"' in text:
        return '"' + text.replace('"', '""') + '"'
    if "," in text or "\n" in text or "\r" in text:
        return '"' + text + '"'
    return text


# The per-question result columns an export writes after meta, each ``<column>.<question>``.
RESULT_COLUMNS = ("answer", "confidence", "source", "reviewer", "reviewed_at")


class Writer:
    """Columns: id, external_id, status, priority, is_gold, data (JSON), meta (JSON),
    answer.<question>, confidence.<question>, source.<question>, reviewer.<question>,
    reviewed_at.<question>, answers (JSON list), then predictions / gold."""

    def __init__(self, out: BinaryIO, questions: list[str], *, include_predictions: bool, include_gold: bool,
                 **_training_options: object) -> None:
        self.out = out
        self.questions = questions
        self.include_predictions = include_predictions
        self.include_gold = include_gold
        header = ["id", "external_id", "status", "priority", "is_gold", "data", "meta"]
        header += [f"{column}.{q}" for column in RESULT_COLUMNS for q in questions] + ["answers"]
        if include_predictions:
            header.append("predictions")
        if include_gold:
            header.append("gold")
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerow(header)
        self.out.write(text.getvalue().encode())

    def write_batch(self, records: list[tuple]) -> None:
        """Records in the layout of ``formats.registry.EXPORT_RECORD``; the same bytes as
        ``csv.writer`` would write for these rows (see _quoted)."""
        dumps = orjson.dumps
        Fragment = orjson.Fragment
        quoted = _quoted
        questions = self.questions
        with_predictions, with_gold = self.include_predictions, self.include_gold
        blank = "," * (len(RESULT_COLUMNS) * len(questions))  # the result cells of an item without consensus
        lines = []
        for item_id, ext, data, meta, priority, status, is_gold, consensus, answers, preds, gold in records:
            # id and priority are integers; status is one of three words (a CHECK constraint): no quoting.
            line = (f"{item_id},{quoted(ext)},{status},{priority},{'true' if is_gold else 'false'},"
                    f"{quoted(data)},{quoted(meta) if meta else ''}")
            if consensus:
                by_question = {row[0]: row for row in consensus}
                got = [by_question.get(q) for q in questions]
                cells = [quoted(_cell(r[1])) if r else "" for r in got]
                cells += ["" if r is None or r[2] is None else str(r[2]) for r in got]  # confidence
                cells += ["" if r is None or r[3] is None else quoted(r[3]) for r in got]  # source
                cells += ["" if r is None or r[4] is None else quoted(r[4]) for r in got]  # reviewer
                cells += ["" if r is None or r[5] is None else str(r[5]) for r in got]  # reviewed_at
                line += "".join("," + cell for cell in cells)
            else:
                line += blank
            if answers:
                line += "," + quoted(dumps([
                    {"annotator": a, "value": Fragment(v), "created_at": t, "duration_ms": d}
                    for a, v, t, d in answers
                ]).decode())
            else:
                line += ",[]"
            if with_predictions:
                line += "," + (quoted(dumps([
                    {"model_version": m, "value": Fragment(v), "score": sc} for m, v, sc in preds
                ]).decode()) if preds else "")
            if with_gold:
                line += "," + (quoted(gold) if gold else "")
            lines.append(line)
        if lines:
            lines.append("")
            self.out.write("\n".join(lines).encode())

    def close(self) -> None:
        pass
