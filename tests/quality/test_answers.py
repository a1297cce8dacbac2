from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from goldlabel.quality import encode, encode_gold, from_codes, from_frame, load_csv, load_gold_csv


def test_encode_sorts_vocabularies_and_codes_answers():
    answers = encode(["b", "a", "b"], ["x", "y", "y"], ["no", "yes", "yes"])
    assert answers.item_ids.tolist() == ["a", "b"]
    assert answers.item.tolist() == [1, 0, 1]
    assert answers.annotator.tolist() == [0, 1, 1]
    assert answers.label_ids.tolist() == ["no", "yes"]
    assert (answers.n_items, answers.n_annotators, answers.n_labels, answers.n_answers) == (2, 2, 2, 3)


def test_label_order_keeps_unchosen_classes_and_rejects_unknown_labels():
    answers = encode([1, 2], ["x", "y"], ["b", "a"], label_order=["a", "b", "c"])
    assert answers.label.tolist() == [1, 0]
    assert answers.n_labels == 3
    with pytest.raises(ValueError, match="unknown label 'z'"):
        encode([1], ["x"], ["z"], label_order=["a", "b"])


def test_encode_rejects_unequal_lengths_and_missing_values():
    with pytest.raises(ValueError, match="same length"):
        encode([1, 2], ["x"], ["a", "b"])
    with pytest.raises(ValueError, match="item has a missing value at row 1"):
        encode(["a", None], ["x", "y"], ["a", "b"])


def test_from_codes_uses_arange_vocabularies():
    answers = from_codes([0, 2], [1, 0], [1, 1], n_labels=3)
    assert answers.n_items == 3 and answers.n_annotators == 2 and answers.n_labels == 3
    with pytest.raises(ValueError, match="label codes must lie in"):
        from_codes([0], [0], [5], n_labels=3)


@pytest.mark.parametrize("columns", [("item", "annotator", "label"), ("task", "worker", "label")])
def test_from_frame_accepts_goldlabel_and_crowdkit_columns(columns):
    frame = pd.DataFrame({columns[0]: [1, 1, 2], columns[1]: ["u", "v", "u"], columns[2]: [0, 1, 1]})
    answers = from_frame(frame)
    assert answers.item_ids.tolist() == [1, 2]
    assert answers.label.tolist() == [0, 1, 1]


def test_from_frame_names_the_missing_column():
    frame = pd.DataFrame({"task": [1], "who": ["u"], "label": [0]})
    with pytest.raises(ValueError, match="missing column 'annotator' or 'worker'"):
        from_frame(frame)
    with pytest.raises(ValueError, match="pandas DataFrame"):
        from_frame([1, 2, 3])


def test_load_csv_reads_integers_like_pandas_and_keeps_leading_zeros(tmp_path):
    path = tmp_path / "answers.csv"
    path.write_text("item,worker,label\n007,a,1\n7,b,10\n8,a,2\n")
    answers = load_csv(path)
    assert answers.item_ids.tolist() == ["007", "7", "8"]
    assert answers.label_ids.tolist() == [1, 2, 10]


def test_load_csv_errors_name_line_and_field(tmp_path):
    path = tmp_path / "answers.csv"
    path.write_text("item,annotator,label\n1,a,x\n2,,y\n")
    with pytest.raises(ValueError, match="line 3: field 'annotator' is empty"):
        load_csv(path)
    path.write_text("item,annotator,label\n1,a\n")
    with pytest.raises(ValueError, match="line 2: expected 3 fields, got 2"):
        load_csv(path)
    path.write_text("item,user,label\n1,a,x\n")
    with pytest.raises(ValueError, match="line 1: missing column 'annotator' or 'worker'"):
        load_csv(path)
    path.write_text("")
    with pytest.raises(ValueError, match="empty file"):
        load_csv(path)


def test_gold_from_mapping_series_frame_and_arrays(tmp_path):
    answers = encode(["a", "b", "c"], ["x", "x", "y"], [0, 1, 1])
    expected = ([0, 2], [1, 0])
    mapping = {"a": 1, "c": 0, "zz": 1}  # zz has no answers: dropped
    for gold in (
        mapping,
        pd.Series(mapping),
        pd.DataFrame({"item": list(mapping), "label": list(mapping.values())}),
        (np.array(list(mapping)), np.array(list(mapping.values()))),
    ):
        items, labels = encode_gold(answers, gold)
        assert (items.tolist(), labels.tolist()) == expected
    path = tmp_path / "gold.csv"
    path.write_text("item,label\na,1\nc,0\n")
    assert load_gold_csv(path) == {"a": 1, "c": 0}
    with pytest.raises(ValueError, match="unknown label 7"):
        encode_gold(answers, {"a": 7})
    with pytest.raises(ValueError, match="gold must be"):
        encode_gold(answers, 3)


def test_gold_labels_read_as_text_match_numeric_labels():
    answers = encode(["a", "b"], ["x", "y"], [0, 1])
    _, labels = encode_gold(answers, {"a": "1"})
    assert labels.tolist() == [1]
