"""Shared machinery of the categorical (single choice) truth-inference estimators.

Estimators follow scikit-learn: constructor arguments are stored unchanged, ``fit`` returns
``self`` and learned attributes end in ``_``. ``fit`` takes an :class:`~goldlabel.quality.Answers`
or a pandas DataFrame (item/annotator/label or crowd-kit's task/worker/label).

Output types follow the input: fitted on ``Answers``, ``labels_`` is a numpy array of label
values aligned with ``item_ids_``, ``probas_`` an array ``(n_items, n_labels)`` with columns
``label_ids_`` and ``skills_`` an array aligned with ``annotator_ids_``; fitted on a DataFrame,
they are a pandas Series / DataFrame / Series indexed by item or annotator, as crowd-kit
returns them. ``label_codes_`` is always the integer code array.
"""

from __future__ import annotations

from typing import Any, Self, cast

import numpy as np
import scipy.sparse as sp

from .answers import Answers, encode_gold, from_frame

__all__ = ["CategoricalEstimator"]


class CategoricalEstimator:
    """Base class: subclasses implement ``_fit(data, gold_items, gold_labels)`` and return
    ``(probas, skills)``; they may set further learned attributes on ``self``."""

    # Learned attributes: numpy arrays when fitted on Answers, pandas objects on a frame.
    labels_: Any
    probas_: Any
    skills_: Any

    def fit(self, answers: Any, gold: Any = None, *, true_labels: Any = None) -> Self:
        """Infer the true label of every item.

        ``gold`` (optional; ``true_labels`` is crowd-kit's name for it): known labels, a mapping
        item -> label, a pandas Series indexed by item, or ``(items, labels)`` arrays. Gold
        items' posteriors are clamped to the known label, so annotators' skills are learned
        from them too (semi-supervised).

        A DataFrame with no rows gives empty results (as crowd-kit does); an empty
        :class:`Answers` is a ValueError.
        """
        gold = _one_gold(gold, true_labels)
        data, frame_columns = _coerce_answers(answers)
        if data.n_answers == 0:
            if frame_columns is None:
                raise ValueError("no answers to aggregate")
            self._set_empty_frames()
            return self
        data = self._select(data)
        gold_items, gold_labels = encode_gold(data, gold)
        probas, skills = self._fit(data, gold_items, gold_labels)
        self._store(data, frame_columns, probas, skills)
        return self

    def _store(self, data: Answers, frame_columns: tuple[str, str] | None, probas: np.ndarray,
               skills: np.ndarray) -> None:
        self.item_ids_ = data.item_ids
        self.annotator_ids_ = data.annotator_ids
        self.label_ids_ = data.label_ids
        self.n_answers_ = np.bincount(data.item, minlength=data.n_items)
        # ties go to the lowest label code, as majority vote conventionally does
        self.label_codes_ = np.argmax(probas, axis=1)
        labels = data.label_ids[self.label_codes_]
        if frame_columns is None:
            self.labels_, self.probas_, self.skills_ = labels, probas, skills
            self._array_extras()
        else:
            import pandas as pd

            item_name, annotator_name = frame_columns
            index = pd.Index(data.item_ids, name=item_name)
            label_index = pd.Index(data.label_ids, name="label")
            annotator_index = pd.Index(data.annotator_ids, name=annotator_name)
            self.labels_ = pd.Series(labels, index=index, name="agg_label")
            self.probas_ = pd.DataFrame(probas, index=index, columns=label_index)
            self.skills_ = pd.Series(skills, index=annotator_index, name="skill")
            self._frame_extras(pd, index, annotator_index, label_index)

    def _select(self, data: Answers) -> Answers:
        """The answers to fit on (all of them; majority vote may drop unweighted annotators)."""
        return data

    def _array_extras(self) -> None:
        """Crowd-kit-named attributes (``priors_``, ...) for a fit on arrays; subclasses add."""

    def _frame_extras(self, pd: Any, items: Any, annotators: Any, labels: Any) -> None:
        """Crowd-kit-shaped pandas attributes for a fit on a DataFrame; subclasses add."""

    def _set_empty_frames(self) -> None:
        import pandas as pd

        self.labels_ = pd.Series(dtype=float, name="agg_label")
        self.probas_ = pd.DataFrame()
        self.skills_ = pd.Series(dtype=float, name="skill")

    def fit_predict(self, answers: Any, gold: Any = None, *, true_labels: Any = None) -> Any:
        return self.fit(answers, gold, true_labels=true_labels).labels_

    def fit_predict_proba(self, answers: Any, gold: Any = None, *, true_labels: Any = None) -> Any:
        return self.fit(answers, gold, true_labels=true_labels).probas_

    def get_params(self) -> dict[str, Any]:
        import inspect

        parameters = inspect.signature(type(self).__init__).parameters.values()
        plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return {p.name: getattr(self, p.name) for p in parameters if p.name != "self" and p.kind in plain}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _fit(self, data: Answers, gold_items: np.ndarray, gold_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


def _one_gold(gold: Any, true_labels: Any) -> Any:
    if true_labels is None:
        return gold
    if gold is not None:
        raise ValueError("give gold or true_labels (crowd-kit's name for it), not both")
    return true_labels


def _coerce_answers(answers: Any) -> tuple[Answers, tuple[str, str] | None]:
    if isinstance(answers, Answers):
        return answers, None
    if hasattr(answers, "columns"):
        columns = [str(c) for c in answers.columns]
        item_name = "task" if "item" not in columns and "task" in columns else "item"
        annotator_name = "worker" if "annotator" not in columns and "worker" in columns else "annotator"
        # items and annotators keep their order of first appearance, as crowd-kit's results do
        return from_frame(answers, order="appearance"), (item_name, annotator_name)
    raise ValueError(
        "fit expects goldlabel.quality.Answers or a pandas DataFrame with columns "
        f"item/annotator/label (or task/worker/label); got {type(answers).__name__}"
    )


# ----------------------------------------------------------------- vectorized building blocks


class CountMatrix:
    """Sparse counts ``C[item, annotator * n_labels + label]`` of an Answers and its transpose.

    The E-step of every confusion-matrix model is ``C @ W`` and the M-step ``C.T @ T``: two
    sparse products per iteration, no Python loop per answer or item.
    """

    def __init__(self, data: Answers) -> None:
        self.n_items, self.n_annotators, self.n_labels = data.n_items, data.n_annotators, data.n_labels
        columns = data.annotator.astype(np.int64) * self.n_labels + data.label
        ones = np.ones(data.n_answers, dtype=np.float64)
        shape = (self.n_items, self.n_annotators * self.n_labels)
        self.matrix = sp.csr_matrix((ones, (data.item, columns)), shape=shape)
        self.matrix.sum_duplicates()
        self.transposed = self.matrix.T.tocsr()

    def item_scores(self, log_confusions: np.ndarray) -> np.ndarray:
        """``S[i, k] = sum over answers (j, l) on i of log_confusions[j, k, l]``.

        ``log_confusions`` has shape ``(n_annotators, n_states, n_labels)``; ``n_states`` may
        exceed ``n_labels`` (latent sub-types).
        """
        n_states = log_confusions.shape[1]
        weights = log_confusions.transpose(0, 2, 1).reshape(-1, n_states)
        return np.asarray(self.matrix @ weights)

    def confusion_counts(self, posteriors: np.ndarray) -> np.ndarray:
        """Expected counts ``N[j, k, l]``: annotator j said l while the item's state was k."""
        n_states = posteriors.shape[1]
        counts = np.asarray(self.transposed @ posteriors)
        return counts.reshape(self.n_annotators, self.n_labels, n_states).transpose(0, 2, 1)


def vote_counts(data: Answers, weights: np.ndarray | None = None) -> np.ndarray:
    """``V[i, l]``: (weighted) number of answers with label l on item i."""
    w = None if weights is None else weights[data.annotator]
    flat = np.bincount(data.item * data.n_labels + data.label, weights=w,
                       minlength=data.n_items * data.n_labels)
    return flat.reshape(data.n_items, data.n_labels).astype(np.float64)


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    totals = matrix.sum(axis=-1, keepdims=True)
    uniform = np.full_like(matrix, 1.0 / matrix.shape[-1])
    return cast("np.ndarray", np.divide(matrix, totals, out=uniform, where=totals > 0))


def softmax_rows(scores: np.ndarray) -> tuple[np.ndarray, float]:
    """Row-wise softmax and the total log normalizer (the log-likelihood)."""
    # work in log space: products of many small probabilities underflow; shift each row by
    # its max before exp (scipy's logsumexp is ~20x slower on tall arrays)
    top = scores.max(axis=1, keepdims=True)
    top[~np.isfinite(top)] = 0.0
    shifted = np.subtract(scores, top)
    np.exp(shifted, out=shifted)
    totals = shifted.sum(axis=1, keepdims=True)
    shifted /= totals
    return shifted, float(top.sum() + np.log(totals).sum())


def clamp_gold(posteriors: np.ndarray, gold_items: np.ndarray, gold_labels: np.ndarray) -> np.ndarray:
    if len(gold_items):
        posteriors[gold_items] = 0.0
        posteriors[gold_items, gold_labels] = 1.0
    return posteriors


def majority_posteriors(data: Answers, gold_items: np.ndarray, gold_labels: np.ndarray) -> np.ndarray:
    """Vote shares per item, gold clamped: the usual EM starting point."""
    return clamp_gold(normalize_rows(vote_counts(data)), gold_items, gold_labels)


def confusion_diagonal(confusions: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Per-annotator accuracy implied by confusion matrices under the class prior."""
    return cast("np.ndarray", np.einsum("jkk,k->j", confusions, prior))
