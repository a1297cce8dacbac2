"""Inter-annotator agreement: Krippendorff's alpha, Fleiss' kappa, Cohen's kappa,
per-item and per-annotator agreement.

Every function takes answers in long format: equally long integer arrays ``item``,
``annotator`` and ``label`` (codes ``0..n-1``), or an :class:`~goldlabel.quality.answers.Answers`
as the first argument. Everything is computed from count matrices (``scipy.sparse``),
never with a loop over items or answers.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
from scipy import sparse

__all__ = [
    "alpha_krippendorff",
    "annotator_agreement",
    "cohen_kappa",
    "fleiss_kappa",
    "item_agreement",
    "krippendorff_alpha",
    "pairwise_cohen_kappa",
]

LEVELS = ("nominal", "ordinal", "interval", "ratio")


def _long_arrays(item: Any, annotator: Any = None, label: Any = None) -> tuple[np.ndarray, ...]:
    if annotator is None and label is None and hasattr(item, "label"):
        item, annotator, label = item.item, item.annotator, item.label
    arrays = tuple(np.asarray(a).ravel() for a in (item, annotator, label))
    if not len(arrays[0]) == len(arrays[1]) == len(arrays[2]):
        raise ValueError(
            "item, annotator and label must have the same length, got "
            f"{len(arrays[0])}, {len(arrays[1])}, {len(arrays[2])}"
        )
    for name, a in zip(("item", "annotator", "label"), arrays):
        if a.dtype.kind not in "iu":
            raise ValueError(f"{name} must be integer codes, got dtype {a.dtype}")
        if len(a) and a.min() < 0:
            raise ValueError(f"{name} codes must be >= 0")
    return tuple(a.astype(np.int64) for a in arrays)


def _unit_counts(item: np.ndarray, label: np.ndarray, n_labels: int) -> np.ndarray:
    """Dense (n_items, n_labels) count matrix n_uc (how many answers put item u in class c)."""
    n_items = int(item.max()) + 1 if len(item) else 0
    return cast("np.ndarray", sparse.coo_matrix(
        (np.ones(len(item)), (item, label)), shape=(n_items, n_labels)
    ).toarray())


def _coincidences(counts: np.ndarray) -> np.ndarray:
    """Krippendorff's coincidence matrix o_ck = sum_u (n_uc n_uk - [c=k] n_uc) / (m_u - 1),
    over units with at least two values (pairable values only)."""
    m = counts.sum(axis=1)
    pairable = m >= 2
    n = counts[pairable]
    w = 1.0 / (m[pairable] - 1.0)
    return cast("np.ndarray", (n * w[:, None]).T @ n - np.diag((n * w[:, None]).sum(axis=0)))


def _squared_distances(level: str, n_c: np.ndarray, values: np.ndarray) -> np.ndarray:
    if level == "nominal":
        return 1.0 - np.eye(len(n_c))
    if level == "ordinal":
        # delta_ck = (sum_{g=c}^{k} n_g - (n_c + n_k) / 2)^2 on the ranks of the values
        cum = np.concatenate([[0.0], np.cumsum(n_c)])
        lo = np.minimum.outer(np.arange(len(n_c)), np.arange(len(n_c)))
        hi = np.maximum.outer(np.arange(len(n_c)), np.arange(len(n_c)))
        between = cum[hi + 1] - cum[lo]
        return cast("np.ndarray", (between - (n_c[:, None] + n_c[None, :]) / 2.0) ** 2)
    if level == "interval":
        return cast("np.ndarray", np.subtract.outer(values, values) ** 2)
    if level == "ratio":
        total = np.add.outer(values, values)
        with np.errstate(invalid="ignore", divide="ignore"):
            d = (np.subtract.outer(values, values) / total) ** 2
        return cast("np.ndarray", np.nan_to_num(d))
    raise ValueError(f"level must be one of {LEVELS}, got {level!r}")


def krippendorff_alpha(
    item: Any,
    annotator: Any = None,
    label: Any = None,
    level: str = "nominal",
    values: Any = None,
) -> float:
    """Krippendorff's alpha reliability coefficient.

    alpha = 1 - D_o / D_e with D_o = sum_ck o_ck d_ck / n and
    D_e = sum_ck n_c n_k d_ck / (n (n - 1)), where o is the coincidence matrix, n_c its
    margins and d the squared difference function of the ``level`` (nominal, ordinal,
    interval, ratio). Items with fewer than two answers are not pairable and are ignored;
    ``annotator`` is only used for validation (alpha does not depend on who answered).

    ``values`` are the numbers behind label codes for interval/ratio (default: the codes);
    ordinal uses only their order, i.e. the order of the codes.

    Krippendorff, K. (2011). Computing Krippendorff's Alpha-Reliability. Annenberg School
    for Communication, University of Pennsylvania.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    item, annotator, label = _long_arrays(item, annotator, label)
    n_labels = int(label.max()) + 1 if len(label) else 0
    values = np.arange(n_labels, dtype=float) if values is None else np.asarray(values, float)
    if len(values) < n_labels:
        raise ValueError(f"values has {len(values)} entries but labels go up to {n_labels - 1}")
    values = values[:n_labels]
    o = _coincidences(_unit_counts(item, label, n_labels))
    return _alpha(o, lambda n_c: _squared_distances(level, n_c, values))


