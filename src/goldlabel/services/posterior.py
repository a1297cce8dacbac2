"""The per-answer posterior of one item between re-fits: what :func:`item_consensus` returns
to the submit (services/quality.py ``after_answer``), O(answers on the item).

For each choice question, the posterior of :func:`goldlabel.quality.item_posterior`, summed
from per-answer log likelihoods: annotators without a learned skill read a cached table of the
default annotator, those with one get their (shrunk) confusion matrix built; the class prior
and its log are cached per stored prior. The other question kinds: services.consensus_kinds.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import sqlalchemy as sa

from goldlabel.quality.dawid_skene import _posterior_from_scores
from goldlabel.quality.skill import (
    confusions_from_skills,
    default_confusion,
    default_log_likelihoods,
)
from goldlabel.services import cold_start, consensus_kinds
from goldlabel.services.context import Context
from goldlabel.storage import quality as quality_store


def _confusions(conn: sa.Connection, project_id: int, question: str, annotator_ids: list[int],
                n_labels: int, default_accuracy: float, skills: dict[int, dict] | None = None,
                prior_answers: float = 0.0) -> np.ndarray:
    """Confusion matrices of the item's annotators, each shrunk toward the default annotator by
    its evidence: (n C + s C0) / (n + s), with n the answers behind the stored skill and s =
    ``prior_answers``. A re-fit on a few answers per annotator makes annotators look nearly
    perfect; unshrunk, the posterior then stops items with P(top) ~ 0.97 that are right only
    73-93% of the time (benchmarks/adaptive_overlap.py). An annotator with no stored skill is
    the default annotator C0 exactly (shrunk or not)."""
    if skills is None:
        skills = quality_store.fetch_skills(conn, project_id, question, annotator_ids)
    out = np.empty((len(annotator_ids), n_labels, n_labels))
    skilled = [i for i, a in enumerate(annotator_ids) if a in skills]
    if len(skilled) < len(annotator_ids):
        out[:] = default_confusion(default_accuracy, n_labels)
    if skilled:
        rows = [skills[annotator_ids[i]] for i in skilled]
        out[skilled] = _skill_confusions(rows, n_labels, default_accuracy, prior_answers)
    return out


def _skill_confusions(rows: list[dict], n_labels: int, default_accuracy: float,
                      prior_answers: float) -> np.ndarray:
    """:func:`_confusions` for annotators that all have a stored skill row (``rows``)."""
    matrices = confusions_from_skills(np.array([r["accuracy"] for r in rows]), n_labels)
    for j, r in enumerate(rows):
        matrix = r.get("confusion")
        if matrix is not None:
            matrix = np.asarray(matrix)
            if matrix.shape == (n_labels, n_labels):
                matrices[j] = matrix
    if prior_answers > 0:
        n = np.array([float(r.get("n_answers") or 0) for r in rows])
        weight = (n / (n + prior_answers))[:, None, None]
        matrices = weight * matrices + (1 - weight) * default_confusion(default_accuracy, n_labels)
    return matrices


def _answer_log_likelihoods(conn: sa.Connection, project_id: int, question: str, annotator_ids: list[int],
                            codes: np.ndarray, n_labels: int, default_accuracy: float,
                            skills: dict[int, dict] | None = None, prior_answers: float = 0.0) -> np.ndarray:
    """``(n_answers, n_labels)``: row a is log P(answer a's label ``codes[a]`` | true class k)
    under the annotator's matrix from :func:`_confusions`, the terms
    :func:`goldlabel.quality.item_posterior` sums. Annotators with no stored skill (all of them
    until a project's first re-fit) read their row from the cached default table, so they cost
    no numpy work; only annotators with a stored skill get their matrices built."""
    if skills is None:
        skills = quality_store.fetch_skills(conn, project_id, question, annotator_ids)
    out = default_log_likelihoods(default_accuracy, n_labels)[codes]
    skilled = [i for i, a in enumerate(annotator_ids) if a in skills] if skills else []
    if skilled:
        rows = [skills[annotator_ids[i]] for i in skilled]
        matrices = _skill_confusions(rows, n_labels, default_accuracy, prior_answers)
        # work in log space: products of many small probabilities underflow
        with np.errstate(divide="ignore"):
            out[skilled] = np.log(matrices[np.arange(len(skilled)), :, codes[skilled]])
    return out


def _prior(conn: sa.Connection, project_id: int, question: str, n_labels: int,
           model: dict | None = None) -> np.ndarray:
    """The class prior the per-answer update uses (read-only: cached, see :func:`_prior_and_log`)."""
    return _prior_and_log(conn, project_id, question, n_labels, model)[0]


def _prior_and_log(conn: sa.Connection, project_id: int, question: str, n_labels: int,
                   model: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The class prior and its log: the stored model's prior mixed with uniform, or uniform
    when there is none or it does not fit the labels. Cached per (stored prior, n_labels), so
    both arrays are read-only."""
    if model is None:
        model = quality_store.fetch_model(conn, project_id, question)
    stored = model["prior"] if model and model["prior"] else None
    try:
        return _cached_prior(tuple(stored) if isinstance(stored, list) else stored, n_labels)
    except TypeError:  # a stored value that cannot be a cache key (nested lists): not a prior anyway
        return _make_prior(stored, n_labels)


@lru_cache(maxsize=1024)
def _cached_prior(stored: tuple | None, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    return _make_prior(stored, n_labels)


def _make_prior(stored: Any, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    prior = np.asarray(stored, dtype=np.float64) if stored is not None else None
    if prior is None or prior.shape != (n_labels,):
        prior = np.full(n_labels, 1.0 / n_labels)
    else:
        # Keep every class possible: a prior of exactly 0 could never be overturned by answers.
        prior = 0.98 * prior + 0.02 / n_labels
        prior = prior / prior.sum()
    with np.errstate(divide="ignore"):
        log_prior = np.log(prior)
    prior.setflags(write=False)
    log_prior.setflags(write=False)
    return prior, log_prior


def item_consensus(ctx: Context, conn: sa.Connection, project: dict, item_answers: list[dict],
                   now: int, known: dict[str, tuple[dict[int, dict], dict]] | None = None) -> tuple[list[dict], float]:
    """Consensus rows for one item and the smallest top-answer probability (NaN: no choice question).
    ``known``: question -> (skill rows by annotator, model row) already read with the answers.
    The posterior is :func:`goldlabel.quality.item_posterior`'s, summed from per-answer log
    likelihoods (cached for annotators at the default accuracy) and a cached log prior."""
    rows: list[dict] = []
    smallest = np.nan
    # An unknown annotator is the project's pooled estimate (services/cold_start.py), not a guess.
    pooled = cold_start.knowledge(ctx, conn, project)
    accuracies = pooled.accuracy if pooled is not None else {}
    for q in ctx.get_schema(project).choice_questions():
        default_accuracy = accuracies.get(q.name, ctx.settings.default_annotator_accuracy)
        labels = list(q.labels)
        index = {label: i for i, label in enumerate(labels)}
        pairs = [(a["annotator_id"], index[a["value"][q.name]]) for a in item_answers
                 if a["value"].get(q.name) in index]
        if not pairs:
            continue
        annotator_ids = [p[0] for p in pairs]
        skills, model = (known or {}).get(q.name, (None, None))
        log_likelihoods = _answer_log_likelihoods(
            conn, project["id"], q.name, annotator_ids, np.array([p[1] for p in pairs]), len(labels),
            default_accuracy, skills, ctx.settings.skill_prior_answers,
        )
        prior, log_prior = _prior_and_log(conn, project["id"], q.name, len(labels), model)
        posterior = _posterior_from_scores(log_prior + log_likelihoods.sum(axis=0), prior)
        top = int(posterior.argmax())
        confidence = float(posterior[top])
        smallest = confidence if np.isnan(smallest) else min(smallest, confidence)
        rows.append({
            "question": q.name,
            "value": labels[top],
            "confidence": confidence,
            "method": "posterior",
            "contributions": {str(a): labels[i] for a, i in pairs},
            "agreement": sum(1 for _, i in pairs if i == top) / len(pairs),
            "updated_at": now,
        })
    # The other kinds (multi_choice, rating, text, ranking, spans, boxes): services.consensus_kinds.
    kind_rows, kind_smallest = consensus_kinds.item_rows(ctx, conn, project, item_answers, now, pooled)
    rows.extend(kind_rows)
    if not np.isnan(kind_smallest):
        smallest = kind_smallest if np.isnan(smallest) else min(smallest, kind_smallest)
    return rows, smallest
