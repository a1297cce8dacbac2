"""Multi-choice (multi-label) aggregation: one binary Dawid-Skene model per label.

An answer is the set of labels an annotator ticked for an item; every label the
annotator saw but did not tick is a "no" for that label (this is what majority vote per
label throws away when it only counts ticks). Input: integer codes ``item`` and
``annotator`` per answer and a boolean matrix ``selected`` (n_answers, n_labels).
All labels are fitted at once: arrays are (n_answers, n_labels) and the per-item /
per-annotator sums are sparse matrix products.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Self, cast

import numpy as np
from scipy import sparse

__all__ = [
    "BinaryRelevance",
    "MultiChoiceDawidSkene",
    "MultiChoiceMajorityVote",
    "compute_binary_dawid_skene",
    "encode_multi_choice",
]

_EPS = 1e-9


def encode_multi_choice(
    label_sets: Sequence[Collection[Any]], labels: Sequence[Any] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean matrix (n_answers, n_labels) from one iterable of chosen labels per answer.

    Returns ``(selected, vocabulary)``; ``labels`` fixes the vocabulary and its order
    (default: sorted union). A label outside ``labels`` is a ValueError.
    """
    lengths = np.fromiter((len(s) for s in label_sets), dtype=np.int64, count=len(label_sets))
    flat = [x for s in label_sets for x in s]
    vocabulary = np.asarray(sorted(set(flat)) if labels is None else list(labels), dtype=object)
    index = {v: k for k, v in enumerate(vocabulary.tolist())}
    unknown = [x for x in flat if x not in index]
    if unknown:
        raise ValueError(f"label {unknown[0]!r} is not in labels {list(vocabulary)}")
    codes = np.fromiter((index[x] for x in flat), dtype=np.int64, count=len(flat))
    selected = np.zeros((len(label_sets), len(vocabulary)), dtype=bool)
    selected[np.repeat(np.arange(len(label_sets)), lengths), codes] = True
    return selected, vocabulary


