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

import numpy as np

from goldlabel.quality.answers import Answers

#: lower edges of the confidence bands (the first is 0: every prediction falls in a band)
DEFAULT_BANDS = (0.0, 0.6, 0.75, 0.9, 0.97, 0.99)


def model_votes(probas: np.ndarray, bands: tuple[float, ...] = DEFAULT_BANDS
                ) -> tuple[np.ndarray, np.ndarray]:
    """``(label, band)`` per item: the model's top class and the index of its confidence band."""
    probas = np.asarray(probas, dtype=np.float64)
    label = probas.argmax(axis=1)
    band = np.searchsorted(np.asarray(bands), probas.max(axis=1), side="right") - 1
    return label, np.maximum(band, 0)


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
    names = band_names(bands, name)
    clash = set(names) & set(map(str, answers.annotator_ids.tolist()))
    if clash:
        raise ValueError(f"annotator ids {sorted(clash)} are taken by humans; pass another name")
    answered = np.bincount(answers.item, minlength=answers.n_items) > 0
    if scored is not None:
        answered &= np.asarray(scored, dtype=bool)
    answered_at = np.flatnonzero(answered)
    label, band = model_votes(probas[answered_at], bands)
    codes = answers.n_annotators + np.arange(len(bands))
    combined = Answers(
        np.concatenate([answers.item, answered_at]),
        np.concatenate([answers.annotator, codes[band]]),
        np.concatenate([answers.label, label]),
        answers.item_ids,
        np.concatenate([answers.annotator_ids.astype(object), np.array(names, dtype=object)]),
        answers.label_ids,
    )
    return combined, codes


def human_answer_counts(answers: Answers, model_codes: np.ndarray) -> np.ndarray:
    """Answers per item from humans only: what the stopping rule's ``answer_count`` must be."""
    human = ~np.isin(answers.annotator, model_codes)
    return np.bincount(answers.item[human], minlength=answers.n_items)
