"""The calibration slice: a fixed, uniformly random share of a project's items whose human
labels are the only ones the auto-label threshold is chosen on.

Active learning makes the human-labeled items a biased sample (the uncertain ones), and the
bound of :func:`goldlabel.models.select_threshold` holds only for items drawn like its
calibration items. So a share of the items is set aside by chance, before any model exists:
membership is a keyed hash of the item id (BLAKE2b with a per-install secret key) read as a
number in [0, 1) and compared with ``fraction``. Nothing is stored (no column, no migration),
the same item is in or out for every process of an install and forever, and without the key no
one can compute it from the ids. Which slice items humans label never depends on a model (the
platform leaves their queue priority alone and shows them no model output), so the slice's
labeled items are a uniform sample of the project's.
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np

from .autolabel import ThresholdResult, select_threshold

_ID = struct.Struct(">q")
_SCALE = float(2**64)


def slice_unit(item_ids: np.ndarray | list[int], key: bytes) -> np.ndarray:
    """Each item's keyed-hash value, uniform in [0, 1) (float64): BLAKE2b keyed with ``key``
    over the 8-byte id, its first 8 bytes as an unsigned integer / 2^64."""
    if not isinstance(key, bytes | bytearray) or not 16 <= len(key) <= 64:
        raise ValueError("the calibration key must be 16 to 64 bytes")
    ids = np.asarray(item_ids, dtype=np.int64).ravel()
    key = bytes(key)
    digests = b"".join(hashlib.blake2b(_ID.pack(i), key=key, digest_size=8).digest() for i in ids.tolist())
    return np.frombuffer(digests, dtype=">u8").astype(np.float64) / _SCALE


def calibration_slice(item_ids: np.ndarray | list[int], key: bytes, fraction: float) -> np.ndarray:
    """Which items are in the calibration slice (bool per id): about ``fraction`` of any set of
    ids, each independently, decided by :func:`slice_unit` alone."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"the calibration fraction must lie in [0, 1], got {fraction}")
    return slice_unit(item_ids, key) < fraction


def slice_threshold(scores: np.ndarray, correct: np.ndarray, in_slice: np.ndarray, target: float = 0.95,
                    delta: float = 0.05, label_confidence: np.ndarray | None = None) -> ThresholdResult:
    """The auto-label threshold chosen on the calibration slice only: :func:`select_threshold`
    over the items where ``in_slice`` holds. Labels outside it (items active learning chose,
    whatever their number or their agreement with the model) never move the threshold.
    ``label_confidence``: each label's probability of being right (see
    :func:`select_threshold`); a slice label the model's own vote helped form carries no
    evidence about the model and must come with confidence 0 (it then counts as an error)."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    correct = np.asarray(correct, dtype=bool).ravel()
    in_slice = np.asarray(in_slice, dtype=bool).ravel()
    if not scores.shape == correct.shape == in_slice.shape:
        raise ValueError(f"scores, correct and in_slice differ in length: {len(scores)}, {len(correct)}, "
                         f"{len(in_slice)}")
    confidence = None
    if label_confidence is not None:
        confidence = np.asarray(label_confidence, dtype=np.float64).ravel()
        if confidence.shape != scores.shape:
            raise ValueError(f"label_confidence and scores differ in length: {len(confidence)} vs {len(scores)}")
        confidence = confidence[in_slice]
    return select_threshold(scores[in_slice], correct[in_slice], target, delta, label_confidence=confidence)


def taken_earlier(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Which calibration items an earlier auto-labeling round would have taken had they not
    been in the slice: ``scores`` (rounds, n) are each round's model's confidence on the items,
    ``thresholds`` (rounds,) the threshold that round auto-labeled at. Vectorized.

    Why: a later round auto-labels only what the earlier rounds left, and what they left is the
    harder part of the project (everything their models were sure of is gone). The slice's
    items are exchangeable with those candidates only after the same filter, so a later round's
    bound is computed on the slice items no earlier round would have taken (on zheng_product, a
    second round bounded on the whole slice auto-labeled 1,714 leftovers at 0.876 against truth).
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    thresholds = np.asarray(thresholds, dtype=np.float64).ravel()
    if scores.shape[0] != len(thresholds):
        raise ValueError(f"{scores.shape[0]} rounds of scores but {len(thresholds)} thresholds")
    if not len(thresholds):
        return np.zeros(scores.shape[1], dtype=bool)
    return np.asarray((scores >= thresholds[:, None]).any(axis=0), dtype=bool)
