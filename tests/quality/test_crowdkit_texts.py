"""crowd-kit's text and embedding aggregation cases in our form: ROVER, RASA, HRRASA, TextRASA,
TextHRRASA (Toloka/crowd-kit tests/aggregation/test_rover_aggregation.py and
test_text_aggregation.py, Apache-2.0; their data below), and a cross-check against crowd-kit
1.4.2 itself on random texts and a real CrowdWSA set, run in crowd-kit's own virtualenv as
tests/quality/test_crowdkit_crosscheck.py does."""

from __future__ import annotations

import json
import os
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal, assert_series_equal

from goldlabel.quality import HRRASA, RASA, ROVER, ClosestToAverage, MissingColumnError, TextHRRASA, TextRASA
from goldlabel.quality.embeddings import gleu_similarity
from goldlabel.quality.text import compute_wer

REPO = Path(__file__).resolve().parents[2]
DATASETS = Path(os.environ.get("GOLDLABEL_DATASETS", REPO.parent / "shared" / "datasets"))


def split(text):
    return text.split(" ")


def join(words):
    return " ".join(words)


# crowd-kit's simple_text_df (tests/conftest.py): task, worker, embedding, output
SIMPLE_TEXT = [
    ('1255-74899-0020', 'b6214dff3665ba9c6bc96dc326a417c9', (1.8628045, -0.66789037),
     'as soon as you downed my worst in stockings sweetheart'),
    ('1651-136854-0030', 'c740c713b07635302cf145d16ae2d698', (1.5327121, 2.5106835),
     ('it must indeed be allowed that is structure and sentences is expanded and often has '
     'somewhat of the inversion of latin and that he delighted to express familiar thought in a '
     'philosophical language meaning this the works of socrates who it was said reduced '
     'philosophy to the simplicity of life ')),
    ('7601-175351-0021', 'c854a0b6d71ec3503e0ce4ea2179d8c7', (10.217721, 16.948954),
     'there is more than one amongst us who would like to and imitate them i think'),
    ('1255-74899-0020', '19fdfe8fe1f7dd366f594bf2ce0bdd3e', (1.9092205, -0.5734551),
     'i said i was just talking sweetheart'),
    ('1651-136854-0030', 'c854a0b6d71ec3503e0ce4ea2179d8c7', (1.523252, 2.5053673),
     ('it must indeed be allowed that the structure of your sentences is expanded and often has '
     'somewhat of the inversion of latin and that he delighted to express familiar thoughts in a'
     ' philosophical language being in the the reversal of socrates who it was said reduced '
     'philosophy to the simplicity of common life')),
    ('1651-136854-0030', '2ef99a0a7639b5fcd7e66e59e7b7e3bf', (1.5202638, 2.481906),
     ('it must indeed be allowed that the structure iss expanded and often has somewhat of the '
     'invention of latin in that he delighted to express familiar thoughts in philosophical '
     'language being in this the reverse of socrates whom it was said reduced phylosophy to the '
     'simplicity of common life')),
    ('7601-175351-0021', 'ab2784b4377e0848ebff96098fb67301', (10.222795, 16.946047),
     'there is more than one among us who like to eliminate them i think'),
    ('7601-175351-0021', '07bda6ebab4a387f8ced48c40c5878a6', (10.197447, 16.96481),
     "there's more than one amongst us who would like doing imitate them i think"),
    ('1651-136854-0030', 'efcfbfa835fdcec9a865f82bbf6d36df', (1.5325097, 2.5046723),
     ('it must indeed be allowed that the structurally sentences is expanded and often has '
     'somewhat be inversion of latin and that he delighted to express familiar thought in a '
     'philosophical language being in this the reverse of socrates who it was said reduce '
     'philosophy to the simplicity of common life')),
    ('7601-175351-0021', 'efcfbfa835fdcec9a865f82bbf6d36df', (10.219084, 16.948515),
     "there's more than one amongst us who would like to imitate them i think"),
    ('7601-175351-0021', '27dfec580d349e20166b56be480336ea', (10.217423, 16.949697),
     "there's more than one amongst us who would like imitate them i think"),
    ('1255-74899-0020', '4330bead5a86328a3d6987b3c065dc80', (1.9123898, -0.58190906),
     'as soon as you darned my worst is talking sweetheart'),
    ('1255-74899-0020', '2c3954249d00e0aa0adab7226eba47e4', (1.8627588, -0.661437),
     "as soon as you've done my worthiest stocking sweetheart"),
    ('1255-74899-0020', 'cd5520854f89b31ae5f8673fa2992ac7', (1.8909845, -0.63419354),
     'i should have seen you donned my worst heel stocking sweetheart'),
    ('1651-136854-0030', '5701a8373b728dd333c0796df9f2a8f4', (1.5207397, 2.5072067),
     ('it must indeed be allowed that the structure of his sentences is expanded and often has '
     'somewhat of the inversion of latin and that he delighted to express familiar thoughts in a'
     ' philosophical language being in this the reverse of socrates who it was said reduced '
     'philosophy to the simplicity of common life')),
    ('7601-175351-0021', '9e9847e525a1d0fdfaf22d83fa75d115', (10.219814, 16.947468),
     "there's more than one amongst us who would like to imitate anything"),
    ('1651-136854-0030', 'cd5520854f89b31ae5f8673fa2992ac7', (1.51274, 2.5141635),
     ('it must indeed be allowed that the structure of his sentences is expanded and often has '
     'somewhat of the inversion of latin and that he delighted to express familiar thoughts in '
     'philosophical language being in this the reverse of socrates who it was said reduced '
     'philosophy to the simplicity of common life ')),
    ('1651-136854-0030', '2047f49d9762c9db85f2240b06dd2d12', (1.5277034, 2.5007238),
     ('it must indeed be allowed that the structure of his sentence is expanded and often has '
     'somewhat of the inversion of latin and that he delighted to express familiar thoughts and '
     'philosophical language being in this the reverse of socrates who it was said reduced '
     'philosophy to the simplicity of common life')),
    ('1651-136854-0030', '0598870b6ec9d30e31958f5b517b4336', (1.5254755, 2.4552798),
     ('it must in need be allowed the structure id expenses it expend it and obten some water the'
     ' inversion of letter and he the new year fox and the language vniversal soxes it was said '
     'phlosopharty of common life')),
    ('1651-136854-0030', 'f733ff7874adaf5e83b5243e7aebc6ef', (1.5204769, 2.5086155),
     ('it must indeed be a loud that the structurer he senses is expanded and often has some what'
     ' of the inversion of latin and that he delighted to express the new year fault in a '
     'philosophical language being in this the reverse of sock verties who it was said reduced '
     'philosophy is the simplicity to common life')),
    ('7601-175351-0021', 'f733ff7874adaf5e83b5243e7aebc6ef', (10.218769, 16.948397),
     'there is more than one amongst us who would like to an imitate they might think'),
    ('1255-74899-0020', 'bd46bdedc1a395765f7163152ae1d6e9', (4.2875843, 0.24995197),
     'i shouuld had seen you damp my word'),
    ('1255-74899-0020', '1d94612b35ca8f3b1567e170808afb9d', (1.8590927, -0.6760239),
     'as soon as you donned my worst stocking sweetheart'),
    ('7601-175351-0021', '1ea4a74105f43c96ab394e7f6495ef27', (10.219354, 16.948345),
     "there's more than one amongst us who would like to imitate them i think"),
    ('1255-74899-0020', 'fca852cd8dec559a31e57d7957a4de13', (1.88419, -0.58892304),
     'as soon as he dawned my worst is talking to sweetheart'),
    ('7601-175351-0021', '194fd65c5c1246bed88b141320db8bcd', (10.218983, 16.948296),
     "there's more than one amongst us who would like to imitate my think"),
    ('7601-175351-0021', '1f30d866dc87d8aba36da6c94d578097', (10.226313, 16.944336),
     'there is more than one amongst us who would like to immitate them i think'),
    ('7601-175351-0021', '5701a8373b728dd333c0796df9f2a8f4', (10.2202015, 16.948513),
     "there's more than one amongst us who would like to wanna imitate them i think"),
    ('7601-175351-0021', 'fca852cd8dec559a31e57d7957a4de13', (10.219054, 16.948479),
     "there's more than one amongst us who would like to imitate them i think"),
    ('7601-175351-0021', 'f84d186e73c19bba35b59c631e56d860', (10.233541, 16.935406),
     'they is more than one amongs us who would like to immitate them i think'),
    ('7601-175351-0021', '86cdbbd441956f774c1f09ca4e47dfeb', (10.219196, 16.948393),
     'there is more than one amongst us who would like to imitate them i think'),
    ('1255-74899-0020', 'c854a0b6d71ec3503e0ce4ea2179d8c7', (1.8683596, -0.60298634),
     'as soon as you dawned my worst in stalking the sweetheart'),
    ('1255-74899-0020', 'f84d186e73c19bba35b59c631e56d860', (1.8571255, -0.6310346),
     'as soon as you dawned my worst in stocking sweetheart'),
    ('7601-175351-0021', '2a2b550bdf723c06898ce62185f485a7', (10.227572, 16.945225),
     'there is more than one amongst us who would like to imitate him i think'),
    ('7601-175351-0021', '555686599071ea2f3012cd64a381cf60', (10.223191, 16.945898),
     "there's more than one amongst us who would like to immitate them i think"),
    ('1255-74899-0020', 'd91be229ea4909b060e99609ea5b4f66', (1.9095235, -0.62991136),
     'i should have seen you turned my worsted stocking sweetheart'),
    ('1255-74899-0020', '4410d66e6c13650a0478455ad015f118', (1.906517, -0.6025044),
     'i should have seen tart my worsest tlking sweetheart'),
    ('7601-175351-0021', 'd91be229ea4909b060e99609ea5b4f66', (10.212206, 16.952347),
     'there is more than one amongst us who would like to imitate them i think'),
    ('7601-175351-0021', '74b8938eb4736c40da2852ce2c5e5008', (10.219014, 16.94834),
     'there is more than one amongst us who would like to an imitate they might think'),
    ('1255-74899-0020', 'c5cf3042be0413d5a2a8360ba344e258', (6.163941, -0.6219455),
     'i should have dulled by what is locking some dark'),
    ('8254-84205-0005', '2047f49d9762c9db85f2240b06dd2d12', (4.953112, -0.41251197),
     ("it's all nonsense nerd crowd chris for them to think that they're staying on account of us"
     ' who low griggs were you listening')),
    ('7601-175351-0021', '0af574140e706efce6b224417b1d8aac', (10.201713, 16.964706),
     'there is more than one amongst us who would like to do an imitate i think'),
    ('1255-74899-0020', '0af574140e706efce6b224417b1d8aac', (1.8677676, -0.6548876),
     'as soon as he donned my worsted stockings sweetheart'),
    ('8254-84205-0005', 'fca852cd8dec559a31e57d7957a4de13', (4.95962, -0.4224869),
     ("it's all nonsense ned cried chris for them to think that they're staying on account of us "
     'hello griggs were you listening')),
    ('8254-84205-0005', '0af574140e706efce6b224417b1d8aac', (4.946168, -0.4152995),
     ('its all nonsense ned cried chris for them to think that theyre staying on account of us '
     'hello griggs were you listening')),
    ('8254-84205-0005', '525be6f4af2fb2c4781575b7c9fbaee0', (4.9694304, -0.42101935),
     ("it's all nonsense ned cried chris for them to think that they're staying on account of us "
     'hello greg were you listening ')),
    ('8254-84205-0005', 'd91be229ea4909b060e99609ea5b4f66', (4.968234, -0.42592508),
     ('its all nonsense ned cried chris for them to think that they are staying on account of us '
     'hello grigs  are you listening')),
    ('8254-84205-0005', '043bf8732e747ca7c0a7edd6ae13182f', (4.967573, -0.43132243),
     ("it's all nonsense ned cried chris for them to think that they're staying on account of us "
     'hello kriegs were you listening')),
    ('8254-84205-0005', '8656955f53e6d3cb9e56171be33ef2bc', (4.964371, -0.42836314),
     ("its all nonsense ned cried chris for them to think that they're staying on account of us "
     'hello chris are you listening')),
    ('7601-101619-0003', '043bf8732e747ca7c0a7edd6ae13182f', (0.791476, 2.0119832),
     ('nature discovers this confusion to us painters hold that the same motions and grimaces of '
     'the face that serve for weeping serve for laughter too and indeed before the one or the '
     "other be finished do but observe the painter's manner of handling and you will be in doubt"
     ' to which of the two the design tends and the extreme of laughter does at last bring tears')),
    ('7601-101619-0003', '0af574140e706efce6b224417b1d8aac', (0.81492954, 1.9998435),
     ('nature discovers this confusion to us painters hold that the same motions and grimaces of '
     'the face that serve for weeping serve for laughter to and indeed before the one or the '
     'other be finished do but observe the painters manner of handling and you will be in doubt '
     'to which of the two the design tends and the extreme of laughter does it last bring tears')),
    ('7601-101619-0003', 'e973444b19802698a8c7c602be1add89', (0.78092235, 2.0215895),
     ('nature discovers is confusion to us painters hold it the same motions and grimaces of the '
     'face that serve for whipping serve for laughter too and indeed before the one or the other'
     ' be finished do but observe the painters manner of handling and you will be in doubt to  '
     "of the two of designed tens and the extreme of laughter doesn't last bring tears")),
    ('7601-101619-0003', 'c9825afd938fdc509c48f0135af78e4a', (0.7876146, 2.0195444),
     ('nature discovers are confusing to us pain is holding the same emotions and grimaces of the'
     ' face that serve for weeping serve for laughter too and indeed before the one and the '
     "other be finished do but observe the painter's manner of handling and you will be in doubt"
     ' to which of the two the design tems and the extreme laghter does it last to bring tears')),
    ('7601-101619-0003', '07bda6ebab4a387f8ced48c40c5878a6', (0.79881185, 1.9938986),
     'emotions and promises of the case that serve for weeping serve for laughter'),
    ('7601-101619-0003', '27dfec580d349e20166b56be480336ea', (0.79025686, 2.0123045),
     ('natures discovers as confusion to us painters hold that the same motions and grimaces of '
     'the face that serve for weeping serve for laughter to and indeed before the one or the '
     'other be finished do but observe the painters manner of handling and you will be in doubt '
     'to which of the two the design tends and the extreme of laughter does it last bring tears')),
    ('7601-101619-0003', 'caf701c07a3374bdc98ae6bf230d4d56', (0.77356094, 2.0207922),
     ('nature discovers his confusion to us painters hold the same emotions and grimaces of the '
     'face that serve for gripping serve for laughter too and indeed before the one or the other'
     " be finished do but observe the painter's manner of handling and you will be in doubt to "
     "which of the two the design tends and the extreme of laughter doesn't last to bring tears")),
]
TRUE_EMBEDDINGS = {
    '1255-74899-0020': (0.8619265, 0.3983395),
    '7601-175351-0021': (10.686009, 17.633106),
}

