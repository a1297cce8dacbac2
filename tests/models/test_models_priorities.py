"""Active-learning queue priorities and the model's vote as an annotator (goldlabel.models),
without a database."""

from __future__ import annotations

import numpy as np
import pytest

from goldlabel import quality
from goldlabel.models import (
    PRIORITY_LEVELS,
    active_priorities,
    add_model_answers,
    add_model_votes,
    margin_uncertainty,
    model_log_likelihood,
    model_skill,
    top_probas,
)
from goldlabel.quality.consensus import skill_confusions


def clusters(n_per: int, centers: int, dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    middle = rng.normal(size=(centers, dim)) * 10
    which = np.repeat(np.arange(centers), n_per)
    return middle[which] + rng.normal(scale=0.1, size=(len(which), dim)), which


def test_cold_start_ranks_one_item_per_cluster_first():
    vectors, which = clusters(30, 4)
    prio = active_priorities(None, len(vectors), lambda i: vectors[i], policy="uncertainty_diversity", batch=4,
                             rng=np.random.default_rng(1))
    top = np.argsort(-prio, kind="stable")[:4]
    assert sorted(which[top].tolist()) == [0, 1, 2, 3]
    assert (prio[top] > PRIORITY_LEVELS).all() and (np.delete(prio, top) == 0).all()


def test_uncertainty_orders_by_margin_and_diversity_spreads_the_batch():
    vectors, which = clusters(30, 3)
    score = np.where(which == 0, 0.55, np.where(which == 1, 0.6, 0.99))  # cluster 0 least sure
    uncertainty = margin_uncertainty(top_probas(score, 2))
    calls = []

    def fetch(index):
        calls.append(len(index))
        return vectors[index]

    plain = active_priorities(uncertainty, len(vectors), fetch, policy="uncertainty", batch=3)
    assert calls == []  # no vectors needed without the diversity step
    assert (plain[which == 0] > plain[which == 1]).all() and (plain[which == 1] > plain[which == 2]).all()
    diverse = active_priorities(uncertainty, len(vectors), fetch, policy="uncertainty_diversity", batch=3,
                                min_pool=40, pool_factor=1)
    assert calls == [40]  # only the pool's vectors
    top = np.argsort(-diverse, kind="stable")[:3]
    assert which[top[0]] == 0 and len(set(which[top].tolist())) >= 2
    assert (active_priorities(uncertainty, len(vectors), fetch, policy="off", batch=3) == 0).all()
    with pytest.raises(ValueError, match="policy must be one of"):
        active_priorities(uncertainty, len(vectors), fetch, policy="random", batch=3)


def test_model_votes_from_top_label_and_score_match_full_probas():
    rng = np.random.default_rng(3)
    answers = quality.from_codes(rng.integers(0, 20, 60), rng.integers(0, 5, 60), rng.integers(0, 3, 60),
                                 n_items=25, n_annotators=5, n_labels=3)
    probas = rng.dirichlet(np.ones(3), size=25)
    a, codes_a = add_model_answers(answers, probas)
    b, codes_b = add_model_votes(answers, probas.argmax(axis=1), probas.max(axis=1))
    assert (codes_a == codes_b).all()
    assert (a.item == b.item).all() and (a.annotator == b.annotator).all() and (a.label == b.label).all()
    assert not np.isin(a.item[a.annotator >= 5], np.arange(20, 25)).any()  # never where no human answered


def test_model_log_likelihood_is_its_bands_shrunk_confusion():
    rng = np.random.default_rng(4)
    confusions = rng.dirichlet(np.ones(3), size=(8, 3))
    skills = rng.uniform(0.5, 1, 8)
    counts = np.arange(8) * 10
    codes = np.arange(2, 8)  # six bands after two humans
    skill = model_skill(confusions, skills, counts, codes)
    ll = model_log_likelihood(skill, 1, 0.93, 3, 0.7, 20.0)  # 0.93: band 3 (0.90-0.97)
    row = {"accuracy": skills[5], "confusion": np.round(confusions[5], 6), "n_answers": counts[5]}
    assert np.allclose(ll, np.log(skill_confusions([row], 3, 0.7, 20.0)[0][:, 1]))
