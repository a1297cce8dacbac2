"""The per-answer posterior of the platform (services.consensus.item_consensus) from cached
tables equals item_posterior over the confusions and prior it is defined by."""

import types

import numpy as np
import pytest

from goldlabel.domain.label_schema import LabelSchema
from goldlabel.quality import confusions_from_skills, item_posterior
from goldlabel.quality.consensus import class_prior, confusions_for
from goldlabel.quality.skill import default_confusion, default_log_likelihoods
from goldlabel.services.consensus import item_consensus


def plain_confusions(skills, n_labels):
    """confusions_from_skills as first written (clip, identity arithmetic)."""
    skills = np.clip(np.asarray(skills, dtype=np.float64).ravel(), 1e-6, 1 - 1e-6)
    eye = np.eye(n_labels)
    off = (1 - skills) / (n_labels - 1)
    return skills[:, None, None] * eye + off[:, None, None] * (1 - eye)


def test_confusions_from_skills_is_the_one_coin_formula():
    rng = np.random.default_rng(0)
    for _ in range(500):
        n_labels = int(rng.integers(2, 12))
        skills = rng.uniform(-0.5, 1.5, int(rng.integers(0, 6)))
        skills[rng.random(len(skills)) < 0.2] = np.nan
        skills[rng.random(len(skills)) < 0.2] = 1.0
        out = confusions_from_skills(skills, n_labels)
        np.testing.assert_array_equal(out, plain_confusions(skills, n_labels))
        assert out.flags.writeable
    with pytest.raises(ValueError, match="n_labels"):
        confusions_from_skills([0.7], 1)


@pytest.mark.parametrize("n_labels", [2, 3, 10])
@pytest.mark.parametrize("accuracy", [0.7, 0.55, 0.999])
def test_cached_default_tables(n_labels, accuracy):
    matrix = default_confusion(accuracy, n_labels)
    np.testing.assert_array_equal(matrix, confusions_from_skills([accuracy], n_labels)[0])
    table = default_log_likelihoods(accuracy, n_labels)
    np.testing.assert_array_equal(table, np.log(matrix).T)
    assert default_confusion(accuracy, n_labels) is matrix  # cached
    for cached in (matrix, table):
        assert not cached.flags.writeable
        with pytest.raises(ValueError):
            cached[0, 0] = 1.0


def test_callers_get_their_own_arrays():
    skills = {7: {"accuracy": 0.9, "confusion": None, "n_answers": 10}}
    out = confusions_for([7, 8], skills, 3, 0.7, 20.0)
    out[:] = 0  # no cached table changes
    np.testing.assert_array_equal(default_confusion(0.7, 3), confusions_from_skills([0.7], 3)[0])
    prior = class_prior(None, 3)[0]
    np.testing.assert_array_equal(prior, np.full(3, 1 / 3))
    assert not prior.flags.writeable
    mixed = class_prior([0.0, 0.5, 0.5], 3)[0]
    expected = 0.98 * np.array([0.0, 0.5, 0.5]) + 0.02 / 3
    np.testing.assert_array_equal(mixed, expected / expected.sum())
    np.testing.assert_array_equal(class_prior([[0.5], [0.5]], 3)[0], np.full(3, 1 / 3))


def consensus(labels, answers, skills, model, default, prior_answers):
    schema = LabelSchema.parse({"questions": [{"name": "q", "kind": "choice", "labels": labels}]})
    ctx = types.SimpleNamespace(
        get_schema=lambda project: schema,
        settings=types.SimpleNamespace(default_annotator_accuracy=default, skill_prior_answers=prior_answers),
        pooled={},  # no pooled knowledge (services/cold_start.py) and no connection: the defaults
    )
    rows, smallest = item_consensus(ctx, None, {"id": 1}, answers, 0, {"q": (skills, model)})
    return rows[0], smallest


def test_item_consensus_is_item_posterior():
    rng = np.random.default_rng(1)
    for _ in range(2000):
        n_labels = int(rng.integers(2, 11))
        labels = [f"l{i}" for i in range(n_labels)]
        default = float(rng.choice([0.7, 0.5, rng.uniform(0.05, 0.95)]))
        prior_answers = float(rng.choice([0.0, 20.0, rng.uniform(0, 50)]))
        answers = [{"annotator_id": int(rng.integers(10)), "value": {"q": labels[int(rng.integers(n_labels))]}}
                   for _ in range(int(rng.integers(1, 8)))]
        skills = {}
        for a in range(10):
            if rng.random() < 0.4:
                confusion = None
                if rng.random() < 0.4:  # stored, rounded: may hold zeros; sometimes of another label count
                    size = n_labels + int(rng.random() < 0.2)
                    confusion = np.round(rng.dirichlet(np.full(size, rng.uniform(0.05, 3)), size=size), 6).tolist()
                skills[a] = {"accuracy": float(rng.uniform(0, 1)), "confusion": confusion,
                             "n_answers": int(rng.integers(0, 200)) if rng.random() < 0.9 else None}
        model = {"prior": rng.dirichlet(np.ones(n_labels)).tolist() if rng.random() < 0.5 else None}
        row, smallest = consensus(labels, answers, skills, model, default, prior_answers)
        ids = [a["annotator_id"] for a in answers]
        codes = np.array([labels.index(a["value"]["q"]) for a in answers])
        want = item_posterior(np.arange(len(ids)), codes,
                              confusions_for(ids, skills, n_labels, default, prior_answers),
                              class_prior(model["prior"], n_labels)[0])
        top = int(np.argmax(want))
        assert row["value"] == labels[top]
        assert row["confidence"] == pytest.approx(want[top], abs=1e-12, rel=0)
        assert smallest == row["confidence"]


def test_no_possible_class_gives_the_prior():
    # a stored matrix with zeros, unshrunk: two answers that rule out every class
    skills = {1: {"accuracy": 0.9, "confusion": [[1.0, 0.0], [0.0, 1.0]], "n_answers": 50}}
    answers = [{"annotator_id": 1, "value": {"q": "a"}}, {"annotator_id": 1, "value": {"q": "b"}}]
    row, _ = consensus(["a", "b"], answers, skills, {"prior": [0.2, 0.8]}, 0.7, 0.0)
    expected = class_prior([0.2, 0.8], 2)[0]
    assert (row["value"], row["confidence"]) == ("b", pytest.approx(expected[1]))
    np.testing.assert_allclose(item_posterior([0, 0], [0, 1], np.eye(2)[None], expected), expected)
