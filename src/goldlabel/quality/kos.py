"""KOS: Karger-Oh-Shah iterative message passing for binary labels."""

from __future__ import annotations

import numpy as np

from goldlabel.quality.answers import Answers

from .categorical import CategoricalEstimator, clamp_gold
from .majority_vote import _agreement

__all__ = ["KOS"]


class KOS(CategoricalEstimator):
    r"""Karger, Oh & Shah's belief-propagation-like algorithm for binary tasks.

    With answers :math:`A_{ij} \in \{+1, -1\}` on the edges of the item-annotator graph,
    messages are passed ``n_iter`` times,

    .. math:: x_{i \to j} = \sum_{j' \ne j} A_{ij'} y_{j' \to i}, \qquad
              y_{j \to i} = \sum_{i' \ne i} A_{i'j} x_{i' \to j},

    from :math:`y \sim N(1, 1)` (``random_state``), and the label is
    :math:`\operatorname{sign} \sum_j A_{ij} y_{j \to i}`. Messages are rescaled every
    iteration (the sign is scale-free), so they never overflow. Each iteration is two
    ``np.bincount`` passes over the answers. ``probas_`` is the one-hot label (KOS gives no
    probabilities); ``skills_`` each annotator's agreement with the result.

    Karger, Oh & Shah (2011), "Iterative learning for reliable crowdsourcing systems", NeurIPS.
    """

    def __init__(self, n_iter: int = 100, random_state: int | None = 0):
        self.n_iter = n_iter
        self.random_state = random_state

    def _fit(self, data: Answers, gold_items: np.ndarray, gold_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if data.n_labels != 2:
            raise ValueError(f"KOS is for binary labels only; got {data.n_labels} labels: "
                             f"{', '.join(map(repr, data.label_ids.tolist()[:10]))}")
        item, annotator = data.item, data.annotator
        sign = np.where(data.label == 0, 1.0, -1.0)
        rng = np.random.default_rng(self.random_state)
        y = rng.normal(1.0, 1.0, size=data.n_answers)
        for _ in range(self.n_iter):
            messages = sign * y
            x = np.bincount(item, messages, minlength=data.n_items)[item] - messages
            messages = sign * x
            y = np.bincount(annotator, messages, minlength=data.n_annotators)[annotator] - messages
            scale = np.abs(y).max()
            if not np.isfinite(scale) or scale == 0:
                break
            y /= scale
        score = np.bincount(item, sign * y, minlength=data.n_items)
        probas = np.zeros((data.n_items, 2))
        probas[np.arange(data.n_items), (score < 0).astype(np.int64)] = 1.0
        clamp_gold(probas, gold_items, gold_labels)
        return probas, _agreement(data, probas.argmax(axis=1))

    def _set_empty_frames(self) -> None:
        import pandas as pd

        super()._set_empty_frames()
        self.labels_ = pd.Series([], dtype="O", name="agg_label")
