"""The drop-in promise: crowd-kit's own test cases (Toloka/crowd-kit ``tests/aggregation``,
``tests/metrics``, ``tests/postprocessing``), rewritten in our form, run against
``goldlabel.quality`` with crowd-kit's arguments, attribute names and result shapes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal, assert_series_equal

import goldlabel.quality as q
from goldlabel.quality.utils import evaluate, evaluate_equal, get_accuracy

# crowd-kit's "toy YSDA" set: 5 workers, 5 tasks, yes/no
TOY = pd.DataFrame(
    [row.split() for row in (
        "w1 t1 no", "w1 t2 yes", "w1 t3 yes", "w1 t4 yes", "w1 t5 yes",
        "w2 t1 yes", "w2 t2 yes", "w2 t3 no", "w2 t4 yes", "w2 t5 no",
        "w3 t2 yes", "w3 t3 no", "w3 t4 yes", "w3 t5 no",
        "w4 t1 yes", "w4 t2 no", "w4 t3 yes", "w4 t4 yes", "w4 t5 no",
        "w5 t1 no", "w5 t2 no", "w5 t3 no", "w5 t4 yes", "w5 t5 no",
    )],
    columns=["worker", "task", "label"],
)
TOY_TRUTH = pd.Series(["yes", "yes", "no", "yes", "no"], pd.Index([f"t{i}" for i in range(1, 6)], name="task"),
                      name="agg_label")
TOY_GOLD = pd.Series({"t1": "yes", "t2": "yes"})


@pytest.fixture
def toy() -> pd.DataFrame:
    return TOY.copy()


def _zero_initial_error() -> pd.DataFrame:
    rows = pd.MultiIndex.from_product([["w1", "w2", "w3", "w4", "w5"], ["yes", "no"]], names=["worker", "label"])
    return pd.DataFrame(np.zeros((len(rows), 2)), index=rows, columns=["no", "yes"])


def _overlap_frame(overlap: int) -> pd.DataFrame:
    # every worker says "no" on exactly one of three tasks: answers carry no information
    workers = np.repeat(np.arange(overlap), 3)
    tasks = np.tile(np.arange(3), overlap)
    labels = np.where((workers - tasks) % 3 != 0, "yes", "no")
    return pd.DataFrame({"task": tasks, "worker": workers, "label": labels})


# ----------------------------------------------------------------- defects (issue 15, item 4)


@pytest.mark.parametrize("model", [q.DawidSkene, q.OneCoinDawidSkene, q.MACE, q.CommunityDawidSkene,
                                   q.RobustDawidSkene, q.GLAD])
def test_zero_iterations_give_the_starting_posteriors(model, toy):
    # was UnboundLocalError: the parameters were only assigned inside the EM loop
    fitted = model(n_iter=0).fit(toy)
    majority = q.MajorityVote().fit(toy)
    assert fitted.n_iter_ == 0
    assert set(fitted.labels_.index) == set(TOY_TRUTH.index)
    if model is not q.RobustDawidSkene:  # robust averages vote members in
        assert_frame_equal(fitted.probas_, majority.probas_)


@pytest.mark.parametrize("overlap", [3, 300, 30000])
def test_dawid_skene_keeps_uninformative_answers_uninformative(overlap):
    # was [0, 1] at overlap 30,000: a flat pseudo-count on every confusion cell made each
    # uninformative worker slightly informative, and 30,000 of them decisive
    ds = q.DawidSkene(20).fit(_overlap_frame(overlap))
    expected = pd.Series([1 / 3, 2 / 3], pd.Index(["no", "yes"], name="label"), name="prior")
    assert_series_equal(ds.priors_, expected, atol=0.005)
    assert np.allclose(ds.probas_.to_numpy(), [[1 / 3, 2 / 3]] * 3, atol=0.005)
    assert (ds.labels_ == "yes").all()


# ------------------------------------------------------------------ DawidSkene's crowd-kit API


@pytest.mark.parametrize("strategy", ["addition", "assign", None])
def test_dawid_skene_without_initial_error(strategy, toy):
    ds = q.DawidSkene(n_iter=10, tol=0, initial_error_strategy=strategy)
    assert_series_equal(ds.fit(toy, initial_error=None).labels_.sort_index(), TOY_TRUTH)


def test_dawid_skene_zero_initial_error_adds_nothing_and_cannot_be_assigned(toy):
    ds = q.DawidSkene(n_iter=10, tol=0, initial_error_strategy="addition")
    assert_series_equal(ds.fit(toy, initial_error=_zero_initial_error()).labels_.sort_index(), TOY_TRUTH)
    with pytest.raises(ValueError, match="sum of each worker's error matrix in initial_error should be 1.0"):
        q.DawidSkene(n_iter=10, initial_error_strategy="assign").fit(toy, initial_error=_zero_initial_error())
    with pytest.raises(ValueError, match="cannot find 2 annotators"):
        q.DawidSkene(n_iter=10, initial_error_strategy="assign").fit(toy, initial_error=_zero_initial_error()[:6])


def test_dawid_skene_initial_error_steers_the_result(toy):
    # t2: w1, w2, w3 say yes, w4 and w5 say no; make w4 and w5 trusted and the others not
    initial = _zero_initial_error()
    for worker in ("w4", "w5"):
        initial.loc[(worker, "no"), "no"] = 99
        initial.loc[(worker, "yes"), "yes"] = 99
    for worker in ("w1", "w2", "w3"):
        initial.loc[(worker, "yes"), "no"] = 99
        initial.loc[(worker, "no"), "yes"] = 99
    ds = q.DawidSkene(n_iter=10, tol=0, initial_error_strategy="addition").fit(toy, initial_error=initial)
    assert ds.labels_["t2"] == "no"


def test_dawid_skene_inner_state_after_zero_iterations(toy):
    initial = _zero_initial_error()
    initial.loc[("w2", "yes"), "no"] = 1.1
    initial.loc[("w2", "yes"), "yes"] = 0.9
    initial.loc[("w2", "no"), "yes"] = 0.4
    initial.loc[("w2", "no"), "no"] = 0.6
    ds = q.DawidSkene(n_iter=0, tol=0, initial_error_strategy="addition").fit(toy, initial_error=initial)
    w2 = ds.errors_.loc["w2"]
    assert np.allclose([w2.loc["yes", "no"], w2.loc["yes", "yes"], w2.loc["no", "yes"], w2.loc["no", "no"]],
                       [0.5, 0.75, 0.25, 0.5])
    rng = np.random.default_rng(42)
    given = _zero_initial_error() + rng.integers(1, 100, size=(10, 2))
    given = given / given.groupby("worker", sort=False).sum()
    assigned = q.DawidSkene(n_iter=0, initial_error_strategy="assign").fit(toy, initial_error=given)
    assert_frame_equal(given, assigned.errors_)


def test_dawid_skene_gold_and_result_shapes(toy):
    for n_iter in (0, 1, 2):
        ds = q.DawidSkene(n_iter).fit(toy, TOY_GOLD)
        assert (ds.probas_.loc[["t1", "t2"], "yes"] == 1.0).all()
        assert np.allclose(ds.probas_.sum(axis=1), 1.0)
    ds = q.DawidSkene(n_iter=10, tol=0).fit(toy, true_labels=TOY_GOLD)
    assert_series_equal(ds.labels_.sort_index(), TOY_TRUTH)
    assert ds.errors_.index.names == ["worker", "label"] and list(ds.errors_.columns) == ["no", "yes"]
    assert np.allclose(ds.errors_.groupby("worker").sum(), 1.0)
    assert ds.priors_.name == "prior" and ds.priors_.index.name == "label"
    assert len(ds.loss_history_) == ds.n_iter_
    # first-appearance row order, as crowd-kit
    assert list(ds.labels_.index) == ["t1", "t2", "t3", "t4", "t5"]
    assert list(ds.skills_.index) == ["w1", "w2", "w3", "w4", "w5"]


def test_empty_frame_gives_empty_results():
    ds = q.DawidSkene(10).fit(pd.DataFrame([], columns=["task", "worker", "label"]))
    assert ds.probas_.empty and ds.errors_.empty
    assert_series_equal(ds.priors_, pd.Series(dtype=float, name="prior"))
    assert_series_equal(ds.labels_, pd.Series(dtype=float, name="agg_label"))


@pytest.mark.parametrize("missing", ["task", "worker", "label"])
@pytest.mark.parametrize("model", [q.MajorityVote, q.Wawa, q.DawidSkene])
def test_missing_column_is_a_key_error_with_a_clear_message(model, missing):
    frame = TOY.drop(columns=[missing])
    with pytest.raises(KeyError, match=f"missing column .*{missing}"):
        model().fit_predict(frame)
    with pytest.raises(ValueError, match="found columns"):
        model().fit_predict_proba(frame)


# ------------------------------------------------------------------------------ other estimators


@pytest.mark.parametrize("method", ["vb", "em", "map"])
def test_mace_crowdkit_arguments_and_attributes(method, toy):
    mace = q.MACE(n_restarts=3, n_iter=20, method=method, random_state=0).fit(toy)
    assert evaluate(TOY_TRUTH.to_frame("label"), mace.labels_.to_frame("label"), evaluate_func=evaluate_equal) >= 0.8
    assert mace.spamming_.shape == (5, 2) and np.allclose(mace.spamming_.sum(axis=1), 1.0)
    assert mace.thetas_.shape == (5, 2) and np.allclose(mace.thetas_.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="method must be one of"):
        q.MACE(method="gibbs").fit(toy)


def test_get_accuracy_per_worker(toy):
    accuracy = get_accuracy(toy, TOY_TRUTH, by="worker")
    assert accuracy.to_dict() == pytest.approx({"w1": 0.4, "w2": 1.0, "w3": 1.0, "w4": 0.6, "w5": 0.6})


def test_glad_keeps_its_class_prior_fixed(datasets_root):
    # was: the prior re-estimated every M-step collapsed onto one class (zheng_rel: 0.29,
    # majority vote 0.54, crowd-kit's GLAD 0.565)
    answers = q.load_csv(datasets_root / "zheng_rel" / "answers.csv")
    truth = q.load_gold_csv(datasets_root / "zheng_rel" / "truth.csv")
    glad = q.GLAD().fit(answers)
    assert np.allclose(glad.priors_, 1.0 / answers.n_labels)
    labels = dict(zip(answers.item_ids.tolist(), glad.labels_.tolist()))
    accuracy = np.mean([labels[item] == label for item, label in truth.items() if item in labels])
    assert accuracy > 0.5, accuracy


def test_glad_crowdkit_attributes(toy):
    glad = q.GLAD(n_iter=100, tol=0, labels_priors=pd.Series({"yes": 0.5, "no": 0.5})).fit(toy)
    assert_series_equal(glad.labels_.sort_index(), TOY_TRUTH)
    assert glad.alphas_.name == "alpha" and glad.alphas_.index.name == "worker" and len(glad.alphas_) == 5
    assert glad.betas_.name == "beta" and glad.betas_.index.name == "task" and (glad.betas_ > 0).all()
    assert_series_equal(glad.priors_, pd.Series([0.5, 0.5], pd.Index(["no", "yes"], name="label"), name="prior"))
    assert len(glad.loss_history_) == glad.n_iter_
    skewed = q.GLAD(labels_priors={"yes": 0.99, "no": 0.01}).fit(toy)
    assert skewed.priors_["yes"] == pytest.approx(0.99)


# ------------------------------------------------------------------ the majority-vote family

# crowd-kit's results on the toy set (tests/aggregation/data_mv.py, data_wawa.py, data_gold_mv.py)
TOY_MV_SKILLS = [0.6, 0.8, 1.0, 0.4, 0.8]
TOY_GOLD_SKILLS = [0.5, 1.0, 1.0, 0.5, 0.0]
TOY_GOLD_PROBAS = [[0.75, 0.25], [0.833333, 0.166667], [0.333333, 0.666667], [1.0, 0.0], [0.166667, 0.833333]]


def _skills(values):
    return pd.Series(values, pd.Index(["w1", "w2", "w3", "w4", "w5"], name="worker"), name="skill")


def test_majority_vote_skills_and_tie_breaking(toy):
    mv = q.MajorityVote()
    labels = mv.fit_predict(toy)
    assert labels.name == "agg_label" and labels["t1"] == "no"  # a 2:2 tie goes to the lowest label
    assert_series_equal(mv.skills_, _skills(TOY_MV_SKILLS))
    weighted = q.MajorityVote().fit(toy, skills=_skills([0.1, 0.1, 0.1, 5.0, 5.0]))
    assert weighted.labels_["t2"] == "no"  # w4 and w5 outweigh w1-w3


def test_majority_vote_on_missing_skill(toy):
    partial = _skills([0.9, 0.9, 0.9, 0.9, 0.9]).drop("w5")
    with pytest.raises(ValueError, match="no skill for 1 annotators, e.g. 'w5'"):
        q.MajorityVote(on_missing_skill="error").fit(toy, skills=partial)
    ignored = q.MajorityVote(on_missing_skill="ignore").fit(toy, skills=partial)
    assert "w5" not in ignored.skills_.index and ignored.labels_["t1"] == "yes"  # t1: no, yes, yes
    valued = q.MajorityVote(on_missing_skill="value", default_skill=100).fit(toy, skills=partial)
    assert (valued.labels_ == "no").sum() == 4  # w5 says no on four tasks and now decides them
    with pytest.raises(ValueError, match="every answer would be ignored"):
        q.MajorityVote(on_missing_skill="ignore").fit(toy, skills=pd.Series([], dtype=float))


def test_wawa_predicts_new_answers_with_learned_weights(toy):
    wawa = q.Wawa().fit(toy)
    assert_series_equal(wawa.skills_, _skills(TOY_MV_SKILLS))
    probas = wawa.predict_proba(toy)
    assert probas is wawa.probas_ and np.allclose(probas.sum(axis=1), 1.0)
    assert wawa.predict(toy.iloc[:5]).tolist() == ["no", "yes", "yes", "yes", "yes"]  # only w1's answers


def test_gold_majority_vote(toy):
    gold = q.GoldMajorityVote()
    assert gold.fit(toy, TOY_GOLD) is gold
    assert_series_equal(gold.skills_, _skills(TOY_GOLD_SKILLS))
    probas = gold.predict_proba(toy)
    assert np.allclose(probas[["yes", "no"]].to_numpy(), TOY_GOLD_PROBAS, atol=1e-6)
    assert_series_equal(gold.predict(toy).sort_index(), TOY_TRUTH)
    with pytest.raises(KeyError):
        q.GoldMajorityVote().fit(toy, pd.DataFrame({"label": ["no"]}))
    empty = q.GoldMajorityVote().fit_predict_proba(pd.DataFrame({"task": [], "worker": [], "label": []}),
                                                  pd.Series(dtype=float))
    assert empty.empty
    # several acceptable labels per item: an answer matching any of them is right
    several = pd.Series(["yes", "no"], index=["t1", "t1"])
    assert q.GoldMajorityVote().fit(toy, several).skills_.loc[["w1", "w2"]].tolist() == [1.0, 1.0]


def test_zero_based_skill(toy):
    zbs = q.ZeroBasedSkill()
    assert_series_equal(zbs.fit_predict(toy).sort_index(), TOY_TRUTH.where(TOY_TRUTH.index != "t1", "no"))
    assert zbs.skills_.name == "skill" and zbs.skills_.between(0, 1).all()
    assert set(q.ZeroBasedSkill(n_iter=0).fit_predict(toy).index) == set(TOY_TRUTH.index)


# ------------------------------------------------------------------------------- multi-label

MULTI = pd.DataFrame(
    [["t1", "w1", ["house", "tree"]], ["t1", "w2", ["house"]], ["t1", "w3", ["house", "tree", "grass"]],
     ["t2", "w1", ["car"]], ["t2", "w2", ["car", "human"]], ["t2", "w3", ["train"]]],
    columns=["task", "worker", "label"],
)


def test_multi_choice_dawid_skene_on_crowdkit_multilabel_toy():
    # was [[house], []]: each label's prevalence collapsed to 0 on a two-item set
    from goldlabel.quality.multi_choice import encode_multi_choice

    selected, vocabulary = encode_multi_choice(MULTI["label"].tolist())
    for coin in ("two", "one"):
        fitted = q.MultiChoiceDawidSkene(coin=coin).fit([0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 2], selected)
        assert [sorted(vocabulary[row]) for row in fitted.labels_] == [["house", "tree"], ["car"]]


@pytest.mark.parametrize("base", [q.MajorityVote(), q.DawidSkene(), q.Wawa(), q.GLAD()])
def test_binary_relevance(base):
    labels = q.BinaryRelevance(base).fit_predict(MULTI)
    expected = pd.Series([["house", "tree"], ["car"]], index=pd.Index(["t1", "t2"], name="task"), name="agg_label")
    assert_series_equal(labels, expected)
    empty = q.BinaryRelevance(base).fit_predict(pd.DataFrame([], columns=["task", "worker", "label"]))
    assert empty.empty and empty.name == "agg_label"


# --------------------------------------------------------------------------------------- KOS

BOOL = pd.DataFrame([["w1", "t1", True], ["w1", "t2", True], ["w2", "t1", True], ["w2", "t2", True],
                     ["w3", "t1", False], ["w3", "t2", False]], columns=["worker", "task", "label"])


@pytest.mark.parametrize("n_iter", [10, 100])
def test_kos_on_bool_labels(n_iter):
    expected = pd.Series([True, True], index=pd.Index(["t1", "t2"], name="task"), name="agg_label")
    assert_series_equal(q.KOS(n_iter=n_iter).fit(BOOL).labels_, expected)
    assert_series_equal(q.DawidSkene(20).fit(BOOL).labels_, expected)


def test_kos_refuses_more_than_two_labels_and_takes_empty_input():
    three = TOY.assign(label=["a", "b", "c"] * 8)
    with pytest.raises(ValueError, match="binary labels only; got 3 labels"):
        q.KOS().fit(three)
    empty = q.KOS(n_iter=10).fit(pd.DataFrame([], columns=["task", "worker", "label"]))
    assert_series_equal(empty.labels_, pd.Series([], dtype="O", name="agg_label"))


def test_kos_matches_crowdkit_on_real_data(datasets_root):
    # crowd-kit 1.4.2's KOS, measured on this machine: acf_sp 0.8192, bluebirds 0.7222
    for name, expected in (("acf_sp", 0.8192), ("bluebirds", 0.7222)):
        answers = q.load_csv(datasets_root / name / "answers.csv")
        truth = q.load_gold_csv(datasets_root / name / "truth.csv")
        labels = dict(zip(answers.item_ids.tolist(), q.KOS().fit(answers).labels_.tolist()))
        accuracy = np.mean([str(labels[i]) == str(label) for i, label in truth.items() if i in labels])
        assert accuracy == pytest.approx(expected, abs=0.01)


# ----------------------------------------------------------------------------------- metrics


def test_consistency_and_accuracy_on_aggregates(toy):
    # crowd-kit's values on the toy set (tests/metrics/test_metrics.py)
    assert q.consistency(toy) == pytest.approx(0.9384615384615385, rel=1e-12)
    assert q.accuracy_on_aggregates(toy) == pytest.approx(0.7083333333333334, rel=1e-12)
    per_worker = q.accuracy_on_aggregates(toy, by="worker")
    assert per_worker.to_dict() == pytest.approx(dict(zip(["w1", "w2", "w3", "w4", "w5"], TOY_MV_SKILLS)))
    assert get_accuracy(toy, TOY_GOLD) == pytest.approx(5 / 9)


def test_uncertainty(toy):
    skills = _skills(TOY_MV_SKILLS)
    assert q.uncertainty(toy, skills) == pytest.approx(0.6308666201949331, rel=1e-12)
    with pytest.raises(KeyError):
        q.uncertainty(toy, skills, compute_by="invalid")
    split = pd.DataFrame({"task": ["X", "X", "Y", "Y"], "worker": ["A", "B", "A", "B"],
                          "label": ["Yes", "No", "Yes", "Yes"]})
    by_task = q.uncertainty(split, compute_by="task", aggregate=False)
    assert np.allclose(by_task.to_numpy(), [np.log(2), 0.0]) and list(by_task.index) == ["X", "Y"]
    by_worker = q.uncertainty(split, compute_by="worker", aggregate=False)
    assert np.allclose(by_worker.to_numpy(), [0.0, np.log(2)])
    three = pd.DataFrame({"task": ["X"] * 3, "worker": ["A", "B", "C"], "label": ["Yes", "No", "Maybe"]})
    assert q.uncertainty(three) == pytest.approx(np.log(3))
    with pytest.raises(AssertionError, match="no skill for 1 annotators"):
        q.uncertainty(three, pd.Series({"A": 1.0, "B": 1.0}))


def test_entropy_threshold_drops_one_button_clickers():
    answers = pd.DataFrame({"task": ["1", "1", "2", "2", "3", "3"], "worker": ["A", "B"] * 3,
                            "label": ["dog", "cat", "cat", "cat", "dog", "cat"]})
    with pytest.warns(UserWarning, match="Removed >= 1/2 of answers"):
        kept = q.entropy_threshold(answers)
    assert kept.columns.tolist() == ["task", "worker", "label"] and kept.shape == (3, 3)
    assert set(kept["worker"]) == {"A"}  # B always says cat
    few = pd.concat([answers, pd.DataFrame({"task": ["1"], "worker": ["C"], "label": ["cat"]})])
    assert "C" in set(q.entropy_threshold(few, percentile=50, min_answers=2)["worker"])


# ----------------------------------------------------------- metrics: alpha_krippendorff on frames


def _masi_distance(a: frozenset, b: frozenset) -> float:
    # Passonneau's MASI distance (nltk.metrics.distance.masi_distance, which crowd-kit's test uses)
    inter, union = len(a & b), len(a | b)
    monotonicity = 1 if len(a) == len(b) == inter else 0.67 if inter == min(len(a), len(b)) else 0.33 if inter else 0
    return 1 - inter / union * monotonicity


def test_alpha_krippendorff(toy):
    records = [{"task": "X", "worker": "A", "label": "Yes"}, {"task": "X", "worker": "B", "label": "Yes"},
               {"task": "Y", "worker": "A", "label": "No"}, {"task": "Y", "worker": "B", "label": "No"}]
    assert q.alpha_krippendorff(pd.DataFrame.from_records(records)) == 1.0
    records += [{"task": "Z", "worker": "A", "label": "Yes"}, {"task": "Z", "worker": "B", "label": "No"}]
    assert q.alpha_krippendorff(pd.DataFrame.from_records(records)) == 0.4444444444444444
    assert q.alpha_krippendorff(toy) == 0.14219114219114215


def test_alpha_krippendorff_with_distance():
    tags = [["dog"], ["dog"], ["cat"], ["cat"], ["cat"], ["cat", "mouse"]]
    whos_on_the_picture = pd.DataFrame({"task": list("XXYYZZ"), "worker": list("ABABAB"),
                                        "label": [frozenset(t) for t in tags]})
    assert q.alpha_krippendorff(whos_on_the_picture) == 0.5454545454545454
    assert q.alpha_krippendorff(whos_on_the_picture, _masi_distance) == 0.6673336668334168


def test_alpha_krippendorff_on_a_frame_is_the_array_alpha(toy):
    from goldlabel.quality.agreement import krippendorff_alpha

    answers = q.from_frame(toy)
    assert q.alpha_krippendorff(toy) == pytest.approx(krippendorff_alpha(answers))
    # a distance that is the nominal one gives the nominal alpha; the goldlabel column names work too
    renamed = toy.rename(columns={"task": "item", "worker": "annotator"})
    assert q.alpha_krippendorff(renamed, lambda a, b: float(a != b)) == pytest.approx(krippendorff_alpha(answers))
    with pytest.raises(KeyError, match="label"):
        q.alpha_krippendorff(toy.drop(columns=["label"]))
