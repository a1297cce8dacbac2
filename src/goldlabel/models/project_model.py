"""The project model: logistic regression over embeddings (plus optional numeric metadata),
trained on final labels weighted by their confidence, with K-fold cross-fitted out-of-fold
probabilities for every labeled item (what calibration, the auto-label threshold and the
label-error audit must use) and predictions for every item.

Question kinds: ``choice`` and ``rating`` (a rating's levels are classes) fit one multinomial
model; ``multi_choice`` fits one binary model per option (labels: an ``(n, n_options)`` 0/1 matrix).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold


def expected_calibration_error(probas: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """ECE of the top-class confidence: sum over equal-width confidence bins of
    |accuracy - mean confidence| weighted by the bin's share of items."""
    probas = np.asarray(probas, dtype=np.float64)
    labels = np.asarray(labels)
    if len(labels) == 0:
        return float("nan")
    confidence = probas.max(axis=1)
    correct = probas.argmax(axis=1) == labels
    bins = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    gap = np.abs(np.bincount(bins, weights=correct, minlength=n_bins)
                 - np.bincount(bins, weights=confidence, minlength=n_bins))
    return float(gap.sum() / count.sum())


@dataclass
class FitResult:
    """A fitted project model's version and metrics, and its out-of-fold probabilities."""

    model_id: str
    version: str
    classes: list[Any]
    oof_probas: np.ndarray            # (n_labeled, n_classes): each row from a fold without it
    metrics: dict[str, Any] = field(default_factory=dict)


