"""Readers stream (line, row | FieldError) with line numbers; no database needed."""

from __future__ import annotations

import io

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from goldlabel.domain.errors import FieldError, GoldlabelError
from goldlabel.formats import csv_format, detect_format, get_format, jsonl, parquet


def rows_of(module, payload: bytes) -> list:
    return list(module.read_rows(io.BytesIO(payload)))


# ---------------------------------------------------------------- JSONL


def test_jsonl_minimal_rows_blank_lines_and_bom():
    payload = b'\xef\xbb\xbf{"external_id": "x1", "data": {"text": "a"}}\n\n   \n{"external_id": "x2", "data": {}}\n'
    assert rows_of(jsonl, payload) == [
        (1, {"external_id": "x1", "data": {"text": "a"}}),
        (4, {"external_id": "x2", "data": {}}),
    ]


def test_jsonl_bad_line_is_an_entry_not_an_exception():
    payload = b'{"external_id": "x1", "data": {}}\n{"external_id": "x2", "data": \n{"external_id": "x3", "data": {}}'
    entries = rows_of(jsonl, payload)
    assert [line for line, _ in entries] == [1, 2, 3]
    err = entries[1][1]
    assert isinstance(err, FieldError) and err.code == "bad_json" and err.line == 2
    assert entries[2][1]["external_id"] == "x3"  # reading goes on after the bad line


def test_jsonl_invalid_utf8_is_bad_encoding_at_its_column():
    [(line, err)] = rows_of(jsonl, b'{"external_id": "\xff", "data": {}}\n')
    assert line == 1 and err.code == "bad_encoding" and "column 18: byte(s) ff" in err.message


def test_jsonl_error_names_the_file_line_and_column_only():
    # Issue 12.13: "LINE 137" stood next to orjson's "line 2 column 1 (char 177)".
    [_, (line, err)] = rows_of(jsonl, b'{"external_id": "a", "data": {}}\n{"external_id": "b", "data": }\n')
    assert line == 2 and err.message == "column 30: not valid JSON: unexpected character, expected a JSON value"


# ---------------------------------------------------------------- CSV


def test_csv_column_mapping():
    payload = (
        b"external_id,priority,text,data.lang,meta.source,gold,predictions,id,status,answer.sentiment,"
        b"confidence.sentiment\n"
        b'x1,3,hello,en,web,"{""sentiment"": ""positive""}","[{""value"": {""sentiment"": ""negative""}, ""score"": '
        b'0.4}]",9,final,positive,1.0\n'
        b"x2,,\"multi\nline\",fr,,,,,,,\n"
    )
    entries = rows_of(csv_format, payload)
    assert entries[0] == (2, {
        "external_id": "x1", "priority": 3, "data": {"text": "hello", "lang": "en"}, "meta": {"source": "web"},
        "gold": {"sentiment": "positive"}, "predictions": [{"value": {"sentiment": "negative"}, "score": 0.4}],
    })
    # The quoted newline makes record 2 span lines 3-4; it is reported at its first line.
    assert entries[1] == (3, {"external_id": "x2", "data": {"text": "multi\nline", "lang": "fr"}})


def test_csv_data_json_column_merges_with_field_columns():
    payload = b'external_id,data,data.b\nx1,"{""a"": 1, ""b"": 0}",2\n'
    assert rows_of(csv_format, payload) == [(2, {"external_id": "x1", "data": {"a": 1, "b": "2"}})]


def test_csv_errors_carry_lines():
    payload = b'external_id,text,gold\nx1,a,\nx2,b\nx3,c,{not json\nx4,d,\n'
    entries = rows_of(csv_format, payload)
    assert entries[0][1]["external_id"] == "x1"
    assert entries[1][1].code == "bad_column_count" and entries[1][0] == 3
    assert entries[2][1].code == "bad_json" and entries[2][1].loc == ("gold",) and entries[2][0] == 4
    assert entries[3][1]["external_id"] == "x4"


def test_csv_header_without_external_id():
    [(line, err)] = rows_of(csv_format, b"text\nhello\n")
    assert line == 1 and err.code == "missing_column"


def test_csv_duplicate_column():
    [(_, err)] = rows_of(csv_format, b"external_id,text,text\nx,a,b\n")
    assert err.code == "duplicate_column"


