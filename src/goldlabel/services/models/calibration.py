"""The calibration slice: a uniformly random share of the items (a keyed hash of the item id,
``calibration_fraction`` of them), labeled by humans only, on which the auto-label threshold is
chosen. The key is the install's, so every process agrees on the slice."""

from __future__ import annotations

import secrets

import numpy as np

from goldlabel.services.context import Context
from goldlabel.storage.secrets import install_secret

SLICE_SECRET = "calibration_slice_key"  # nosec B105  # the name of the install secret, not a secret


def slice_key(ctx: Context) -> bytes:
    """The install's calibration-slice key (``install_secrets``: 32 random bytes, made once, kept
    in the database so every process agrees on the slice)."""
    key = ctx.__dict__.get("_calibration_slice_key")
    if key is None:
        key = bytes.fromhex(install_secret(ctx.engine, SLICE_SECRET, lambda: secrets.token_hex(32)))
        ctx.__dict__["_calibration_slice_key"] = key
    return key


def in_slice(ctx: Context, item_ids, settings: dict) -> np.ndarray:
    """Which of these items are in the project's calibration slice (goldlabel.models.calibration_slice)."""
    from goldlabel.models import calibration_slice

    return calibration_slice(np.asarray(item_ids, dtype=np.int64), slice_key(ctx), settings["calibration_fraction"])