# crowd-kit's expected RASA and HRRASA result (tests/aggregation/data_hrrasa.py): task -> (output, embedding)
RASA_RESULT = {
    '1255-74899-0020': ((4.2875843, 0.24995197),
        'i shouuld had seen you damp my word'),
    '1651-136854-0030': ((1.5327121, 2.5106835),
        ('it must indeed be allowed that is structure and sentences is expanded and often has '
        'somewhat of the inversion of latin and that he delighted to express familiar thought in a '
        'philosophical language meaning this the works of socrates who it was said reduced '
        'philosophy to the simplicity of life ')),
    '7601-101619-0003': ((0.7876146, 2.0195444),
        ('nature discovers are confusing to us pain is holding the same emotions and grimaces of the'
        ' face that serve for weeping serve for laughter too and indeed before the one and the '
        "other be finished do but observe the painter's manner of handling and you will be in doubt"
        ' to which of the two the design tems and the extreme laghter does it last to bring tears')),
    '7601-175351-0021': ((10.233541, 16.935406),
        'they is more than one amongs us who would like to immitate them i think'),
    '8254-84205-0005': ((4.964371, -0.42836314),
        ("its all nonsense ned cried chris for them to think that they're staying on account of us "
        'hello chris are you listening')),
}
ROVER_RESULT = {
    '1255-74899-0020':
        'as soon as you donned my worst is stocking sweetheart',
    '1651-136854-0030':
        'it must indeed be allowed that the structure of his sentences is expanded and often has '
        'somewhat of the inversion of latin and that he delighted to express familiar thoughts in a'
        ' philosophical language being in this the reverse of socrates who it was said reduced '
        'philosophy to the simplicity of common life',
    '7601-101619-0003':
        'nature discovers this confusion to us painters hold that the same motions and grimaces of '
        'the face that serve for weeping serve for laughter too and indeed before the one or the '
        "other be finished do but observe the painter's manner of handling and you will be in doubt"
        ' to which of the two the design tends and the extreme of laughter does it last bring tears',
    '7601-175351-0021':
        'there is more than one amongst us who would like to imitate them i think',
    '8254-84205-0005':
        "it's all nonsense ned cried chris for them to think that they're staying on account of us "
        'hello griggs were you listening',
}