def test_csv_bad_priority_is_left_to_validation():
    [(_, row)] = rows_of(csv_format, b"external_id,priority\nx1,high\n")
    assert row["priority"] == "high"


def test_csv_bad_byte_is_pinned_to_its_line_and_column_and_reading_goes_on():
    payload = (b"external_id,text\n" + b"".join(b"x%d,fine\n" % n for n in range(2, 61))
               + b"x61,\"caf\xe9\nau lait\"\r\nx63,fine\rx64,\xff\n")
    entries = rows_of(csv_format, payload)
    assert [line for line, _ in entries] == [*range(2, 62), 63, 64]
    assert all(isinstance(row, dict) for _, row in entries[:59])
    err = entries[59][1]
    assert (err.code, err.line) == ("bad_encoding", 61) and "column 9: byte(s) e9" in err.message
    assert entries[60][1] == {"external_id": "x63", "data": {"text": "fine"}}  # after a lone CR
    assert "column 5" in entries[61][1].message


def test_csv_bad_byte_in_the_header():
    [(line, err)] = rows_of(csv_format, b"external_id,t\xe9xt\nx1,a\n")
    assert (line, err.code) == (1, "bad_encoding") and "column 14" in err.message


def test_json_array_reader():
    from goldlabel.formats import json_array

    assert rows_of(json_array, b'\xef\xbb\xbf[{"external_id": "a", "data": {}},\n\n {"x": 1}]') == [
        (1, {"external_id": "a", "data": {}}), (3, {"x": 1})]
    [(line, err)] = rows_of(json_array, b'\n{"external_id": "a"}\n')
    assert (line, err.code) == (2, "bad_json") and "a JSON array" in err.message
    *_, (line, err) = rows_of(json_array, b'[{"a": 1},\n {"a": 2} x]')
    assert (line, err.code) == (2, "bad_json") and "column 11" in err.message


def test_csv_reader_leaves_stream_open():
    stream = io.BytesIO(b"external_id\nx1\n")
    list(csv_format.read_rows(stream))
    assert not stream.closed


# ---------------------------------------------------------------- Parquet


def parquet_bytes(table: pa.Table, **kwargs) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, **kwargs)
    return buf.getvalue()


def test_parquet_struct_and_flat_columns_across_row_groups():
    n = 25
    table = pa.table({
        "external_id": [f"x{i}" for i in range(n)],
        "data": [{"text": f"t{i}", "n": i} for i in range(n)],
        "data.lang": ["en"] * n,
        "priority": list(range(n)),
        "meta": [None if i % 2 else {"k": "v"} for i in range(n)],
        "predictions": [[{"value": orjson.dumps({"s": "a"}).decode(), "score": 0.5, "model_version": "m"}]] * n,
    })
    entries = rows_of(parquet, parquet_bytes(table, row_group_size=10))
    assert [line for line, _ in entries] == list(range(1, n + 1))
    first = entries[0][1]
    assert first == {
        "external_id": "x0", "data": {"text": "t0", "n": 0, "lang": "en"}, "priority": 0, "meta": {"k": "v"},
        "predictions": [{"value": {"s": "a"}, "score": 0.5, "model_version": "m"}],
    }
    assert "meta" not in entries[1][1]


def test_parquet_json_text_columns_and_bad_json():
    table = pa.table({"external_id": ["a", "b"], "data": ['{"text": "x"}', '{oops']})
    entries = rows_of(parquet, parquet_bytes(table))
    assert entries[0] == (1, {"external_id": "a", "data": {"text": "x"}})
    assert entries[1][1].code == "bad_json" and entries[1][0] == 2


def test_parquet_not_a_parquet_file():
    [(_, err)] = rows_of(parquet, b"this is not parquet")
    assert err.code == "bad_parquet"


# ---------------------------------------------------------------- registry


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a.jsonl", "jsonl"), ("a.NDJSON", "jsonl"), ("dir/a.csv", "csv"), ("a.parquet", "parquet"),
     ("tasks.JSON", "json")],
)
def test_detect_format_by_extension(name, expected):
    assert detect_format(name).NAME == expected


def test_explicit_format_wins_and_unknown_is_422():
    assert detect_format("a.txt", "csv").NAME == "csv"
    with pytest.raises(GoldlabelError) as exc:
        detect_format("a.txt")
    assert exc.value.code == "unknown_format" and exc.value.status == 422
    with pytest.raises(GoldlabelError):
        get_format("xml")
