"""The scale-out passes in process (goldlabel.models.scaleout): each pass gives what the code it
stands for gives (the embedder, ProjectModel.predict_proba, ProjectModel.fit's out-of-fold
probabilities and find_label_issues), and the in-process path never imports Ray."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from goldlabel.demo import _reviews_with_truth
from goldlabel.models import ProjectModel, find_label_issues
from goldlabel.models.embeddings import MiniLMEmbedder, ModelFilesMissing
from goldlabel.models.scaleout import (
    InProcess,
    audit_pass,
    dequantize_rows,
    embed_pass,
    model_from_params,
    params_of,
    predict_pass,
    quantize_rows,
)
from goldlabel.storage.models import decode_vectors, encode_vectors

SENTIMENTS = ["positive", "negative", "neutral"]


def _embedder() -> MiniLMEmbedder:
    try:
        return MiniLMEmbedder(batch_size=64, threads=1)
    except ModelFilesMissing as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"model wheels not installed ({exc}); run `make models-deps`")


def labeled_reviews(n: int, flip: float = 0.1, seed: int = 3) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Texts, their true sentiment codes and labels with a share ``flip`` made wrong."""
    rows = _reviews_with_truth(n, seed, 0)
    texts = [row["data"]["text"] for row, _ in rows]
    truth = np.array([SENTIMENTS.index(t) for _, t in rows])
    rng = np.random.default_rng(seed)
    labels = truth.copy()
    wrong = rng.random(n) < flip
    labels[wrong] = (truth[wrong] + rng.integers(1, 3, wrong.sum())) % 3
    return texts, truth, labels


def test_quantized_rows_are_the_platforms_encoding():
    vectors = np.random.default_rng(0).normal(size=(50, 384)).astype(np.float32)
    vectors[3] = 0.0
    q, scale = quantize_rows(vectors)
    blobs, scales = encode_vectors(vectors)
    assert [row.tobytes() for row in q] == blobs
    assert scale.tobytes() == scales.tobytes()
    assert dequantize_rows(q, scale).tobytes() == decode_vectors(blobs, scales.tolist()).tobytes()


def test_embed_pass_is_the_embedder_batch_by_batch():
    embedder = _embedder()
    texts, _, _ = labeled_reviews(300)
    q, scale = embed_pass(texts, batch_size=128)
    expected = np.vstack([embedder.embed(texts[s:s + 128]) for s in range(0, 300, 128)])
    eq, es = quantize_rows(expected)
    assert q.tobytes() == eq.tobytes() and scale.tobytes() == es.tobytes()
    # and the stored int8 vectors are the float vectors to within the quantisation step
    cosine = (dequantize_rows(q, scale) * expected).sum(axis=1) / np.linalg.norm(dequantize_rows(q, scale), axis=1)
    assert cosine.min() > 0.999


def test_predict_pass_is_the_saved_models_predict_proba():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 32)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 1).astype(int)
    model = ProjectModel(3, seed=0)
    model.fit(X, y)
    params = params_of(model)
    expected = model.predict_proba(X)
    np.testing.assert_array_equal(model_from_params(params).predict_proba(X), expected)
    # other batch boundaries than predict_proba's block: float32 sums may differ in the last bits
    np.testing.assert_allclose(predict_pass(X, params, batch_size=37), expected, rtol=0, atol=1e-6)
    q, scale = quantize_rows(X)
    np.testing.assert_allclose(predict_pass(q, params, scales=scale, batch_size=100),
                               model.predict_proba(dequantize_rows(q, scale)), rtol=0, atol=1e-6)


def test_audit_pass_is_the_fits_out_of_fold_probabilities_and_flags():
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 3, 600)
    X = (np.eye(3)[truth] * 2 + rng.normal(size=(600, 3))).astype(np.float32)
    X = np.hstack([X, rng.normal(size=(600, 13)).astype(np.float32)])
    labels = truth.copy()
    wrong = rng.random(600) < 0.15
    labels[wrong] = (truth[wrong] + 1) % 3
    weight = rng.uniform(0.5, 1.0, 600)
    audited = rng.random(600) < 0.9
    fit = ProjectModel(3, seed=0).fit(X, labels, weight)
    result = audit_pass(X, labels, 3, weight, InProcess(), audited=audited)
    np.testing.assert_array_equal(result.oof_probas, fit.oof_probas)
    expected = find_label_issues(labels[audited], fit.oof_probas[audited])
    np.testing.assert_array_equal(result.issues.indices, expected.indices)
    flagged = np.flatnonzero(audited)[result.issues.indices]
    assert len(flagged) > 20 and wrong[flagged].mean() > 0.5  # mostly flipped labels (15% of all)


def test_in_process_passes_never_import_ray(tmp_path: Path):
    _embedder()
    script = textwrap.dedent("""
        import sys
        import numpy as np
        from goldlabel.models import ProjectModel
        from goldlabel.models.scaleout import audit_pass, embed_pass, params_of, predict_pass
        q, scale = embed_pass(["a short text", "another one", "and a third"] * 10, batch_size=8)
        X = np.random.default_rng(0).normal(size=(60, 8))
        y = (X[:, 0] > 0).astype(int)
        model = ProjectModel(2)
        model.fit(X, y)
        predict_pass(X, params_of(model), batch_size=7)
        audit_pass(X, y, 2)
        assert q.shape == (30, 384), q.shape
        assert "ray" not in sys.modules, sorted(m for m in sys.modules if m.startswith("ray"))
        print("no ray")
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "no ray" in out.stdout