@pytest.fixture
def simple_text_df() -> pd.DataFrame:
    return pd.DataFrame([(t, w, o, np.array(e)) for t, w, e, o in SIMPLE_TEXT],
                        columns=["task", "worker", "output", "embedding"])


@pytest.fixture
def true_embeddings() -> pd.Series:
    return pd.Series({t: np.array(e) for t, e in TRUE_EMBEDDINGS.items()}).rename_axis("task")


def expected_rasa() -> pd.DataFrame:
    return pd.DataFrame([(t, o, np.array(e)) for t, (e, o) in RASA_RESULT.items()],
                        columns=["task", "output", "embedding"]).set_index("task")


# --- ROVER -------------------------------------------------------------------------------

def test_rover_toy():
    data = pd.DataFrame([["w1", "t1", "a b c d"], ["w2", "t1", "b z d e"], ["w3", "t1", "b c d e f"]],
                        columns=["worker", "task", "text"])
    expected = pd.Series(["b c d e"], index=pd.Index(["t1"], name="task"), name="agg_text")
    assert_series_equal(ROVER(tokenizer=split, detokenizer=join).fit_predict(data), expected)


def test_rover_single_overlap():
    data = pd.DataFrame([["w1", "t1", "a b c d"]], columns=["worker", "task", "text"])
    expected = pd.Series(["a b c d"], index=pd.Index(["t1"], name="task"), name="agg_text")
    assert_series_equal(ROVER(split, join).fit_predict(data), expected)


