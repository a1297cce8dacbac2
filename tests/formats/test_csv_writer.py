"""The CSV export formats its lines itself (for speed): it must write the bytes csv.writer wrote,
except for a lone carriage return, which csv.writer left unquoted (and which broke the record)."""

from __future__ import annotations

import csv
import io

import orjson
import pytest

from goldlabel.formats import csv_format

AWKWARD = ["plain", "", "comma,here", 'quote"here', "new\nline", "cr\rhere", "crlf\r\nhere", "tab\there",
           " spaced ", "nul\x00byte", "ünïcødé ✓ 🚀", '"', ",", "\r", "line\u2028sep", '{"a": "b,c"}']


def reference_lines(records, questions, *, include_predictions, include_gold) -> bytes:
    """What the export wrote when it handed its rows to csv.writer (the earlier implementation)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["id", "external_id", "status", "priority", "is_gold", "data", "meta"]
    header += [f"{c}.{q}" for c in ("answer", "confidence", "source", "reviewer", "reviewed_at") for q in questions]
    header += ["answers"]
    header += ["predictions"] * include_predictions + ["gold"] * include_gold
    writer.writerow(header)
    for item_id, ext, data, meta, priority, status, is_gold, consensus, answers, preds, gold in records:
        row = [item_id, ext, status, priority, "true" if is_gold else "false", data, meta or ""]
        by_question = {r[0]: r[1:] for r in consensus}
        row += [csv_format._cell(by_question[q][0]) if q in by_question else "" for q in questions]
        for k in (1, 2, 3, 4):  # confidence, source, reviewer, reviewed_at
            row += [by_question[q][k] if q in by_question and by_question[q][k] is not None else ""
                    for q in questions]
        row.append(orjson.dumps([
            {"annotator": a, "value": orjson.Fragment(v), "created_at": t, "duration_ms": d} for a, v, t, d in answers
        ]).decode() if answers else "[]")
        if include_predictions:
            row.append(orjson.dumps([
                {"model_version": m, "value": orjson.Fragment(v), "score": sc} for m, v, sc in preds
            ]).decode() if preds else "")
        if include_gold:
            row.append(gold or "")
        writer.writerow(row)
    return out.getvalue().encode()


def awkward_records(texts=AWKWARD):
    records = []
    for i, text in enumerate(texts):
        label = orjson.dumps(text).decode()  # a consensus value that is a JSON string: written bare
        consensus = [] if i % 3 == 0 else [("sentiment", label, None if i % 2 else 0.1 + 0.2 * i, "consensus",
                                            None, None)]
        if i % 4 == 1:
            consensus.append(("rating", str(i), 1.0, "review", text, 1_700_000_000_000 + i))
        answers = [] if i % 2 else [(f"a_{text}", label, 1_700_000_000_000 + i, None if i % 5 else 4000)]
        preds = [] if i % 2 == 0 else [(text, '{"sentiment": "positive"}', None if i % 3 else 0.5)]
        records.append((i + 1, text or "x", orjson.dumps({"text": text}).decode(),
                        None if i % 2 else orjson.dumps({"src": text}).decode(), i - 5,
                        ("open", "final", "needs_review")[i % 3], i % 2 == 1, tuple(consensus), tuple(answers),
                        tuple(preds), None if i % 2 else orjson.dumps({"sentiment": text}).decode()))
    return records


# csv.writer (lineterminator "\n") quoted a CR only next to something else that needs quotes.
LONE_CR = {"cr\rhere", "\r"}


@pytest.mark.parametrize("questions", [["sentiment", "rating"], ["sentiment"], []])
@pytest.mark.parametrize(("include_predictions", "include_gold"), [(False, False), (True, True)])
def test_csv_writer_writes_what_csv_writer_writes(questions, include_predictions, include_gold):
    records = awkward_records([t for t in AWKWARD if t not in LONE_CR])
    out = io.BytesIO()
    writer = csv_format.Writer(out, questions, include_predictions=include_predictions, include_gold=include_gold)
    writer.write_batch(records[:7])
    writer.write_batch([])
    writer.write_batch(records[7:])
    writer.close()
    expected = reference_lines(records, questions, include_predictions=include_predictions, include_gold=include_gold)
    assert out.getvalue() == expected


def test_csv_export_reads_back_cell_for_cell():
    records = awkward_records()
    out = io.BytesIO()
    csv_format.Writer(out, ["sentiment"], include_predictions=True, include_gold=True).write_batch(records)
    rows = list(csv.reader(io.StringIO(out.getvalue().decode(), newline="")))
    assert len(rows) == len(records) + 1
    assert [(r[1], r[2]) for r in rows[1:]] == [(r[1], r[5]) for r in records]
    assert [orjson.loads(r[5]) for r in rows[1:]] == [orjson.loads(r[2]) for r in records]


@pytest.mark.parametrize("text", AWKWARD)
def test_quoted_cell(text):
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(["x", text, "y"])  # CR is a line end here: always quoted
    assert out.getvalue() == f"x,{csv_format._quoted(text)},y\r\n"
