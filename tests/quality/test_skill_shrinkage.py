"""Learned skills are shrunk toward the default annotator by the answers behind them."""

import numpy as np
import pytest

from goldlabel.quality import confusions_from_skills
from goldlabel.quality.consensus import confusions_for

PERFECT = np.eye(2).tolist()


def shrunk(n_answers: int, prior_answers: float) -> np.ndarray:
    skills = {7: {"accuracy": 1.0, "confusion": PERFECT, "n_answers": n_answers}}
    return confusions_for([7, 8], skills, 2, 0.7, prior_answers)


def test_no_evidence_means_the_default_annotator():
    default = confusions_from_skills(np.array([0.7]), 2)[0]
    out = shrunk(0, 20)
    np.testing.assert_allclose(out[0], default)
    np.testing.assert_allclose(out[1], default)  # annotator 8 has no skill row at all


@pytest.mark.parametrize("n", [5, 20, 80])
def test_weight_is_n_over_n_plus_prior(n):
    w = n / (n + 20)
    assert shrunk(n, 20)[0][0, 0] == pytest.approx(w * 1.0 + (1 - w) * 0.7)


def test_zero_prior_trusts_learned_skills():
    np.testing.assert_allclose(shrunk(3, 0)[0], np.eye(2))