def test_rover_simple_text(simple_text_df):
    rover = ROVER(tokenizer=split, detokenizer=join)
    predicted = rover.fit_predict(simple_text_df.rename(columns={"output": "text"}))
    expected = pd.Series(ROVER_RESULT, name="agg_text").rename_axis("task")
    assert_series_equal(predicted, expected)
    assert rover.texts_ is predicted


def test_rover_vote_ties_take_the_longer_then_the_larger_word():
    data = pd.DataFrame({"task": ["t"] * 2, "worker": ["a", "b"], "text": ["x cat", "yy ca"]})
    # two answers, one vote each per slot: the longer word wins, then the larger string
    assert ROVER(split, join).fit_predict(data)["t"] == "yy cat"
    data = pd.DataFrame({"task": ["t"] * 2, "worker": ["a", "b"], "text": ["ab", "ba"]})
    assert ROVER(split, join).fit_predict(data)["t"] == "ba"


def test_rover_answers_without_words():
    # str.split gives "" no words: an empty answer votes for the empty word in every slot
    data = pd.DataFrame({"task": ["a", "a", "b", "c", "c", "c"], "worker": [1, 2, 3, 1, 2, 3],
                         "text": ["x y", "", "z", "p q", "", "q"]})
    out = ROVER(str.split, " ".join).fit_predict(data)
    # a: x and y one vote each against one empty vote: the word wins the tie (longer);
    # c: "p" has one vote against two empty ones, "q" two against one. Every second answer is
    # empty: a step where no hypothesis has a word
    assert out.to_dict() == {"a": "x y", "b": "z", "c": "q"}


