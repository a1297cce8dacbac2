"""Quality engine: truth inference, annotator skill, agreement (numpy/scipy only).

Categorical estimators share one interface: ``Model(...).fit(answers, gold=None)`` with
``labels_``, ``probas_``, ``skills_``; see docs/quality.md.
"""

from .aggregate_file import aggregate_file
from .agreement import alpha_krippendorff
from .answers import (
    Answers,
    MissingColumnError,
    encode,
    encode_gold,
    from_codes,
    from_frame,
    load_csv,
    load_gold_csv,
)
from .bayesian import BCC, EBCC
from .calibration import compute_ece
from .categorical import CategoricalEstimator
from .dawid_skene import DawidSkene, OneCoinDawidSkene, item_posterior
from .embeddings import HRRASA, RASA, ClosestToAverage, TextHRRASA, TextRASA
from .glad import GLAD
from .kos import KOS
from .mace import MACE
from .majority_vote import GoldMajorityVote, MajorityVote, Wawa, ZeroBasedSkill
from .metrics import (
    MissingSkillError,
    accuracy_on_aggregates,
    consistency,
    entropy_threshold,
    uncertainty,
)
from .mmsr import MMSR
from .multi_choice import BinaryRelevance, MultiChoiceDawidSkene, MultiChoiceMajorityVote
from .ranking import BradleyTerry, NoisyBradleyTerry
from .robust import CommunityDawidSkene, RobustDawidSkene
from .rover import ROVER
from .segmentation import SegmentationEM, SegmentationMajorityVote, SegmentationRASA
from .selection import SelectedModel
from .skill import SkillEstimate, confusions_from_skills, estimate_skill

#: crowd-kit's name for the categorical estimators' base class
BaseClassificationAggregator = CategoricalEstimator

#: name -> estimator class; names are what `goldlabel aggregate --method` accepts
METHODS: dict[str, type[CategoricalEstimator]] = {
    "mv": MajorityVote,
    "wawa": Wawa,
    "ds": DawidSkene,
    "onecoin": OneCoinDawidSkene,
    "glad": GLAD,
    "mace": MACE,
    "bcc": BCC,
    "ebcc": EBCC,
    "cds": CommunityDawidSkene,
    "robust": RobustDawidSkene,
    "auto": SelectedModel,
}

#: the method used when none is named: per-data-set selection by held-out answer likelihood,
#: chosen leave-one-dataset-out (docs/quality.md, "The default")
DEFAULT_METHOD = "auto"

#: other spellings a project's ``consensus_method`` may use: "default" follows DEFAULT_METHOD
METHOD_ALIASES: dict[str, str] = {
    "default": DEFAULT_METHOD,
    "majority_vote": "mv",
    "dawid_skene": "ds",
    "one_coin": "onecoin",
}


def method_names() -> list[str]:
    """Every name :func:`resolve_method` accepts: the registry's, then the aliases."""
    return [*METHODS, *METHOD_ALIASES]


def resolve_method(name: str) -> str:
    """The registry key (in :data:`METHODS`) a method name or alias stands for; a ValueError
    naming the valid names for anything else (never a silent fallback)."""
    key = METHOD_ALIASES.get(name, name)
    if key not in METHODS:
        raise ValueError(f"unknown aggregation method {name!r}; valid methods: {', '.join(method_names())}")
    return key


def recommended() -> CategoricalEstimator:
    """A fresh instance of the recommended default estimator."""
    return METHODS[DEFAULT_METHOD]()


__all__ = [
    "BCC",
    "DEFAULT_METHOD",
    "EBCC",
    "GLAD",
    "HRRASA",
    "KOS",
    "MACE",
    "METHODS",
    "METHOD_ALIASES",
    "MMSR",
    "RASA",
    "ROVER",
    "Answers",
    "BaseClassificationAggregator",
    "BinaryRelevance",
    "BradleyTerry",
    "CategoricalEstimator",
    "ClosestToAverage",
    "CommunityDawidSkene",
    "DawidSkene",
    "GoldMajorityVote",
    "MajorityVote",
    "MissingColumnError",
    "MissingSkillError",
    "MultiChoiceDawidSkene",
    "MultiChoiceMajorityVote",
    "NoisyBradleyTerry",
    "OneCoinDawidSkene",
    "RobustDawidSkene",
    "SegmentationEM",
    "SegmentationMajorityVote",
    "SegmentationRASA",
    "SelectedModel",
    "SkillEstimate",
    "TextHRRASA",
    "TextRASA",
    "Wawa",
    "ZeroBasedSkill",
    "accuracy_on_aggregates",
    "aggregate_file",
    "alpha_krippendorff",
    "compute_ece",
    "confusions_from_skills",
    "consistency",
    "encode",
    "encode_gold",
    "entropy_threshold",
    "estimate_skill",
    "from_codes",
    "from_frame",
    "item_posterior",
    "load_csv",
    "load_gold_csv",
    "method_names",
    "recommended",
    "resolve_method",
    "uncertainty",
]
