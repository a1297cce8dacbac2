"""The public names of goldlabel.models, exactly: a name added or removed is a decision made
here, not a side effect of an import."""

from __future__ import annotations

import types

import goldlabel.models

MODELS = [
    "ACTIVE_POLICIES", "AuditCheck", "DEFAULT_BANDS", "DEFAULT_MODEL_ID", "Embedder",
    "EmbeddingStore", "FitResult", "LabelIssues", "MalformedAnswer", "MiniLMEmbedder", "ModelFilesMissing",
    "MultiChoiceModel", "PRIORITY_LEVELS", "ProjectModel", "ThresholdResult",
    "UncertaintyDiversity", "active_priorities", "add_model_answers", "add_model_votes",
    "audit_mask", "band_of", "build_request", "calibration_slice", "check_audits", "clopper_pearson_lower",
    "clopper_pearson_upper",
    "cold_start", "content_hash", "decisive_confidence", "embed_cached", "entropy_uncertainty",
    "expected_calibration_error", "find_label_issues", "human_answer_counts", "k_center_greedy", "load_entry_point",
    "margin_uncertainty", "model_log_likelihood", "model_skill", "model_votes", "pair_features", "parse_answer",
    "select_threshold", "slice_threshold", "slice_unit", "taken_earlier", "top_probas",
]


def test_public_names_exactly():
    module = goldlabel.models
    assert sorted(module.__all__) == sorted(MODELS)
    assert len(set(module.__all__)) == len(module.__all__)
    for name in module.__all__:
        assert hasattr(module, name), name
    # nothing public of its own outside __all__ (submodules and imported helpers aside)
    own = {n for n, v in vars(module).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)
           and (getattr(v, "__module__", None) or "goldlabel").startswith("goldlabel")}
    assert own - {"annotations"} <= set(module.__all__)