def test_rover_missing_text_column_is_a_key_error():
    with pytest.raises(KeyError, match="text"):
        ROVER(split, join).fit(pd.DataFrame({"task": ["t"], "worker": ["w"], "output": ["a"]}))
    assert issubclass(MissingColumnError, KeyError)


def test_rover_empty_frame():
    out = ROVER(split, join).fit_predict(pd.DataFrame({"task": [], "worker": [], "text": []}))
    assert len(out) == 0 and out.name == "agg_text"


# --- RASA / HRRASA -----------------------------------------------------------------------

@pytest.mark.parametrize("n_iter, tol", [(100, 0), (100500, 1e-9)])
def test_rasa(n_iter, tol, simple_text_df, true_embeddings):
    output = RASA(n_iter=n_iter, tol=tol).fit_predict(simple_text_df, true_embeddings)
    assert_frame_equal(output, expected_rasa())


@pytest.mark.parametrize("n_iter, tol", [(100, 0), (100500, 1e-9)])
def test_hrrasa(n_iter, tol, simple_text_df, true_embeddings):
    output = HRRASA(n_iter=n_iter, tol=tol).fit_predict(simple_text_df, true_embeddings)
    assert_frame_equal(output, expected_rasa())


def test_hrrasa_single_overlap(simple_text_df):
    hrrasa = HRRASA()
    output = hrrasa.fit_predict(simple_text_df[:1])
    assert len(output) == 1
    assert output["output"].iloc[0] == simple_text_df["output"].iloc[0]
    # a task with one answer is not fitted: its worker's skill and its weight are NaN
    assert np.isnan(hrrasa.skills_.iloc[0]) and np.isnan(hrrasa.weights_["weight"].iloc[0])


