"""``rating`` consensus: a precision-weighted mean snapped to the grid, P(within tolerance)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
from scipy import special

from goldlabel.quality.consensus.question import RatingScale
from goldlabel.quality.ratings import RobustRating

RATING_PRIOR_DOF = 2.0
_WEIGHT_CLIP = (0.25, 4.0)


# ================================================================ per answer


def rating_tolerance(question: RatingScale, settings: Mapping[str, Any] | None = None) -> float:
    """Half a step, or a twentieth of the range on a continuous scale; ``rating_tolerance``
    in the project settings overrides both."""
    tol = (settings or {}).get("rating_tolerance")
    if tol:
        return float(tol)
    if question.step is None:
        return (question.max - question.min) / 20.0
    return question.step / 2.0


def _snap_ratings(question: RatingScale, x: np.ndarray) -> np.ndarray:
    x = np.clip(np.asarray(x, dtype=np.float64), question.min, question.max)
    if question.step is None:
        return x
    return np.clip(question.min + np.round((x - question.min) / question.step) * question.step,
                   question.min, question.max)


def _rating_value(question: RatingScale, x: float) -> int | float:
    if (isinstance(question.min, int) and isinstance(question.max, int)
            and isinstance(question.step, int)):
        return round(x)
    return float(f"{x:.12g}")


def _rating_confidence(count: np.ndarray, wsum: np.ndarray, mean: np.ndarray, ss: np.ndarray,
                       value: np.ndarray, tol: float, prior_sd: float | None = None) -> np.ndarray:
    """P(|mu - value| <= tol) under the Student-t posterior of the item's true rating; the
    prior noise sd is ``prior_sd`` (the project's pooled one) or the tolerance."""
    dof = RATING_PRIOR_DOF + count - 1.0
    sd = tol if prior_sd is None else prior_sd
    s2 = (RATING_PRIOR_DOF * sd * sd + ss) / dof
    scale = np.sqrt(s2 / wsum)
    return (cast("np.ndarray", special.stdtr(dof, (value + tol - mean) / scale)
            - special.stdtr(dof, (value - tol - mean) / scale)))


def rating_consensus(question: RatingScale, values: Sequence[float],
                     settings: Mapping[str, Any] | None = None,
                     weights: Any = None) -> tuple[int | float, float]:
    """Precision-weighted mean snapped to the grid, and P(true rating within tolerance)."""
    x = np.asarray(values, dtype=np.float64)
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=np.float64)
    wsum = w.sum()
    mean = float(w @ x / wsum)
    ss = float(w @ (x - mean) ** 2)
    snapped = float(_snap_ratings(question, np.array([mean]))[0])
    conf = _rating_confidence(np.array([len(x)], float), np.array([wsum]), np.array([mean]),
                              np.array([ss]), np.array([snapped]), rating_tolerance(question, settings),
                              (settings or {}).get("rating_prior_sd"))
    return _rating_value(question, snapped), float(conf[0])


# ================================================================ full re-fit (vectorized)


def refit_rating(q: Any, items: np.ndarray, item: np.ndarray, annotator: np.ndarray, annotator_ids: np.ndarray,
                 values: list[Any], default: float, settings: Mapping[str, Any], now: int,
                 ) -> tuple[str, list[Any], Any, list[dict[str, Any]] | None]:
    x = np.asarray(values, dtype=np.float64)
    est = RobustRating().fit(item, annotator, x, n_items=len(items), n_annotators=len(annotator_ids))
    tau = est.precisions_[annotator]
    w = np.clip(tau / np.median(tau), *_WEIGHT_CLIP)
    corrected = x - est.biases_[annotator]
    n_items = len(items)
    count = np.bincount(item, minlength=n_items).astype(float)
    # relative precisions, scaled to mean 1 on each item: learned skills move the value and
    # discount an imprecise annotator's disagreement, but never count as extra answers
    w = w * (count / np.bincount(item, weights=w, minlength=n_items))[item]
    wsum = count
    mean = np.bincount(item, weights=w * corrected, minlength=n_items) / wsum
    ss = np.bincount(item, weights=w * (corrected - mean[item]) ** 2, minlength=n_items)
    snapped = _snap_ratings(q, mean)
    confidence = _rating_confidence(count, wsum, mean, ss, snapped, rating_tolerance(q, settings),
                                    settings.get("rating_prior_sd"))
    return "robust_rating", [_rating_value(q, v) for v in snapped.tolist()], confidence, None