class ProjectModel:
    """Logistic regression over item features, cross-fitted.

    ``fit(X, y, weight)`` with ``y`` class codes ``0..n_classes-1`` (``n_classes`` fixes the
    label space even when a class has no label yet) fits ``folds`` models, each on the other
    folds, for the out-of-fold probabilities, and one on all labels for :meth:`predict_proba`.
    ``C``: inverse regularisation strength on standardised features; ``"auto"`` picks it from
    :attr:`C_GRID` by the 3-fold log loss of the labels themselves (on at most 1,500 of them,
    so the choice costs a fraction of the fit): embeddings have hundreds of dimensions, and a
    fixed penalty either overfits a few hundred labels or underfits tens of thousands. Metrics:
    accuracy and log loss of the out-of-fold predictions against the labels, ECE, label count, fit seconds.
    """

    #: the penalties ``C="auto"`` chooses from
    C_GRID = (0.003, 0.03, 0.3)

    def __init__(self, n_classes: int, folds: int = 5, C: float | str = "auto", max_iter: int = 300,
                 seed: int = 0, model_id: str = "logreg") -> None:
        if n_classes < 2:
            raise ValueError(f"a project model needs at least 2 classes, got {n_classes}")
        self.n_classes, self.folds, self.C, self.max_iter, self.seed = n_classes, folds, C, max_iter, seed
        self.model_id = model_id
        self.final_: LogisticRegression | None = None
        self.result_: FitResult | None = None

    def _features(self, X: np.ndarray, metadata: np.ndarray | None) -> np.ndarray:
        # standardised with the fit's statistics: the penalty C then means the same whatever the
        # scale of the embedding (unit-norm 384-d vectors have entries around 0.05)
        X = (np.asarray(X, dtype=np.float32) - self._mean) / self._scale
        if metadata is None:
            return X
        meta = np.asarray(metadata, dtype=np.float32)
        if meta.ndim == 1:
            meta = meta[:, None]
        # standardised with the statistics seen at fit time, so metadata does not swamp embeddings
        return np.hstack([X, (meta - self._meta_mean) / self._meta_scale])

    def _choose_C(self, features: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
        rng = np.random.default_rng(self.seed)
        rows = rng.choice(len(y), size=min(len(y), 1500), replace=False)
        X, yy, ww = features[rows], y[rows], w[rows]
        counts = np.bincount(yy, minlength=self.n_classes)
        if counts[counts > 0].min() < 3:
            return self.C_GRID[0]  # too few labels of a class to compare: the strongest penalty
        losses = []
        for C in self.C_GRID:
            loss = 0.0
            for train, test in StratifiedKFold(3, shuffle=True, random_state=self.seed).split(X, yy):
                model = LogisticRegression(C=C, max_iter=self.max_iter).fit(X[train], yy[train],
                                                                             sample_weight=ww[train])
                p = self._expand(model, model.predict_proba(X[test]))[np.arange(len(test)), yy[test]]
                loss -= np.log(np.clip(p, 1e-12, None)).sum()
            losses.append(loss)
        return self.C_GRID[int(np.argmin(losses))]

    def _one(self, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> LogisticRegression:
        model = LogisticRegression(C=self.C_, max_iter=self.max_iter)
        model.fit(X, y, sample_weight=w)
        return model

    def _expand(self, model: LogisticRegression, probas: np.ndarray) -> np.ndarray:
        """Probabilities over all ``n_classes`` (a class absent from a fold's labels gets 0)."""
        out = np.zeros((len(probas), self.n_classes))
        out[:, model.classes_] = probas
        return out

    def _fit_scaling(self, X: np.ndarray) -> None:
        raw = np.asarray(X, dtype=np.float32)
        self._mean = raw.mean(axis=0)
        std = raw.std(axis=0)
        self._scale = np.where(std > 0, std, 1.0).astype(np.float32)

    def fold_assignment(self, y: np.ndarray) -> np.ndarray:
        """Each label's fold (``0..folds-1``): stratified when every class present has at least
        ``folds`` labels, else plain K-fold; shuffled with ``seed``, so the same labels always
        get the same folds."""
        y = np.asarray(y, dtype=np.int64)
        counts = np.bincount(y, minlength=self.n_classes)
        smallest = counts[counts > 0].min()
        folds = min(self.folds, len(y))
        splitter = (StratifiedKFold(folds, shuffle=True, random_state=self.seed) if smallest >= folds
                    else KFold(folds, shuffle=True, random_state=self.seed))
        fold_of = np.empty(len(y), dtype=np.int64)
        for k, (_, test) in enumerate(splitter.split(np.zeros((len(y), 1)), y)):
            fold_of[test] = k
        return fold_of

    def fold_probas(self, features: np.ndarray, y: np.ndarray, w: np.ndarray, fold_of: np.ndarray,
                    k: int) -> np.ndarray:
        """Out-of-fold probabilities of fold ``k``'s labels (rows ``fold_of == k``, in order), from a
        model fitted on the other folds (``features``: already standardised, as :meth:`fit` makes
        them; ``C_`` chosen). :meth:`fit` calls it per fold; so does the scale-out audit pass
        (``goldlabel.models.scaleout``), one fold per batch, wherever the batch runs."""
        train, test = fold_of != k, fold_of == k
        if len(np.unique(y[train])) < 2:  # a fold with one class: predict its class frequency
            freq = np.bincount(y[train], minlength=self.n_classes) / max(int(train.sum()), 1)
            return np.tile(freq, (int(test.sum()), 1))
        model = self._one(features[train], y[train], w[train])
        return self._expand(model, model.predict_proba(features[test]))

    def prepare(self, X: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """What :meth:`fit` computes before its folds: ``(features, y, w, fold_of)``, with the
        standardisation and ``C_`` set on this model (the audit pass then runs
        :meth:`fold_probas` per fold, in process or on Ray)."""
        y = np.asarray(y, dtype=np.int64)
        w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=np.float64)
        self._fit_scaling(X)
        features = self._features(X, None)
        self.C_ = self._choose_C(features, y, w) if self.C == "auto" else float(self.C)
        return features, y, w, self.fold_assignment(y)

    def fit(self, X: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None,
            metadata: np.ndarray | None = None) -> FitResult:
        started = time.perf_counter()
        y = np.asarray(y, dtype=np.int64)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)} labels")
        if y.min(initial=0) < 0 or y.max(initial=0) >= self.n_classes:
            raise ValueError(f"labels must be class codes in 0..{self.n_classes - 1}")
        present = np.unique(y)
        if len(present) < 2:
            raise ValueError(f"need labels of at least 2 classes to fit, got {present.tolist()}")
        w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=np.float64)
        self._fit_scaling(X)
        if metadata is not None:
            meta = np.asarray(metadata, dtype=np.float32).reshape(len(y), -1)
            self._meta_mean = meta.mean(axis=0)
            self._meta_scale = np.where(meta.std(axis=0) > 0, meta.std(axis=0), 1.0)
        features = self._features(X, metadata)
        self.C_ = self._choose_C(features, y, w) if self.C == "auto" else float(self.C)
        fold_of = self.fold_assignment(y)
        folds = int(fold_of.max()) + 1
        oof = np.zeros((len(y), self.n_classes))
        for k in range(folds):
            test = np.flatnonzero(fold_of == k)
            oof[test] = self.fold_probas(features, y, w, fold_of, k)
        self.final_ = self._one(features, y, w)
        digest = hashlib.sha256(np.ascontiguousarray(features).tobytes() + y.tobytes() + w.tobytes())
        version = f"{self.model_id}-{digest.hexdigest()[:12]}"
        metrics = {
            "labels": len(y),
            "oof_accuracy": float((oof.argmax(axis=1) == y).mean()),
            "oof_log_loss": float(-np.log(np.clip(oof[np.arange(len(y)), y], 1e-12, None)).mean()),
            "ece": expected_calibration_error(oof, y),
            "folds": int(folds),
            "C": self.C_,
            "fit_seconds": round(time.perf_counter() - started, 3),
        }
        self.result_ = FitResult(self.model_id, version, list(range(self.n_classes)), oof, metrics)
        return self.result_

    def predict_proba(self, X: np.ndarray, metadata: np.ndarray | None = None,
                      batch_size: int = 65536) -> np.ndarray:
        """``(n, n_classes)`` probabilities of the model fitted on all labels, in blocks of
        ``batch_size`` rows (X may be a memory map)."""
        if self.final_ is None:
            raise RuntimeError("fit the project model before predicting")
        out = np.empty((len(X), self.n_classes))
        for start in range(0, len(X), batch_size):
            stop = start + batch_size
            meta = None if metadata is None else np.asarray(metadata)[start:stop]
            block = self._features(np.asarray(X[start:stop]), meta)
            out[start:stop] = self._expand(self.final_, self.final_.predict_proba(block))
        return out