@pytest.mark.parametrize("agg_class", [RASA, HRRASA])
def test_zero_iter(agg_class, simple_text_df, true_embeddings):
    answers = agg_class(n_iter=0).fit_predict(simple_text_df, true_embeddings)
    assert len(answers.index.difference(expected_rasa().index)) == 0


@pytest.mark.parametrize("agg_class", [RASA, HRRASA])
def test_true_embeddings_must_be_one_per_task(agg_class, simple_text_df, true_embeddings):
    twice = pd.concat([true_embeddings, true_embeddings])
    with pytest.raises(ValueError, match="multiple true embeddings"):
        agg_class().fit(simple_text_df, twice)


def test_rasa_skills_rank_the_annotator_far_from_the_others_last():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(30, 4))
    rows = []
    for t in range(30):
        for w, noise in (("good1", 0.05), ("good2", 0.05), ("good3", 0.1), ("bad", 2.0)):
            rows.append((f"t{t}", w, f"{t}-{w}", centers[t] + rng.normal(scale=noise, size=4)))
    data = pd.DataFrame(rows, columns=["task", "worker", "output", "embedding"])
    rasa = RASA().fit(data)
    assert rasa.skills_.idxmin() == "bad"
    assert rasa.skills_["good1"] > 10 * rasa.skills_["bad"]
    assert rasa.loss_history_ and rasa.loss_history_[-1] < rasa.tol
    out = rasa.fit_predict(data)
    assert list(out.index) == sorted(data["task"].unique())
    assert not out["output"].str.endswith("-bad").any()
    scores = rasa.fit_predict_scores(data)
    assert list(scores.columns) == ["output", "score", "embedding"] and len(scores) == len(data)


def test_hrrasa_ranks_and_weights(simple_text_df):
    hrrasa = HRRASA(calculate_ranks=True).fit(simple_text_df)
    assert list(hrrasa.ranks_.columns) == ["task", "output", "rank"]
    assert len(hrrasa.ranks_) == len(simple_text_df)
    assert np.isfinite(hrrasa.ranks_["rank"]).all()
    assert hrrasa.weights_.index.names == ["task", "worker"]
    assert (hrrasa.weights_["weight"] > 0).all()


def test_gleu_similarity():
    assert gleu_similarity("a b c", "a b c") == 1.0
    assert gleu_similarity("a b", "c d") == 0.0
    # "a b c d" vs "a b x d": 1-grams a b d, 2-gram "a b" match (4 of 10 n-grams each side)
    assert gleu_similarity("a b c d", "a b x d") == pytest.approx(4 / 10)
    assert gleu_similarity("", "") == 0.0


def test_hrrasa_takes_a_similarity_callable(simple_text_df):
    calls = []

    def same(a, b):
        calls.append((a, b))
        return float(a == b)

    HRRASA(output_similarity=same).fit(simple_text_df)
    assert calls and all(isinstance(a, str) for a, _ in calls)


