"""Long-format answers: integer-coded (item, annotator, label) arrays plus vocabularies.

Every estimator in :mod:`goldlabel.quality` works on an :class:`Answers`. Build one with
:func:`encode` (any array-likes), :func:`from_frame` (pandas, including crowd-kit's
``task, worker, label`` frames) or :func:`load_csv` (no pandas needed).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

__all__ = [
    "Answers",
    "MissingColumnError",
    "encode",
    "encode_gold",
    "from_codes",
    "from_frame",
    "load_csv",
    "load_gold_csv",
    "subset",
]

# Accepted column names, first one is canonical: crowd-kit frames say task/worker.
ITEM_COLUMNS = ("item", "task")
ANNOTATOR_COLUMNS = ("annotator", "worker")
LABEL_COLUMNS = ("label",)


class MissingColumnError(KeyError, ValueError):
    """A table lacks a required column.

    Both a ``KeyError`` (what pandas, and so crowd-kit, raise for a missing column) and a
    ``ValueError`` (what goldlabel raises for bad input), so either ``except`` catches it; the
    message names the column expected and the columns found.
    """

    def __str__(self) -> str:
        # KeyError's own __str__ shows the repr of its argument (quotes and escapes)
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True, eq=False)
class Answers:
    """Answers in long format: answer ``n`` says annotator ``annotator[n]`` gave
    ``label[n]`` to item ``item[n]``; all three are integer codes into the vocabularies
    ``item_ids``, ``annotator_ids`` and ``label_ids`` (the original values)."""

    item: np.ndarray
    annotator: np.ndarray
    label: np.ndarray
    item_ids: np.ndarray
    annotator_ids: np.ndarray
    label_ids: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.item)
        if len(self.annotator) != n or len(self.label) != n:
            raise ValueError(
                "item, annotator and label must have the same length, got "
                f"{len(self.item)}, {len(self.annotator)}, {len(self.label)}"
            )
        for name, codes, vocab in (
            ("item", self.item, self.item_ids),
            ("annotator", self.annotator, self.annotator_ids),
            ("label", self.label, self.label_ids),
        ):
            if codes.dtype.kind not in "iu":
                raise ValueError(f"{name} codes must be integers, got dtype {codes.dtype}")
            if n and (codes.min() < 0 or codes.max() >= len(vocab)):
                raise ValueError(
                    f"{name} codes must lie in [0, {len(vocab)}), "
                    f"got range [{codes.min()}, {codes.max()}]"
                )

    @property
    def n_answers(self) -> int:
        return len(self.item)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_annotators(self) -> int:
        return len(self.annotator_ids)

    @property
    def n_labels(self) -> int:
        return len(self.label_ids)

    def __len__(self) -> int:
        return self.n_answers

    def __repr__(self) -> str:
        return (
            f"Answers(n_answers={self.n_answers}, n_items={self.n_items}, "
            f"n_annotators={self.n_annotators}, n_labels={self.n_labels})"
        )

    def get_label_codes(self, values: Iterable[Any]) -> np.ndarray:
        """Codes of label values; ValueError naming the first unknown label."""
        return _lookup(self.label_ids, values, "label")

    def get_item_codes(self, values: Iterable[Any]) -> np.ndarray:
        """Codes of item ids; -1 for items that have no answers."""
        return _lookup(self.item_ids, values, "item", missing=-1)


def from_codes(
    item: Any,
    annotator: Any,
    label: Any,
    n_items: int | None = None,
    n_annotators: int | None = None,
    n_labels: int | None = None,
) -> Answers:
    """Answers from codes that are already integers ``0..n-1`` (vocabularies are ``arange``)."""
    item, annotator, label = (np.asarray(a, dtype=np.int64).ravel() for a in (item, annotator, label))

    def size(codes: np.ndarray, n: int | None) -> int:
        return int(n) if n is not None else (int(codes.max()) + 1 if len(codes) else 0)

    return Answers(
        item,
        annotator,
        label,
        np.arange(size(item, n_items)),
        np.arange(size(annotator, n_annotators)),
        np.arange(size(label, n_labels)),
    )


def encode(
    items: Any,
    annotators: Any,
    labels: Any,
    label_order: Iterable[Any] | None = None,
    order: str = "sorted",
) -> Answers:
    """Integer-code three equally long array-likes.

    Vocabularies are the sorted unique values (``order="appearance"``: items and annotators
    in order of first appearance); ``label_order`` fixes the label vocabulary (and its order)
    instead, e.g. to keep classes that nobody chose. A label outside ``label_order`` is a
    ValueError.
    """
    if order not in ("sorted", "appearance"):
        raise ValueError(f"order must be 'sorted' or 'appearance', got {order!r}")
    appearance = order == "appearance"
    items, annotators, labels = (_as_1d(a, name) for a, name in (
        (items, "items"), (annotators, "annotators"), (labels, "labels")))
    if not (len(items) == len(annotators) == len(labels)):
        raise ValueError(
            "items, annotators and labels must have the same length, got "
            f"{len(items)}, {len(annotators)}, {len(labels)}"
        )
    item_ids, item = _factorize(items, "item", appearance)
    annotator_ids, annotator = _factorize(annotators, "annotator", appearance)
    if label_order is None:
        label_ids, label = _factorize(labels, "label")
    else:
        label_ids = _as_1d(list(label_order), "label_order")
        if len(set(label_ids.tolist())) != len(label_ids):
            raise ValueError("label_order has duplicate labels")
        label = _lookup(label_ids, labels, "label")
    return Answers(item, annotator, label, item_ids, annotator_ids, label_ids)


def from_frame(frame: Any, label_order: Iterable[Any] | None = None, order: str = "sorted") -> Answers:
    """Answers from a pandas DataFrame with columns item/annotator/label
    (crowd-kit's task/worker/label are accepted too).

    ``order="appearance"`` numbers items and annotators in their order of first appearance
    (crowd-kit's row order) instead of sorted; labels are always sorted.
    A missing column is a :class:`MissingColumnError` (both KeyError and ValueError)."""
    columns = [str(c) for c in getattr(frame, "columns", [])]
    if not columns:
        raise ValueError(
            f"expected a pandas DataFrame with columns item, annotator, label; got {type(frame).__name__}"
        )
    picked = [_pick_column(columns, names) for names in (ITEM_COLUMNS, ANNOTATOR_COLUMNS, LABEL_COLUMNS)]
    item_col, annotator_col, label_col = picked
    return encode(frame[item_col].to_numpy(), frame[annotator_col].to_numpy(), frame[label_col].to_numpy(),
                  label_order=label_order, order=order)


def subset(data: Answers, keep: np.ndarray) -> Answers:
    """The answers where ``keep`` (a boolean mask over answers) is true; items and annotators
    left without answers leave the vocabularies (which keep their order), labels all stay."""
    keep = np.asarray(keep, dtype=bool)
    items, item = np.unique(data.item[keep], return_inverse=True)
    annotators, annotator = np.unique(data.annotator[keep], return_inverse=True)
    return Answers(item.astype(np.int64).ravel(), annotator.astype(np.int64).ravel(), data.label[keep],
                   data.item_ids[items], data.annotator_ids[annotators], data.label_ids)


def load_csv(path: str | Path, label_order: Iterable[Any] | None = None) -> Answers:
    """Read a CSV with header item (or task), annotator (or worker), label; no pandas needed.

    A column whose every value is an integer is read as integers (as pandas would).
    Bad rows raise ValueError naming the line and the field.
    """
    columns = _read_columns(path, (ITEM_COLUMNS, ANNOTATOR_COLUMNS, LABEL_COLUMNS))
    items, annotators, labels = columns
    return encode(items, annotators, labels, label_order=label_order)


def load_gold_csv(path: str | Path) -> dict[Any, Any]:
    """Read a gold CSV with header item (or task), label into a dict item -> label."""
    items, labels = _read_columns(path, (ITEM_COLUMNS, LABEL_COLUMNS))
    return dict(zip(items.tolist(), labels.tolist()))


def encode_gold(answers: Answers, gold: Any) -> tuple[np.ndarray, np.ndarray]:
    """Codes ``(item, label)`` of gold answers.

    ``gold`` is a mapping item -> label, a pandas Series indexed by item (crowd-kit's
    ``true_labels``), a DataFrame with item/label columns, or a pair of arrays
    ``(items, labels)``. Gold items without answers are dropped (they say nothing about
    annotators); a gold label outside the label vocabulary is a ValueError.
    """
    if gold is None:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    if hasattr(gold, "columns"):
        columns = [str(c) for c in gold.columns]
        item_col = _pick_column(columns, ITEM_COLUMNS)
        label_col = _pick_column(columns, LABEL_COLUMNS)
        items, labels = gold[item_col].to_numpy(), gold[label_col].to_numpy()
    elif hasattr(gold, "index") and hasattr(gold, "to_numpy"):
        items, labels = gold.index.to_numpy(), gold.to_numpy()
    elif isinstance(gold, Mapping):
        items, labels = list(gold.keys()), list(gold.values())
    elif isinstance(gold, tuple) and len(gold) == 2:
        items, labels = gold
    else:
        raise ValueError(
            "gold must be a mapping item -> label, a pandas Series/DataFrame, "
            f"or a pair (items, labels); got {type(gold).__name__}"
        )
    items, labels = _as_1d(items, "gold items"), _as_1d(labels, "gold labels")
    if len(items) != len(labels):
        raise ValueError(f"gold items and labels differ in length: {len(items)} vs {len(labels)}")
    item_codes = answers.get_item_codes(items)
    label_codes = answers.get_label_codes(labels)
    known = item_codes >= 0
    return item_codes[known], label_codes[known]


# ---------------------------------------------------------------------------- internals


def _as_1d(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


def _factorize(values: np.ndarray, name: str, appearance: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique values (or in order of first appearance) and the code of each value."""
    if values.dtype.kind == "f" and np.isnan(values).any():
        raise ValueError(f"{name} has a missing value at row {int(np.flatnonzero(np.isnan(values))[0])}")
    try:
        uniques, first, codes = np.unique(values, return_index=True, return_inverse=True)
        if appearance:
            by_appearance = np.argsort(first, kind="stable")
            rank = np.empty_like(by_appearance)
            rank[by_appearance] = np.arange(len(by_appearance))
            uniques, codes = uniques[by_appearance], rank[codes.ravel()]
    except TypeError:
        # mixed types (e.g. ints and strings, or None) do not sort: code by first appearance
        lookup: dict[Any, int] = {}
        codes = np.fromiter((lookup.setdefault(v, len(lookup)) for v in values.tolist()),
                            dtype=np.int64, count=len(values))
        uniques = np.empty(len(lookup), dtype=object)
        uniques[:] = list(lookup)
    if uniques.dtype.kind == "O":
        bad = [i for i, v in enumerate(uniques.tolist()) if v is None or (isinstance(v, float) and math.isnan(v))]
        if bad:
            row = int(np.flatnonzero(codes == bad[0])[0])
            raise ValueError(f"{name} has a missing value at row {row}")
    return uniques, codes.astype(np.int64).ravel()


def _lookup(vocab: np.ndarray, values: Any, name: str, missing: int | None = None) -> np.ndarray:
    """Codes of ``values`` in ``vocab``; unknown values give ``missing`` or a ValueError.

    Values are matched as given, then by their string form, so labels read as text
    ("1") match labels given as numbers (1).
    """
    values = _as_1d(values if not isinstance(values, (list, tuple)) else list(values), name)
    index = {v: i for i, v in enumerate(vocab.tolist())}
    by_text = {str(v): i for i, v in enumerate(vocab.tolist())}
    uniques, inverse = _factorize_loose(values)
    codes_of_uniques = np.empty(len(uniques), dtype=np.int64)
    for u, value in enumerate(uniques):  # one step per distinct value, not per answer
        code = index.get(value, by_text.get(str(value)))
        if code is None:
            if missing is None:
                known = ", ".join(map(repr, vocab.tolist()[:20]))
                raise ValueError(f"unknown {name} {value!r}; known: {known}")
            code = missing
        codes_of_uniques[u] = code
    return cast("np.ndarray", codes_of_uniques[inverse])


def _factorize_loose(values: np.ndarray) -> tuple[list[Any], np.ndarray]:
    try:
        uniques, inverse = np.unique(values, return_inverse=True)
        return uniques.tolist(), inverse.ravel()
    except TypeError:
        lookup: dict[Any, int] = {}
        inverse = np.fromiter((lookup.setdefault(v, len(lookup)) for v in values.tolist()),
                              dtype=np.int64, count=len(values))
        return list(lookup), inverse


def _pick_column(columns: list[str], names: tuple[str, ...]) -> str:
    for name in names:
        if name in columns:
            return name
    wanted = " or ".join(repr(n) for n in names)
    raise MissingColumnError(f"missing column {wanted}; found columns: {', '.join(map(repr, columns))}")


def _read_columns(path: str | Path, wanted: tuple[tuple[str, ...], ...]) -> list[np.ndarray]:
    path = Path(path)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise ValueError(f"{path}: empty file, expected a header row") from None
        names = [_pick_column_in(path, header, options) for options in wanted]
        positions = [header.index(n) for n in names]
        width = len(header)
        columns: list[list[str]] = [[] for _ in names]
        for row in reader:
            if not row:
                continue
            if len(row) != width:
                raise ValueError(
                    f"{path}: line {reader.line_num}: expected {width} fields, got {len(row)}"
                )
            for column, position, name in zip(columns, positions, names):
                value = row[position].strip()
                if not value:
                    raise ValueError(f"{path}: line {reader.line_num}: field {name!r} is empty")
                column.append(value)
    return [_parse_column(c) for c in columns]


def _pick_column_in(path: Path, header: list[str], names: tuple[str, ...]) -> str:
    try:
        return _pick_column(header, names)
    except MissingColumnError as error:
        raise MissingColumnError(f"{path}: line 1: {error}") from None


def _parse_column(values: list[str]) -> np.ndarray:
    """Integers when every value is one (as pandas would read them), else strings."""
    text = np.array(values, dtype=str)
    try:
        numbers = text.astype(np.int64)
    except (ValueError, OverflowError):
        return text.astype(object)
    # "007" and "7" are different ids: keep text when integers would merge them
    if len(values) and np.array_equal(numbers.astype(str), text):
        return numbers
    return text.astype(object)
