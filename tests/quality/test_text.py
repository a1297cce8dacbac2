"""Free text: WER and medoid selection on toy data and CrowdWSA2019."""

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from goldlabel.quality.text import TextMedoid, compute_wer, compute_word_errors, normalize_words

DATASETS = Path(os.environ.get("GOLDLABEL_DATASETS",
                               Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets"))


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_word_errors():
    assert compute_word_errors(["a", "b", "c", "d"], ["a", "x", "c", "d", "e"]) == 2
    assert compute_word_errors([], ["a", "b"]) == 2
    assert compute_word_errors(["a"], []) == 1
    assert normalize_words("Let's go.") == ["let", "'s", "go", "."]
    assert compute_wer(["Let's go."], ["let 's go ."]) == 0.0


def test_medoid_picks_the_consensus_answer():
    texts = ["the cat sat on the mat", "the cat sat on a mat", "a dog ran", "the cat sat on the mat ."]
    model = TextMedoid().fit([0, 0, 0, 0], [0, 1, 2, 3], texts)
    assert model.texts_[0] in (texts[0], texts[3])
    single = TextMedoid(weighted=True).fit([0, 1, 1], [0, 0, 1], ["only", "x y", "x y z"])
    assert single.texts_[0] == "only"
    assert 0 <= single.confidences_[1] <= 1


# measured WER: plain medoid j1 0.607 / t1 0.468 / t2 0.468; reliability-weighted
# 0.615 / 0.472 / 0.468; a random answer 0.683 / 0.564 / 0.569
@pytest.mark.parametrize("name, wer_max, random_wer", [
    ("crowdwsa2019_j1", 0.62, 0.683), ("crowdwsa2019_t1", 0.48, 0.564),
    ("crowdwsa2019_t2", 0.48, 0.569),
])
def test_crowdwsa_wer(name, wer_max, random_wer):
    folder = DATASETS / name
    if not (folder / "answers.csv").exists():
        pytest.skip(f"dataset {name} not found under {DATASETS} (set GOLDLABEL_DATASETS)")
    rows = read_rows(folder / "answers.csv")
    items, annotators = {}, {}
    item = np.array([items.setdefault(r["item"], len(items)) for r in rows])
    annotator = np.array([annotators.setdefault(r["worker"], len(annotators)) for r in rows])
    truth = {r["item"]: r["label"] for r in read_rows(folder / "truth.csv")}
    model = TextMedoid().fit(item, annotator, [r["label"] for r in rows])
    wer = compute_wer(model.texts_, [truth[k] for k in items])
    assert wer < wer_max
    assert wer < random_wer - 0.06


def test_medoid_when_no_item_has_two_answers():
    model = TextMedoid().fit(np.array([0, 1]), np.array([0, 1]), ["hello world", "foo"])
    assert list(model.texts_) == ["hello world", "foo"]
