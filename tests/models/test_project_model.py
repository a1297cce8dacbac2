"""The project model: cross-fitted out-of-fold probabilities, ECE, versioning, multi_choice."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from goldlabel.models import MultiChoiceModel, ProjectModel, expected_calibration_error


def _blobs(n: int, k: int, rng: np.random.Generator, dim: int = 16, spread: float = 1.5,
           centers: np.ndarray | None = None):
    if centers is None:
        centers = np.random.default_rng(99).normal(size=(k, dim)) * 2 / np.sqrt(dim / 4)
    y = rng.integers(k, size=n)
    return centers[y] + rng.normal(size=(n, dim)) * spread, y


def test_out_of_fold_probabilities_are_honest_and_calibrated():
    rng = np.random.default_rng(0)
    X, y = _blobs(1500, 3, rng)
    model = ProjectModel(n_classes=3, folds=5)
    result = model.fit(X, y)
    assert result.oof_probas.shape == (1500, 3)
    np.testing.assert_allclose(result.oof_probas.sum(axis=1), 1.0, atol=1e-6)
    # the out-of-fold accuracy predicts the accuracy on fresh items (no training-set optimism)
    X_new, y_new = _blobs(1500, 3, np.random.default_rng(10))  # same centers, new items
    fresh = (model.predict_proba(X_new).argmax(axis=1) == y_new).mean()
    assert abs(result.metrics["oof_accuracy"] - fresh) < 0.05
    assert result.metrics["ece"] < 0.05 and result.metrics["labels"] == 1500
    assert result.version.startswith("logreg-") and result.version == ProjectModel(3).fit(X, y).version
    assert ProjectModel(3).fit(X, (y + 1) % 3).version != result.version


def test_oof_rows_come_from_models_that_never_saw_the_item():
    """Labels that are pure noise: a model scoring its own training items would fit them; the
    out-of-fold probabilities stay at chance."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 200))
    y = rng.integers(2, size=400)
    model = ProjectModel(2, C=100.0)
    result = model.fit(X, y)
    assert (result.oof_probas.argmax(axis=1) == y).mean() < 0.62
    assert (model.predict_proba(X).argmax(axis=1) == y).mean() > 0.75  # in-sample: memorised


def test_weights_metadata_and_missing_classes():
    rng = np.random.default_rng(2)
    X, y = _blobs(300, 2, rng)
    weight = np.where(rng.random(300) < 0.5, 0.5, 1.0)
    metadata = rng.normal(size=300)
    model = ProjectModel(n_classes=4)  # classes 2 and 3 have no labels yet
    result = model.fit(X, y, weight=weight, metadata=metadata)
    probas = model.predict_proba(X, metadata=metadata)
    assert probas.shape == (300, 4) and (probas[:, 2:] == 0).all()
    assert result.metrics["oof_accuracy"] > 0.8
    with pytest.raises(ValueError, match="at least 2 classes"):
        ProjectModel(2).fit(X, np.zeros(300, dtype=int))
    with pytest.raises(ValueError, match="class codes in 0..1"):
        ProjectModel(2).fit(X, np.full(300, 2))
    with pytest.raises(RuntimeError, match="fit the project model"):
        ProjectModel(2).predict_proba(X)


def test_multi_choice_one_model_per_option():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(600, 8))
    Y = np.stack([X[:, 0] > 0, X[:, 1] > 0.5, np.zeros(600, bool)], axis=1).astype(int)
    model = MultiChoiceModel(3)
    model.fit(X, Y)
    assert model.oof_probas_.shape == (600, 3)
    assert ((model.oof_probas_[:, :2] > 0.5) == Y[:, :2]).mean() > 0.9
    assert (model.predict_proba(X)[:, 2] == 0).all()


def test_ece():
    probas = np.array([[0.9, 0.1]] * 10)
    labels = np.array([0] * 9 + [1])
    assert expected_calibration_error(probas, labels) == pytest.approx(0.0)
    assert expected_calibration_error(probas, np.ones(10, int)) == pytest.approx(0.9)


def test_library_imports_nothing_from_the_server():
    code = ("import sys, goldlabel.models; "
            "print(sorted(m for m in sys.modules if m.startswith('goldlabel.') and "
            "not m.startswith(('goldlabel.models', 'goldlabel.quality'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    from goldlabel import models
    assert all(hasattr(models, name) for name in models.__all__)