def _alpha(o: np.ndarray, distances: Any) -> float:
    """1 - D_o / D_e from the coincidence matrix and ``distances(n_c)`` -> (labels, labels)."""
    n_c = o.sum(axis=1)
    n = n_c.sum()
    if n < 2:
        return float("nan")
    d = distances(n_c)
    observed = (o * d).sum() / n
    expected = (np.outer(n_c, n_c) * d).sum() / (n * (n - 1))
    if expected == 0:
        return float("nan")
    return float(1.0 - observed / expected)


def alpha_krippendorff(answers: Any, distance: Any = None) -> float:
    """crowd-kit's ``alpha_krippendorff``: Krippendorff's alpha of a frame (``task``/``item``,
    ``worker``/``annotator``, ``label``), any hashable labels (strings, frozensets, ...).

    ``distance(a, b)`` in [0, 1] between two labels; the default is 0 for equal labels and 1
    otherwise (nominal alpha). It is called once per pair of distinct labels, never per answer,
    e.g. with ``nltk.metrics.distance.masi_distance`` on frozensets of tags."""
    import pandas as pd

    from .answers import _pick_column

    columns = [str(c) for c in answers.columns]
    task = _pick_column(columns, ("task", "item"))
    _pick_column(columns, ("worker", "annotator"))
    label_col = _pick_column(columns, ("label",))
    item, _ = pd.factorize(answers[task])
    label, labels = pd.factorize(answers[label_col])
    o = _coincidences(_unit_counts(np.asarray(item, np.int64), np.asarray(label, np.int64), len(labels)))
    if distance is None:
        return _alpha(o, lambda n_c: 1.0 - np.eye(len(n_c)))
    values = list(labels)
    d = np.array([[0.0 if i == j else float(distance(a, b)) for j, b in enumerate(values)]
                  for i, a in enumerate(values)])  # one call per pair of labels
    return _alpha(o, lambda n_c: d)


def fleiss_kappa(item: Any, annotator: Any = None, label: Any = None) -> float:
    """Fleiss' kappa for many raters: kappa = (P_bar - P_e) / (1 - P_e) with
    P_i = sum_c n_ic (n_ic - 1) / (m_i (m_i - 1)) averaged over items and
    P_e = sum_c p_c^2, p_c the share of all answers in class c.

    Fleiss assumes the same number of answers per item; with varying counts each item's
    P_i uses its own m_i (items with one answer are dropped).

    Fleiss, J. L. (1971). Measuring nominal scale agreement among many raters.
    Psychological Bulletin 76(5), 378-382.
    """
    item, annotator, label = _long_arrays(item, annotator, label)
    counts = _unit_counts(item, label, int(label.max()) + 1 if len(label) else 0)
    m = counts.sum(axis=1)
    counts, m = counts[m >= 2], m[m >= 2]
    if len(m) == 0:
        return float("nan")
    p_i = ((counts * (counts - 1)).sum(axis=1)) / (m * (m - 1))
    p_c = counts.sum(axis=0) / counts.sum()
    p_e = float((p_c**2).sum())
    if p_e == 1.0:
        return float("nan")
    return float((p_i.mean() - p_e) / (1.0 - p_e))


