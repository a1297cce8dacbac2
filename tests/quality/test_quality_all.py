"""The public names of goldlabel.quality and goldlabel.quality.consensus, exactly: a name
added or removed is a decision made here, not a side effect of an import."""

from __future__ import annotations

import types

import pytest

import goldlabel.quality
import goldlabel.quality.consensus

QUALITY = [
    "Answers", "BCC", "BaseClassificationAggregator", "BinaryRelevance", "BradleyTerry", "CategoricalEstimator",
    "ClosestToAverage",
    "CommunityDawidSkene", "DEFAULT_METHOD", "DawidSkene", "EBCC", "GLAD", "GoldMajorityVote", "HRRASA", "KOS",
    "MACE", "METHODS", "METHOD_ALIASES", "MMSR", "MajorityVote", "MissingColumnError", "MissingSkillError",
    "MultiChoiceDawidSkene", "MultiChoiceMajorityVote", "NoisyBradleyTerry", "OneCoinDawidSkene", "RASA", "ROVER",
    "RobustDawidSkene",
    "SegmentationEM", "SegmentationMajorityVote", "SegmentationRASA", "SelectedModel", "SkillEstimate", "TextHRRASA",
    "TextRASA",
    "Wawa", "ZeroBasedSkill", "accuracy_on_aggregates", "aggregate_file", "alpha_krippendorff", "compute_ece",
    "confusions_from_skills", "consistency", "encode", "encode_gold",
    "entropy_threshold", "estimate_skill", "from_codes", "from_frame", "item_posterior", "load_csv",
    "load_gold_csv", "method_names", "recommended", "resolve_method", "uncertainty",
]
CONSENSUS = [
    "DEFAULT_TEXT_SIMILARITY", "KINDS", "LEARNED_SKILL_KINDS", "Question", "RatingScale", "RefitResult",
    "answer_log_likelihoods", "boxes_consensus", "broadcast_accuracy", "class_prior", "confusions_for",
    "consensus_for", "logit_weight", "multi_choice_consensus", "posterior_from_scores",
    "ranking_consensus", "rating_consensus", "rating_tolerance", "refit_boxes", "refit_multi_choice",
    "refit_question", "refit_ranking", "refit_rating", "refit_spans", "refit_text", "skill_confusions",
    "skill_rows", "spans_consensus", "text_consensus",
    "keypoints_consensus", "polygons_consensus", "refit_keypoints", "refit_polygons",
]


def own_public_names(module: types.ModuleType) -> set[str]:
    """Names the package binds to its own functions, classes and constants (not submodules,
    not what it imported from the standard library)."""
    out = set()
    for name, value in vars(module).items():
        if name.startswith("_") or isinstance(value, types.ModuleType):
            continue
        origin = getattr(value, "__module__", None)
        if origin is None or origin.startswith("goldlabel") or not callable(value):
            out.add(name)
    return out


@pytest.mark.parametrize(("module", "names"), [(goldlabel.quality, QUALITY),
                                               (goldlabel.quality.consensus, CONSENSUS)])
def test_public_names_exactly(module, names):
    assert sorted(module.__all__) == sorted(names)
    assert len(set(module.__all__)) == len(module.__all__)
    for name in module.__all__:
        assert hasattr(module, name), name
    assert own_public_names(module) - {"annotations"} <= set(module.__all__)
