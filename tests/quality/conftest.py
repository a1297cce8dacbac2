"""Factories and dataset access for the quality tests (no database, no server)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from goldlabel.quality import Answers, encode


def find_datasets() -> Path | None:
    """$GOLDLABEL_DATASETS, else ../shared/datasets next to the repository."""
    configured = os.environ.get("GOLDLABEL_DATASETS")
    root = Path(configured) if configured else Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
    return root if root.is_dir() else None


@pytest.fixture(scope="session")
def datasets_root() -> Path:
    root = find_datasets()
    if root is None:
        pytest.skip("crowd datasets not found: set GOLDLABEL_DATASETS or place them in ../shared/datasets")
    return root


CROWDKIT_PYTHON = Path(os.environ.get("GOLDLABEL_CROWDKIT_PYTHON",
                                     Path(__file__).resolve().parents[2] / ".venv-crowdkit" / "bin" / "python"))


@pytest.fixture(scope="session")
def crowdkit_python() -> Path:
    """The interpreter of crowd-kit's virtualenv (``make crowdkit``; ``make test`` builds it), for
    the cross-checks against crowd-kit: without it they fail in CI and skip elsewhere."""
    if not CROWDKIT_PYTHON.exists():
        message = (f"crowd-kit not installed at {CROWDKIT_PYTHON}: run `make crowdkit` "
                   "(or set GOLDLABEL_CROWDKIT_PYTHON)")
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(message)
        pytest.skip(message)
    return CROWDKIT_PYTHON


def categorical_names(root: Path | None) -> list[str]:
    if root is None:
        return []
    return sorted(
        d.name for d in root.iterdir()
        if (d / "meta.json").is_file() and json.loads((d / "meta.json").read_text()).get("task_type") == "categorical"
    )


def simulate_answers(
    n_items: int = 200,
    n_annotators: int = 10,
    n_labels: int = 3,
    per_item: int = 5,
    accuracies: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[Answers, np.ndarray]:
    """One-coin annotators with the given accuracies; returns (answers, true label codes)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_labels, n_items)
    if accuracies is None:
        accuracies = rng.uniform(0.55, 0.95, n_annotators)
    items = np.repeat(np.arange(n_items), per_item)
    annotators = np.concatenate([rng.choice(n_annotators, per_item, replace=False) for _ in range(n_items)])
    correct = rng.random(len(items)) < accuracies[annotators]
    wrong = (truth[items] + rng.integers(1, n_labels, len(items))) % n_labels
    labels = np.where(correct, truth[items], wrong)
    return encode(items, annotators, labels, label_order=range(n_labels)), truth


@pytest.fixture
def simulate():
    """The :func:`simulate_answers` factory."""
    return simulate_answers
