"""Models in the loop: embeddings, the project model, active learning, calibrated auto-labeling,
the model as an annotator and the label-error audit (numpy / scikit-learn / ONNX Runtime only;
imports nothing from the server). See docs/models.md.
"""

from .embeddings import (
    DEFAULT_MODEL_ID,
    Embedder,
    EmbeddingStore,
    MiniLMEmbedder,
    ModelFilesMissing,
    content_hash,
    embed_cached,
    pair_features,
)

__all__ = [
    "DEFAULT_MODEL_ID",
    "Embedder",
    "EmbeddingStore",
    "MiniLMEmbedder",
    "ModelFilesMissing",
    "content_hash",
    "embed_cached",
    "pair_features",
]
