"""Embeddings of the items: the embedder (made once per context), the text of an item it reads,
and the worker's embedding step (a text whose content hash is cached reuses its vector; with a
model, the newly embedded items get its predictions)."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from goldlabel.services.context import Context
from goldlabel.services.models.errors import ModelError
from goldlabel.services.models.predictions import load_params, write_predictions
from goldlabel.storage import models as model_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx

EMBED_BATCH = 256


def _default_embedder():
    from goldlabel.models import MiniLMEmbedder

    return MiniLMEmbedder(batch_size=64, threads=1)

_embed_lock = threading.Lock()


def embedder_for(ctx: Context):
    """The context's embedder, made on first use (``ctx.model_embedder_factory`` may name
    another: anything with ``model_id``, ``dim`` and ``embed(texts)``). A factory that fails
    raises here, every time, so the error is recorded where it happens."""
    with _embed_lock:
        embedder = ctx.__dict__.get("_model_embedder")
        if embedder is None:
            factory = ctx.__dict__.get("model_embedder_factory") or _default_embedder
            embedder = factory()
            ctx.__dict__["_model_embedder"] = embedder
        return embedder


def item_text(data: Any) -> str:
    """The text of an item that the embedder reads: ``data["text"]`` when there is one, else its
    string fields in order, joined."""
    if isinstance(data, str):
        return data
    if isinstance(data, dict):
        if isinstance(data.get("text"), str):
            return data["text"]
        return "\n".join(v for v in data.values() if isinstance(v, str))
    return ""


def embed_items(ctx: Context, pid: int, current: dict | None, question, only: list[int] | None,
                deadline: float | None, settings: dict) -> int:
    """Embed the project's items that have no embedding, in batches of EMBED_BATCH: only the
    ``only`` ids or (``only`` None) any, until ``deadline`` (None: no limit); with a ``current``
    version, write its predictions for them. Returns how many were embedded; a failing embedder
    raises ModelError."""
    from goldlabel.models import content_hash

    done = 0
    try:
        embedder = embedder_for(ctx)
    except Exception as exc:  # a missing wheel, a broken model file: recorded, humans go on
        raise ModelError(f"the embedder could not be loaded: {exc}") from exc
    model = load_params(current) if current else None
    ids_left = list(only) if only is not None else None
    while deadline is None or time.monotonic() < deadline:
        with read_tx(ctx.engine) as conn:
            if ids_left is not None:
                if not ids_left:
                    break
                chunk, ids_left = ids_left[:EMBED_BATCH * 4], ids_left[EMBED_BATCH * 4:]
                rows = model_store.items_to_embed(conn, pid, len(chunk), chunk)
                if not rows:
                    continue
            else:
                rows = model_store.items_to_embed(conn, pid, EMBED_BATCH)
                if not rows:
                    break
            texts = [item_text(data) for _, data in rows]
            hashes = [content_hash(t) for t in texts]
            cached = model_store.cached_vectors(conn, embedder.model_id, hashes)
        todo = sorted({h: t for h, t in zip(hashes, texts) if h not in cached}.items())
        if todo:
            try:
                vectors = np.asarray(embedder.embed([t for _, t in todo]), dtype=np.float32)
            except Exception as exc:
                raise ModelError(f"the embedder failed on a batch of {len(todo)} texts: {exc}") from exc
            if vectors.shape != (len(todo), embedder.dim) or not np.isfinite(vectors).all():
                raise ModelError(f"the embedder returned vectors of shape {vectors.shape} (or not finite), "
                                  f"expected ({len(todo)}, {embedder.dim})")
            blobs, scales = model_store.encode_vectors(vectors)
            for (h, _), b, s in zip(todo, blobs, scales.tolist()):
                cached[h] = (b, s)
        now = now_ms()
        with write_tx(ctx.engine) as conn:
            model_store.insert_embeddings(conn, [
                {"item_id": i, "project_id": pid, "model_id": embedder.model_id, "content_hash": h,
                 "vector": cached[h][0], "scale": cached[h][1], "created_at": now}
                for (i, _), h in zip(rows, hashes)])
        done += len(rows)
        if model is not None:
            ids = [i for i, _ in rows]
            vectors = model_store.decode_vectors([cached[h][0] for h in hashes], [cached[h][1] for h in hashes])
            write_predictions(ctx, pid, current, question, ids, model.predict_proba(vectors), settings)
    return done