def cohen_kappa(labels_a: Any, labels_b: Any, n_labels: int | None = None) -> float:
    """Cohen's kappa of two equally long label-code arrays (the same items in the same
    order): kappa = (p_o - p_e) / (1 - p_e), p_e from the two annotators' own margins.

    Cohen, J. (1960). A coefficient of agreement for nominal scales. Educational and
    Psychological Measurement 20(1), 37-46.
    """
    a, b = np.asarray(labels_a, dtype=np.int64), np.asarray(labels_b, dtype=np.int64)
    if a.shape != b.shape:
        raise ValueError(f"labels_a and labels_b differ in length: {len(a)} vs {len(b)}")
    if len(a) == 0:
        return float("nan")
    k = n_labels or int(max(a.max(), b.max())) + 1
    table = np.bincount(a * k + b, minlength=k * k).reshape(k, k) / len(a)
    p_o = np.trace(table)
    p_e = table.sum(axis=1) @ table.sum(axis=0)
    if p_e == 1.0:
        return float("nan")
    return float((p_o - p_e) / (1.0 - p_e))


def pairwise_cohen_kappa(
    item: Any, annotator: Any = None, label: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Cohen's kappa of every pair of annotators on the items both answered.

    Returns ``(kappa, shared)``: dense (n_annotators, n_annotators) arrays; ``kappa`` is NaN
    where a pair shares no item (or agreement by chance is certain), ``shared`` counts the
    shared items. Cost: one sparse product per label, memory O(n_annotators^2) -- for
    tens of thousands of annotators prefer :func:`annotator_agreement`.
    """
    item, annotator, label = _long_arrays(item, annotator, label)
    n_items, n_annotators = int(item.max()) + 1, int(annotator.max()) + 1
    n_labels = int(label.max()) + 1
    ones = np.ones(len(item))
    answered = sparse.csr_matrix((ones, (annotator, item)), shape=(n_annotators, n_items))
    shared = (answered @ answered.T).toarray()
    agree = np.zeros((n_annotators, n_annotators))
    chance = np.zeros((n_annotators, n_annotators))
    for c in range(n_labels):  # loop over labels only
        pick = label == c
        said_c = sparse.csr_matrix(
            (ones[pick], (annotator[pick], item[pick])), shape=(n_annotators, n_items)
        )
        agree += (said_c @ said_c.T).toarray()
        # margins on the shared items: share of a's answers that are c, among items b answered
        margin = (said_c @ answered.T).toarray()  # [a, b] = #items both answered where a said c
        chance += margin * margin.T
    with np.errstate(invalid="ignore", divide="ignore"):
        p_o = agree / shared
        p_e = chance / shared**2
        kappa = (p_o - p_e) / (1.0 - p_e)
    kappa[(shared == 0) | np.isclose(p_e, 1.0)] = np.nan
    return kappa, shared


def item_agreement(item: Any, annotator: Any = None, label: Any = None) -> np.ndarray:
    """Per item, the share of ordered pairs of its answers that agree:
    sum_c n_ic (n_ic - 1) / (m_i (m_i - 1)); NaN for items with fewer than two answers."""
    item, annotator, label = _long_arrays(item, annotator, label)
    counts = _unit_counts(item, label, int(label.max()) + 1)
    m = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (counts * (counts - 1)).sum(axis=1) / (m * (m - 1))
    out[m < 2] = np.nan
    return cast("np.ndarray", out)


def annotator_agreement(item: Any, annotator: Any = None, label: Any = None) -> np.ndarray:
    """Per annotator, the mean share of the other answers on the same item that agree
    with theirs, averaged over their answers on items with at least two answers
    (NaN for annotators with none)."""
    item, annotator, label = _long_arrays(item, annotator, label)
    counts = _unit_counts(item, label, int(label.max()) + 1)
    m = counts.sum(axis=1)
    others = m[item] - 1
    ok = others > 0
    share = (counts[item[ok], label[ok]] - 1) / others[ok]
    n_annotators = int(annotator.max()) + 1
    total = np.bincount(annotator[ok], weights=share, minlength=n_annotators)
    n = np.bincount(annotator[ok], minlength=n_annotators)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / n
