"""Calibration of final-label confidence."""

from __future__ import annotations

import numpy as np

__all__ = ["compute_ece"]


def compute_ece(confidence: np.ndarray, is_correct: np.ndarray, n_bins: int = 10) -> float:
    r"""Expected calibration error of final-label confidences against truth, equal-width bins:

    .. math:: \mathrm{ECE} = \sum_b \frac{|B_b|}{n} \,\big|\mathrm{acc}(B_b) - \mathrm{conf}(B_b)\big|

    Guo, Pleiss, Sun & Weinberger (2017), "On calibration of modern neural networks", ICML.
    """
    confidence = np.asarray(confidence, dtype=np.float64).ravel()
    is_correct = np.asarray(is_correct, dtype=np.float64).ravel()
    if len(confidence) != len(is_correct):
        raise ValueError(f"confidence and is_correct differ in length: {len(confidence)} vs {len(is_correct)}")
    if len(confidence) == 0:
        raise ValueError("no predictions to calibrate")
    bins = np.clip((confidence * n_bins).astype(np.int64), 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    gap = np.abs(np.bincount(bins, confidence, n_bins) - np.bincount(bins, is_correct, n_bins))
    return float(gap.sum() / count.sum())