@pytest.mark.parametrize("cls", [TextRASA, TextHRRASA])
def test_text_wrappers(cls, simple_text_df):
    texts = simple_text_df.drop(columns="embedding").rename(columns={"output": "text"})
    encoded = simple_text_df.assign(embedding=simple_text_df["output"].map(encode))
    inner_cls = RASA if cls is TextRASA else HRRASA
    model = cls(encoder=encode)
    out = model.fit_predict(texts)
    assert out.name == "agg_text" and out.index.name == "task"
    assert out.to_dict() == inner_cls(tol=1e-5).fit_predict(encoded)["output"].to_dict()
    assert model.texts_ is out
    assert len(model.skills_) == simple_text_df["worker"].nunique()
    assert isinstance(model.loss_history_, list)
    # true texts are encoded and used as those tasks' aggregates, as true embeddings are
    task, text = "7601-175351-0021", texts["text"].iloc[2]
    with_truth = model.fit_predict(texts, pd.Series({task: text}))
    inner = inner_cls(tol=1e-5).fit_predict(encoded, pd.Series({task: encode(text)}))
    assert with_truth.to_dict() == inner["output"].to_dict()
    assert with_truth[task] == text


# --- cross-check against crowd-kit ------------------------------------------------------------

CROSSCHECK = """
import json, sys, zlib
import numpy as np
import pandas as pd
from crowdkit.aggregation import HRRASA, RASA, ROVER, ClosestToAverage
random = pd.read_csv(sys.argv[1], dtype=str, keep_default_na=False)
real = pd.read_csv(sys.argv[2], dtype=str, keep_default_na=False)
rover = lambda: ROVER(tokenizer=lambda s: s.split(" "), detokenizer=lambda w: " ".join(w))
def encode(text):
    v = np.zeros(16)
    for w in text.lower().split():
        v[zlib.crc32(w.encode()) % 16] += 1.0
    return v
emb = real.rename(columns={"text": "output"})
emb["embedding"] = emb["output"].map(encode)
out = {
    "rover_random": rover().fit_predict(random).to_dict(),
    "rover_random_no_words": ROVER(tokenizer=str.split, detokenizer=" ".join).fit_predict(random).to_dict(),
    "rover_real": rover().fit_predict(real).to_dict(),
    "rasa_real": RASA().fit_predict(emb)["output"].to_dict(),
    "cta_real": ClosestToAverage(distance=lambda a, b: float(np.abs(a - b).sum())).fit(emb).scores_["score"].tolist(),
    "cta_real_outputs": ClosestToAverage(distance=lambda a, b: float(np.abs(a - b).sum())).fit_predict(emb)[
        "output"].to_dict(),
    "hrrasa_real": HRRASA(lambda_emb=1.0, lambda_out=0.0).fit_predict(
        emb.drop_duplicates(["task", "worker"]))["output"].to_dict(),
    "hrrasa_default_real": HRRASA().fit_predict(emb.drop_duplicates(["task", "worker"]))["output"].to_dict(),
}
print(json.dumps(out))
"""


def encode(text):
    v = np.zeros(16)
    for w in text.lower().split():
        v[zlib.crc32(w.encode()) % 16] += 1.0
    return v


