"""Spans: token mapping on toy text, token-level Dawid-Skene on PICO participants."""

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from goldlabel.quality.spans import (
    MajorityTokenVote,
    SpanAnswers,
    SpanDawidSkene,
    Tokens,
    compute_token_classes,
    compute_token_f1,
)

DATASETS = Path(os.environ.get("GOLDLABEL_DATASETS",
                               Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets"))


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_tokens_and_token_classes():
    tokens = Tokens.from_texts(["the old man sat", "a dog"])
    assert tokens.item.tolist() == [0, 0, 0, 0, 1, 1]
    assert tokens.start.tolist() == [0, 4, 8, 12, 0, 2]
    answers = SpanAnswers.from_lists([0, 0, 1], [0, 1, 0], [[[4, 11, 0]], [], [[2, 5, 1]]])
    entry_answer, entry_token, entry_class = compute_token_classes(tokens, answers)
    assert entry_answer.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    assert entry_token.tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 4, 5]
    assert entry_class.tolist() == [0, 1, 1, 0, 0, 0, 0, 0, 0, 2]


def test_decoded_spans_and_majority():
    tokens = Tokens.from_texts(["the old man sat down"])
    spans = [[[4, 11]], [[4, 11]], [[0, 7]]]
    answers = SpanAnswers.from_lists([0, 0, 0], [0, 1, 2], spans)
    vote = MajorityTokenVote().fit(answers, tokens)
    assert list(zip(vote.span_start_.tolist(), vote.span_end_.tolist())) == [(4, 11)]
    model = SpanDawidSkene().fit(answers, tokens)
    assert list(zip(model.span_start_.tolist(), model.span_end_.tolist())) == [(4, 11)]
    assert np.allclose(model.token_probas_.sum(axis=1), 1.0)
    assert 0.5 < model.span_confidences_[0] <= 1.0


def test_labels_and_bad_spans():
    tokens = Tokens.from_texts(["aa bb cc"])
    answers = SpanAnswers.from_lists([0, 0, 0], [0, 1, 2], [[[0, 2, 1]], [[0, 2, 1]], [[0, 5, 0]]])
    model = SpanDawidSkene(n_labels=2).fit(answers, tokens)
    assert model.span_label_.tolist()[0] == 1
    with pytest.raises(ValueError, match="n_labels"):
        SpanDawidSkene(n_labels=1).fit(answers, tokens)
    with pytest.raises(ValueError, match="ends before it starts"):
        SpanAnswers.from_lists([0], [0], [[[5, 2]]])


def test_token_f1():
    scores = compute_token_f1(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0]))
    assert scores == {"precision": 0.5, "recall": 0.5, "f1": 0.5}


def test_pico_token_f1():
    folder = DATASETS / "pico_participants"
    if not (folder / "answers.csv").exists():
        pytest.skip(f"dataset pico_participants not found under {DATASETS} (set GOLDLABEL_DATASETS)")
    texts = {r["item"]: r["text"] for r in read_rows(folder / "texts.csv")}
    ids = sorted(texts)
    code = {k: i for i, k in enumerate(ids)}
    tokens = Tokens.from_texts([texts[k] for k in ids])
    rows = read_rows(folder / "answers.csv")
    annotators = {}
    answers = SpanAnswers.from_lists(
        [code[r["item"]] for r in rows],
        [annotators.setdefault(r["worker"], len(annotators)) for r in rows],
        [json.loads(r["label"]) for r in rows],
    )
    truth_rows = read_rows(folder / "truth.csv")
    truth = SpanAnswers.from_lists([code[r["item"]] for r in truth_rows], [0] * len(truth_rows),
                                   [json.loads(r["label"]) for r in truth_rows])
    _, token, cls = compute_token_classes(tokens, truth)
    true_classes = np.zeros(len(tokens.item), np.int64)
    true_classes[token] = cls
    # measured: SpanDawidSkene F1 0.745 (P 0.731, R 0.760); majority vote 0.707 (P 0.918, R 0.575)
    model = compute_token_f1(SpanDawidSkene().fit(answers, tokens).token_classes_, true_classes)
    vote = compute_token_f1(MajorityTokenVote().fit(answers, tokens).token_classes_, true_classes)
    assert model["f1"] > 0.73
    assert vote["f1"] > 0.69
    assert model["f1"] > vote["f1"] + 0.02