class MultiChoiceModel:
    """One binary :class:`ProjectModel` per option of a multi_choice question; ``Y`` is the
    ``(n, n_options)`` 0/1 matrix of chosen options. Out-of-fold and predicted probabilities
    are ``(n, n_options)``: P(option chosen)."""

    def __init__(self, n_options: int, **kwargs: Any) -> None:
        self.n_options = n_options
        self.kwargs = kwargs
        self.models: list[ProjectModel | None] = []
        self.constant = np.zeros(n_options)

    def fit(self, X: np.ndarray, Y: np.ndarray, weight: np.ndarray | None = None) -> dict[int, dict[str, Any]]:
        Y = np.asarray(Y, dtype=np.int64)
        oof = np.zeros(Y.shape, dtype=np.float64)
        metrics: dict[int, dict[str, Any]] = {}
        self.models = []
        for j in range(self.n_options):
            column = Y[:, j]
            if column.min() == column.max():  # an option always (never) chosen so far
                self.models.append(None)
                self.constant[j] = column[0]
                oof[:, j] = column[0]
                continue
            model = ProjectModel(2, **self.kwargs)
            result = model.fit(X, column, weight)
            oof[:, j] = result.oof_probas[:, 1]
            metrics[j] = result.metrics
            self.models.append(model)
        self.oof_probas_ = oof
        return metrics

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        out = np.tile(self.constant, (len(X), 1))
        for j, model in enumerate(self.models):
            if model is not None:
                out[:, j] = model.predict_proba(X)[:, 1]
        return out