def random_texts(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    vocabulary = list("abcde") + ["aa", "bb", "ccc"]
    rows = []
    for t in range(300):
        for w in range(int(rng.integers(1, 7))):
            rows.append((f"t{t:03d}", f"w{w}", " ".join(rng.choice(vocabulary, int(rng.integers(0, 8))))))
    return pd.DataFrame(rows, columns=["task", "worker", "text"]).sample(frac=1, random_state=1)


@pytest.fixture(scope="module")
def crowdkit_texts(tmp_path_factory, crowdkit_python):
    answers = DATASETS / "crowdwsa2019_t1" / "answers.csv"
    if not answers.exists():
        pytest.skip(f"datasets not found at {DATASETS} (set GOLDLABEL_DATASETS)")
    folder = tmp_path_factory.mktemp("crowdkit_texts")
    random = random_texts(1)
    random.to_csv(folder / "random.csv", index=False)
    real = pd.read_csv(answers, dtype=str, keep_default_na=False).rename(
        columns={"item": "task", "label": "text"})
    real.to_csv(folder / "real.csv", index=False)
    run = subprocess.run([str(crowdkit_python), "-c", CROSSCHECK, str(folder / "random.csv"), str(folder / "real.csv")],
                         capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    return random, real, json.loads(run.stdout)


def test_rover_equals_crowdkit_on_random_texts(crowdkit_texts):
    # small vocabulary, 1 to 6 answers of 0 to 7 words: many ties and empty answers
    random, _, theirs = crowdkit_texts
    ours = ROVER(split, join).fit_predict(random)
    assert list(ours.index) == list(theirs["rover_random"])
    assert ours.to_dict() == theirs["rover_random"]
    # str.split gives an empty answer no words at all (split(" ") gives it one empty word)
    assert ROVER(str.split, " ".join).fit_predict(random).to_dict() == theirs["rover_random_no_words"]


def test_rover_equals_crowdkit_on_crowdwsa(crowdkit_texts):
    _, real, theirs = crowdkit_texts
    ours = ROVER(split, join).fit_predict(real)
    assert ours.to_dict() == theirs["rover_real"]
    truth = pd.read_csv(DATASETS / "crowdwsa2019_t1" / "truth.csv", dtype=str).set_index("item")["label"]
    wer = compute_wer(list(ours[truth.index]), list(truth))
    # a random answer's expected word error rate: every answer against its task's truth
    random_wer = compute_wer(list(real["text"]), list(truth[real["task"]]))
    assert wer < random_wer - 0.05, (wer, random_wer)


def test_rasa_and_hrrasa_equal_crowdkit_on_crowdwsa(crowdkit_texts):
    _, real, theirs = crowdkit_texts
    emb = real.rename(columns={"text": "output"})
    emb["embedding"] = emb["output"].map(encode)
    assert RASA().fit_predict(emb)["output"].to_dict() == theirs["rasa_real"]
    # crowd-kit's default output similarity compares one answer's words with the other's
    # characters (it passes a string where nltk expects words); with the embeddings alone the
    # two HRRASA fits are the same model. A worker's repeated answers to one task are left out:
    # crowd-kit joins its weights on (task, worker), so it counts such answers twice over
    once = emb.drop_duplicates(["task", "worker"])
    hrrasa = HRRASA(lambda_emb=1.0, lambda_out=0.0).fit_predict(once)
    assert hrrasa["output"].to_dict() == theirs["hrrasa_real"]
    # and with crowd-kit's comparison as the similarity, its default HRRASA
    hrrasa = HRRASA(output_similarity=crowdkit_gleu).fit_predict(once)
    assert hrrasa["output"].to_dict() == theirs["hrrasa_default_real"]


def test_closest_to_average_equals_crowdkit_on_crowdwsa(crowdkit_texts):
    _, real, theirs = crowdkit_texts
    emb = real.rename(columns={"text": "output"})
    emb["embedding"] = emb["output"].map(encode)
    cta = ClosestToAverage(distance=lambda a, b: float(np.abs(a - b).sum()))
    assert cta.fit_predict(emb)["output"].to_dict() == theirs["cta_real_outputs"]
    np.testing.assert_allclose(cta.scores_["score"], theirs["cta_real"], rtol=1e-12)


def test_closest_to_average(simple_text_df, true_embeddings):
    cta = ClosestToAverage(distance=lambda a, b: float(np.linalg.norm(a - b)))
    out = cta.fit_predict(simple_text_df)
    assert list(out.columns) == ["output", "embedding"] and list(out.index) == sorted(set(simple_text_df["task"]))
    # with a task's true embedding as its average, the closest answer is the closest to the truth
    task = "7601-175351-0021"
    with_truth = cta.fit(simple_text_df, true_embeddings=true_embeddings).embeddings_and_outputs_
    answers = simple_text_df[simple_text_df["task"] == task]
    nearest = answers.iloc[int(np.argmin([np.linalg.norm(e - true_embeddings[task]) for e in answers["embedding"]]))]
    assert with_truth.loc[task, "output"] == nearest["output"]
    # a given aggregate replaces the average
    given = pd.Series({task: answers["embedding"].iloc[-1]})
    scores = cta.fit_predict_scores(simple_text_df, given)
    assert scores.loc[task, "score"].min() == 0.0


def crowdkit_gleu(a: str, b: str) -> float:
    """crowd-kit's default HRRASA similarity: nltk's sentence_gleu([a.split()], b) with b a
    string, so b's characters are the hypothesis tokens and a's words the reference's."""
    def grams(tokens):
        return Counter(tuple(tokens[k:k + n]) for n in range(1, 5) for k in range(len(tokens) - n + 1))

    hyp, ref = grams(list(b)), grams(a.split())
    n_all = max(sum(hyp.values()), sum(ref.values()))
    return sum((hyp & ref).values()) / n_all if n_all else 0.0
