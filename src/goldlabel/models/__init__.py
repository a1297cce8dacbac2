"""Models in the loop: embeddings, the project model, active learning, calibrated auto-labeling,
the model as an annotator and the label-error audit (numpy / scipy / scikit-learn / ONNX Runtime
only; imports nothing from the server). See docs/models.md.
"""

from .active import (
    ACTIVE_POLICIES,
    PRIORITY_LEVELS,
    UncertaintyDiversity,
    active_priorities,
    cold_start,
    entropy_uncertainty,
    k_center_greedy,
    margin_uncertainty,
    top_probas,
)
from .annotator import (
    DEFAULT_BANDS,
    add_model_answers,
    add_model_votes,
    band_of,
    decisive_confidence,
    human_answer_counts,
    model_log_likelihood,
    model_skill,
    model_votes,
)
from .autolabel import (
    AuditCheck,
    ThresholdResult,
    audit_mask,
    check_audits,
    clopper_pearson_lower,
    clopper_pearson_upper,
    select_threshold,
)
from .calibration import calibration_slice, slice_threshold, slice_unit
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
from .external import MalformedAnswer, build_request, load_entry_point, parse_answer
from .label_errors import LabelIssues, find_label_issues
from .project_model import FitResult, MultiChoiceModel, ProjectModel, expected_calibration_error

__all__ = [
    "ACTIVE_POLICIES",
    "DEFAULT_BANDS",
    "DEFAULT_MODEL_ID",
    "PRIORITY_LEVELS",
    "AuditCheck",
    "Embedder",
    "EmbeddingStore",
    "FitResult",
    "LabelIssues",
    "MalformedAnswer",
    "MiniLMEmbedder",
    "ModelFilesMissing",
    "MultiChoiceModel",
    "ProjectModel",
    "ThresholdResult",
    "UncertaintyDiversity",
    "active_priorities",
    "add_model_answers",
    "add_model_votes",
    "audit_mask",
    "band_of",
    "build_request",
    "calibration_slice",
    "check_audits",
    "clopper_pearson_lower",
    "clopper_pearson_upper",
    "cold_start",
    "content_hash",
    "decisive_confidence",
    "embed_cached",
    "entropy_uncertainty",
    "expected_calibration_error",
    "find_label_issues",
    "human_answer_counts",
    "k_center_greedy",
    "load_entry_point",
    "margin_uncertainty",
    "model_log_likelihood",
    "model_skill",
    "model_votes",
    "pair_features",
    "parse_answer",
    "select_threshold",
    "slice_threshold",
    "slice_unit",
    "top_probas",
]
