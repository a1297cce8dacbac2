"""``multi_choice`` consensus: a one-coin posterior per label, per answer and in the re-fit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
from scipy import sparse, special

from goldlabel.quality.consensus.one_coin import broadcast_accuracy, logit_weight, skill_rows
from goldlabel.quality.consensus.question import Question
from goldlabel.quality.multi_choice import MultiChoiceDawidSkene, encode_multi_choice

# ================================================================ per answer


def _choose_labels(probas: np.ndarray, min_sel: int, max_sel: int | None) -> np.ndarray:
    """(n_items, L) -> selected: P >= 0.5, then trimmed / filled to the allowed count by P."""
    n, n_labels = probas.shape
    order = np.argsort(-probas, axis=1, kind="stable")
    rank = np.empty_like(order)
    rank[np.arange(n)[:, None], order] = np.arange(n_labels)
    k = np.clip((probas >= 0.5).sum(axis=1), min_sel, n_labels if max_sel is None else max_sel)
    return cast("np.ndarray", rank < k[:, None])


def _multi_choice_decide(question: Question, probas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    chosen = _choose_labels(probas, getattr(question, "min_selections", 0),
                            getattr(question, "max_selections", None))
    confidence = np.where(chosen, probas, 1.0 - probas).min(axis=1)
    return chosen, confidence


def multi_choice_consensus(question: Question, values: Sequence[Sequence[str]],
                           accuracy: Any) -> tuple[list[str], float]:
    """Per-label one-coin posterior over one item's answers (lists of labels)."""
    selected, _ = encode_multi_choice(values, labels=question.labels)
    weight = logit_weight(broadcast_accuracy(accuracy, len(values)))
    probas = special.expit((2.0 * selected - 1.0).T @ weight)
    chosen, confidence = _multi_choice_decide(question, probas[None, :])
    return [label for label, c in zip(question.labels, chosen[0]) if c], float(confidence[0])


# ================================================================ full re-fit (vectorized)


def refit_multi_choice(q: Any, items: np.ndarray, item: np.ndarray, annotator: np.ndarray, annotator_ids: np.ndarray,
                       values: list[Any], default: float, settings: Mapping[str, Any], now: int,
                       ) -> tuple[str, list[Any], Any, list[dict[str, Any]] | None]:
    selected, _ = encode_multi_choice(values, labels=q.labels)
    est = MultiChoiceDawidSkene(coin="one").fit(item, annotator, selected, n_items=len(items),
                                                n_annotators=len(annotator_ids))
    # Posterior with the learned per-label accuracies and a prior of 1/2 per label: the
    # estimator's prevalence is a maximum-likelihood mean that collapses to 0 or 1 on small
    # projects and then outvotes the answers.
    # One accuracy per annotator (coin="one": sensitivity = specificity), averaged over the
    # labels: per-label skills are too noisy to learn from few answers. It is also the skill
    # the per-answer update reads, so both paths score an item the same way.
    accuracy = est.sensitivities_.mean(axis=1)
    weight = logit_weight(accuracy)[annotator][:, None]
    by_item = sparse.csr_matrix((np.ones(len(item)), (item, np.arange(len(item)))),
                                shape=(len(items), len(item)))
    probas = special.expit(by_item @ ((2.0 * selected - 1.0) * weight))
    chosen, confidence = _multi_choice_decide(q, probas)
    labels = np.asarray(q.labels, dtype=object)
    out_values = [labels[row].tolist() for row in chosen]
    skills = skill_rows(annotator_ids, accuracy, annotator, "onecoin_multi", now)
    return "onecoin_multi", out_values, confidence, skills