def _check(item: Any, annotator: Any, selected: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    item = np.asarray(item).ravel()
    annotator = np.asarray(annotator).ravel()
    selected = np.asarray(selected)
    if selected.ndim != 2:
        raise ValueError(f"selected must be 2-D (n_answers, n_labels), got shape {selected.shape}")
    if not len(item) == len(annotator) == len(selected):
        raise ValueError(
            "item, annotator and selected must have the same number of answers, got "
            f"{len(item)}, {len(annotator)}, {len(selected)}"
        )
    if len(item) == 0:
        raise ValueError("no answers to aggregate")
    for name, codes in (("item", item), ("annotator", annotator)):
        if codes.dtype.kind not in "iu" or codes.min() < 0:
            raise ValueError(f"{name} must be integer codes 0..n-1")
    return item.astype(np.int64), annotator.astype(np.int64), selected.astype(float)


def _membership(rows: np.ndarray, n_rows: int) -> sparse.csr_matrix:
    """(n_rows, n_obs) 0/1 matrix: M @ x sums observation values per row id."""
    return sparse.csr_matrix(
        (np.ones(len(rows)), (rows, np.arange(len(rows)))), shape=(n_rows, len(rows))
    )


def compute_binary_dawid_skene(
    item: np.ndarray,
    annotator: np.ndarray,
    y: np.ndarray,
    n_items: int,
    n_annotators: int,
    coin: str = "two",
    prior: tuple[float, float] = (2.0, 1.0),
    n_iter: int = 100,
    tol: float = 1e-6,
) -> dict[str, Any]:
    """EM for L independent binary Dawid-Skene models sharing one layout.

    ``y`` is (n_obs, L) in [0, 1]: observation n says annotator ``annotator[n]`` voted
    ``y[n, l]`` on (``item[n]``, label l). Returns a dict with ``probas`` (n_items, L),
    ``sensitivity`` and ``specificity`` (n_annotators, L), ``prevalence`` (L,), ``n_iter``.
    ``prior = (a, b)`` are Beta pseudo-counts of correct / wrong votes per annotator and
    label. Used by multi-choice, boxes (does this cluster exist?) and spans.
    """
    if coin not in ("one", "two"):
        raise ValueError(f"coin must be 'one' or 'two', got {coin!r}")
    by_item = _membership(item, n_items)
    by_annotator = _membership(annotator, n_annotators)
    n_item_obs = np.asarray(by_item.sum(axis=1)).ravel()
    # start from the share of "yes" votes (majority vote, soft)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = (by_item @ y) / n_item_obs[:, None]
    mu = np.nan_to_num(mu, nan=0.5)
    a, b = prior
    n_done = 0
    for it in range(n_iter):
        mu_obs = mu[item]
        if coin == "two":
            pos = by_annotator @ mu_obs
            neg = by_annotator @ (1.0 - mu_obs)
            sens = (by_annotator @ (mu_obs * y) + a) / (pos + a + b)
            spec = (by_annotator @ ((1.0 - mu_obs) * (1.0 - y)) + a) / (neg + a + b)
        else:
            correct = by_annotator @ (mu_obs * y + (1.0 - mu_obs) * (1.0 - y))
            total = np.asarray(by_annotator.sum(axis=1))
            sens = spec = (correct + a) / (total + a + b)
        # Beta(1, 1) (add-one) on each label's prevalence: the ML estimate collapses to 0 for
        # a label on few items (and then no item can have it: crowd-kit's multi-label toy set)
        seen = mu[n_item_obs > 0]
        prevalence = np.clip((seen.sum(axis=0) + 1.0) / (len(seen) + 2.0), _EPS, 1 - _EPS)
        sens = np.clip(sens, _EPS, 1 - _EPS)
        spec = np.clip(spec, _EPS, 1 - _EPS)
        # log-odds of "yes" summed per item: work in log space, products underflow
        yes = np.log(sens) - np.log1p(-spec)
        no = np.log1p(-sens) - np.log(spec)
        evidence = y * yes[annotator] + (1.0 - y) * no[annotator]
        logit = np.log(prevalence) - np.log1p(-prevalence) + by_item @ evidence
        new_mu = 0.5 * (1.0 + np.tanh(0.5 * logit))  # stable sigmoid
        change = float(np.abs(new_mu - mu).max())
        mu = new_mu
        n_done = it + 1
        if change <= tol:
            break
    return {"probas": mu, "sensitivity": sens, "specificity": spec,
            "prevalence": prevalence, "n_iter": n_done}


class MultiChoiceDawidSkene:
    """Per-label binary Dawid-Skene, all labels fitted at once.

    For item i and label l the truth z_il ~ Bernoulli(pi_l). Annotator j, if shown the
    item, ticks the label with probability alpha_jl (sensitivity) when z_il = 1 and
    1 - beta_jl (beta_jl: specificity) when z_il = 0 (``coin="two"``); ``coin="one"``
    ties alpha_jl = beta_jl. EM with Beta(a, b) pseudo-counts ``prior``:

        P(z_il = 1 | votes) = sigmoid(logit pi_l + sum_j [y_ijl log(alpha/(1-beta))
                                                      + (1-y_ijl) log((1-alpha)/beta)])
        alpha_jl = (sum_i mu_il y_ijl + a) / (sum_i mu_il + a + b), likewise beta_jl.

    Learned: ``probas_`` (n_items, n_labels) posterior P(label applies), ``labels_``
    (probas_ >= threshold), ``sensitivities_``, ``specificities_`` (n_annotators,
    n_labels), ``prevalence_``.

    Dawid, A. P., Skene, A. M. (1979). Maximum likelihood estimation of observer
    error-rates using the EM algorithm. JRSS C 28(1), 20-28. Per-label (binary relevance)
    reduction as in Duan, L. et al. (2014). Separate or joint? Estimation of multiple
    labels from crowdsourced annotations. Expert Systems with Applications 41(13).
    """

    def __init__(
        self,
        coin: str = "two",
        prior: tuple[float, float] = (2.0, 1.0),
        threshold: float = 0.5,
        n_iter: int = 100,
        tol: float = 1e-6,
    ) -> None:
        self.coin = coin
        self.prior = prior
        self.threshold = threshold
        self.n_iter = n_iter
        self.tol = tol

    def fit(self, item: Any, annotator: Any, selected: Any, n_items: int | None = None,
            n_annotators: int | None = None) -> Self:
        item, annotator, y = _check(item, annotator, selected)
        n_items = n_items or int(item.max()) + 1
        n_annotators = n_annotators or int(annotator.max()) + 1
        fit = compute_binary_dawid_skene(item, annotator, y, n_items, n_annotators,
                                         self.coin, self.prior, self.n_iter, self.tol)
        self.probas_ = fit["probas"]
        self.labels_ = self.probas_ >= self.threshold
        self.sensitivities_ = fit["sensitivity"]
        self.specificities_ = fit["specificity"]
        self.prevalence_ = fit["prevalence"]
        self.n_iter_ = fit["n_iter"]
        return self


class MultiChoiceMajorityVote:
    """Baseline: a label applies when at least ``threshold`` of the item's answers tick it;
    ``probas_`` is the share of ticks."""

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold

    def fit(self, item: Any, annotator: Any, selected: Any, n_items: int | None = None) -> Self:
        item, annotator, y = _check(item, annotator, selected)
        n_items = n_items or int(item.max()) + 1
        by_item = _membership(item, n_items)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.probas_ = (by_item @ y) / np.asarray(by_item.sum(axis=1))
        self.labels_ = self.probas_ >= self.threshold
        return self


class BinaryRelevance:
    """crowd-kit's ``BinaryRelevance``: multi-label answers (a DataFrame whose ``label``
    column holds a list of labels per answer) aggregated by one clone of
    ``base_aggregator`` per label, each on the binary question "did the annotator tick
    this label?" (1 / 0).

    ``labels_``: a Series item -> list of labels (in label order); ``aggregators_``: the
    fitted clone per label. For the per-label Dawid-Skene fitted all at once on arrays,
    see :class:`MultiChoiceDawidSkene`.
    """

    def __init__(self, base_aggregator: Any) -> None:
        self.base_aggregator = base_aggregator

    def fit(self, data: Any) -> BinaryRelevance:
        import pandas as pd

        from .answers import ANNOTATOR_COLUMNS, ITEM_COLUMNS, LABEL_COLUMNS, _pick_column

        columns = [str(c) for c in data.columns]
        item_col, annotator_col, label_col = (
            _pick_column(columns, names) for names in (ITEM_COLUMNS, ANNOTATOR_COLUMNS, LABEL_COLUMNS))
        self.aggregators_: dict[Any, Any] = {}
        if len(data) == 0:
            self.labels_ = pd.Series(dtype=float, name="agg_label")
            return self
        selected, vocabulary = encode_multi_choice(data[label_col].tolist())
        base = pd.DataFrame({"task": data[item_col].to_numpy(), "worker": data[annotator_col].to_numpy()})
        chosen = None
        for k, label in enumerate(vocabulary.tolist()):  # one fit per label
            model = _clone(self.base_aggregator)
            labels = model.fit_predict(base.assign(label=selected[:, k].astype(np.int64)))
            self.aggregators_[label] = model
            if chosen is None:
                chosen = pd.DataFrame(index=labels.index)
            chosen[k] = labels.reindex(chosen.index).to_numpy() == 1
        chosen = cast("pd.DataFrame", chosen)  # the vocabulary is never empty here
        matrix = chosen.to_numpy(dtype=bool)
        # the result holds one Python list per item
        self.labels_ = pd.Series([vocabulary[row].tolist() for row in matrix], index=chosen.index.rename(item_col),
                                 name="agg_label")
        return self

    def fit_predict(self, data: Any) -> Any:
        return self.fit(data).labels_


def _clone(model: Any) -> Any:
    params = model.get_params() if hasattr(model, "get_params") else {}
    return type(model)(**params)
