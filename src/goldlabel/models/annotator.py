"""The project model as one more annotator for goldlabel.quality.

goldlabel.quality has no special case for a model: it is an annotator like any other, with its
own confusion matrix. Two rules make that safe:

* its confusion matrix is learned only where humans answered: :func:`add_model_answers` adds
  the model's answers only to items that have at least one human answer, so EM cannot learn
  the model's accuracy from items where the model is the only voice (there it would agree with
  itself perfectly);
* it never finalizes an item alone: the stopping rule counts human answers only
  (:func:`human_answer_counts`), so an item needs ``overlap_min`` >= 1 human answers however
  confident the model is (auto-labeling, goldlabel.models.autolabel, is the one exception).

A model's confidence carries information that a hard label loses, so the model answers as
several annotators, one per confidence band (``bands``): "model@0.90" is the model when its
top probability is in [0.90, next band). Each band gets its own confusion matrix: a model that
is right 99% of the time when sure and 60% when not is two very different annotators.
Use out-of-fold probabilities for items the model trained on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import numpy as np

from goldlabel.quality.answers import Answers
from goldlabel.quality.consensus import skill_confusions

#: lower edges of the confidence bands (the first is 0: every prediction falls in a band)
DEFAULT_BANDS = (0.0, 0.6, 0.75, 0.9, 0.97, 0.99)


def model_votes(probas: np.ndarray, bands: tuple[float, ...] = DEFAULT_BANDS
                ) -> tuple[np.ndarray, np.ndarray]:
    """``(label, band)`` per item: the model's top class and the index of its confidence band."""
    probas = np.asarray(probas, dtype=np.float64)
    return probas.argmax(axis=1), band_of(probas.max(axis=1), bands)


def band_names(bands: tuple[float, ...] = DEFAULT_BANDS, name: str = "model") -> list[str]:
    return [f"{name}@{b:.2f}" for b in bands]


def add_model_answers(answers: Answers, probas: np.ndarray, bands: tuple[float, ...] = DEFAULT_BANDS,
                      name: str = "model", scored: np.ndarray | None = None
                      ) -> tuple[Answers, np.ndarray]:
    """``answers`` plus the model's answers on the items that have human answers.

    ``probas``: ``(answers.n_items, answers.n_labels)``, row i for item code i (out-of-fold for
    items the model trained on). Returns the combined answers (the model's bands appended to
    the annotator vocabulary as ``name@band``) and the annotator codes of the bands, so that
    ``fitted.confusions_[codes[band]]`` is the band's learned confusion matrix. ``scored``:
    bool per item, False where the model gave no answer (e.g. items labeled before it existed).
    """
    probas = np.asarray(probas, dtype=np.float64)
    if probas.shape != (answers.n_items, answers.n_labels):
        raise ValueError(f"probas must be (n_items={answers.n_items}, n_labels={answers.n_labels}), "
                         f"got {probas.shape}")
    return add_model_votes(answers, probas.argmax(axis=1), probas.max(axis=1), bands, name, scored)


def add_model_votes(answers: Answers, labels: np.ndarray, scores: np.ndarray,
                    bands: tuple[float, ...] = DEFAULT_BANDS, name: str = "model",
                    scored: np.ndarray | None = None) -> tuple[Answers, np.ndarray]:
    """:func:`add_model_answers` from the model's top label code and its probability per item
    (what the server stores as a prediction): ``labels[i]`` / ``scores[i]`` for item code i."""
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != (answers.n_items,) or scores.shape != (answers.n_items,):
        raise ValueError(f"labels and scores must have one entry per item ({answers.n_items})")
    names = band_names(bands, name)
    clash = set(names) & set(map(str, answers.annotator_ids.tolist()))
    if clash:
        raise ValueError(f"annotator ids {sorted(clash)} are taken by humans; pass another name")
    answered = np.bincount(answers.item, minlength=answers.n_items) > 0
    if scored is not None:
        answered &= np.asarray(scored, dtype=bool)
    answered &= (labels >= 0) & (labels < answers.n_labels)
    answered_at = np.flatnonzero(answered)
    band = band_of(scores[answered_at], bands)
    codes = answers.n_annotators + np.arange(len(bands))
    combined = Answers(
        np.concatenate([answers.item, answered_at]),
        np.concatenate([answers.annotator, codes[band]]),
        np.concatenate([answers.label, labels[answered_at]]),
        answers.item_ids,
        np.concatenate([answers.annotator_ids.astype(object), np.array(names, dtype=object)]),
        answers.label_ids,
    )
    return combined, codes


def band_of(scores: np.ndarray, bands: tuple[float, ...] = DEFAULT_BANDS) -> np.ndarray:
    """Index of the confidence band of each top-class probability."""
    band = np.searchsorted(np.asarray(bands), np.asarray(scores, dtype=np.float64), side="right") - 1
    return np.maximum(band, 0)


def model_skill(confusions: np.ndarray, skills: np.ndarray, n_answers: np.ndarray,
                codes: np.ndarray, bands: tuple[float, ...] = DEFAULT_BANDS) -> dict[str, Any]:
    """The model's learned skill from a fitted aggregator over :func:`add_model_answers`'s
    answers (``confusions_``, ``skills_`` and answers per annotator code; ``codes``: the
    bands' codes), as a JSON-able dict: ``bands`` (lower edges) and per band ``confusion``,
    ``accuracy`` and ``n_answers`` (what :func:`model_log_likelihood` reads). A band with no
    answer keeps ``n_answers`` 0, so it counts as the default annotator."""
    codes = np.asarray(codes)
    return {
        "bands": [float(b) for b in bands],
        "confusion": np.round(np.asarray(confusions)[codes], 6).tolist(),
        "accuracy": [float(a) for a in np.asarray(skills)[codes]],
        "n_answers": [int(n) for n in np.asarray(n_answers)[codes]],
    }


def model_log_likelihood(skill: Mapping[str, Any], label: int, score: float, n_labels: int, default_accuracy: float,
                         prior_answers: float) -> np.ndarray:
    """log P(the model answers ``label`` with top probability ``score`` | true class k), the term
    its vote adds to an item's posterior: its band's learned confusion matrix (from
    :func:`model_skill`) shrunk toward the default annotator by its evidence, exactly as a
    human's (:func:`goldlabel.quality.consensus.skill_confusions`)."""
    band = int(band_of(np.array([score]), tuple(skill["bands"]))[0])
    row = {"accuracy": skill["accuracy"][band], "confusion": skill["confusion"][band],
           "n_answers": skill["n_answers"][band]}
    matrix = skill_confusions([row], n_labels, default_accuracy, prior_answers)[0]
    with np.errstate(divide="ignore"):  # work in log space, as the humans' terms
        return cast("np.ndarray", np.log(matrix[:, label]))


def human_answer_counts(answers: Answers, model_codes: np.ndarray) -> np.ndarray:
    """Answers per item from humans only: what the stopping rule's ``answer_count`` must be."""
    human = ~np.isin(answers.annotator, model_codes)
    return np.bincount(answers.item[human], minlength=answers.n_items)


def decisive_confidence(confidence: np.ndarray, model_voted: np.ndarray, human_support: np.ndarray) -> np.ndarray:
    """The confidence the stopping rule may use: where the model voted and no human gave the
    top label (``human_support`` False), 0, so the item asks for another human however sure
    the model is: a label only the model gave is never final without auto-labeling."""
    confidence = np.asarray(confidence, dtype=np.float64)
    keep = ~np.asarray(model_voted, dtype=bool) | np.asarray(human_support, dtype=bool)
    return np.where(keep, confidence, 0.0)
