"""Train / validation / test splits: a stable function of an item's external_id.

An item's split never changes while the project's ratios stay the same, whatever else is
imported or exported: it is a hash of the external_id mapped onto [0, 1), cut at the cumulative
ratios. Items imported later land in each split in proportion, and two exports a month apart put
every item in the same split (a validation item never leaks into training).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

SPLITS = ("train", "validation", "test")
DEFAULT_SPLIT_RATIOS = (0.8, 0.1, 0.1)
_SCALE = float(2**64)


def check_split_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    """Three non-negative shares (train, validation, test) summing to 1; raises ValueError."""
    values = tuple(float(r) for r in ratios)
    if len(values) != 3:
        raise ValueError(f"split_ratios needs 3 shares (train, validation, test), got {len(values)}")
    if any(not (0.0 <= r <= 1.0) for r in values):
        raise ValueError(f"each split share must lie in [0, 1], got {list(values)}")
    if abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(f"split shares must sum to 1, got {sum(values):g}")
    return values[0], values[1], values[2]


def split_point(external_id: str) -> float:
    """Where the external_id falls on [0, 1): the first 8 bytes of its BLAKE2b hash."""
    digest = hashlib.blake2b(external_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def split_of(external_id: str, ratios: Sequence[float] = DEFAULT_SPLIT_RATIOS) -> str:
    """``"train"``, ``"validation"`` or ``"test"`` for this external_id under these shares."""
    return splits_of([external_id], ratios)[0]


def splits_of(external_ids: Sequence[str], ratios: Sequence[float] = DEFAULT_SPLIT_RATIOS) -> list[str]:
    """:func:`split_of` for many external_ids at once (an export's batch): the hashes one by
    one, the cut at the cumulative shares in one ``searchsorted``."""
    blake2b = hashlib.blake2b
    digests = b"".join(blake2b(e.encode("utf-8", "surrogatepass"), digest_size=8).digest() for e in external_ids)
    points = np.frombuffer(digests, dtype=">u8").astype(np.float64) / _SCALE
    edges = np.cumsum(np.asarray(ratios, dtype=np.float64))
    # Rounding can leave the top of [0, 1) uncovered: it belongs to the last split with a share.
    last = max(i for i, share in enumerate(ratios) if share > 0)
    index = np.minimum(np.searchsorted(edges, points, side="right"), last)
    return [SPLITS[i] for i in index.tolist()]
