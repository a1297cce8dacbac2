"""Embedding aggregation: crowd-kit's RASA and HRRASA, and their text forms TextRASA and TextHRRASA.

Each answer is an output (a text, any object) with an embedding (a vector). RASA weights every
annotator by a global reliability (a chi-squared quantile over the squared distances of their
embeddings to the task aggregates), HRRASA also by a local one per answer (how close the answer
is to the task's other answers, in embedding and in words). The result per task is the answer
whose embedding is closest (cosine) to the weighted average.

Frames as crowd-kit's: columns ``task``, ``worker``, ``output``, ``embedding`` (one vector per
row); ``fit_predict`` returns ``embeddings_and_outputs_``, a DataFrame indexed by task (sorted,
as crowd-kit's groupby) with columns ``output`` and ``embedding``. Every task is fitted at once:
the embeddings are one (answers, dims) matrix and the per-task and per-annotator sums are sparse
indicator products, so there is no Python loop per task or per answer; HRRASA's local
reliabilities are computed over all same-task answer pairs at once.

Jiyi Li, Fumiyo Fukumoto (2019). A dataset of crowdsourced word sequences: collections and answer
aggregation for ground truth creation. AnnoNLP, 24-28. Jiyi Li (2020). Crowdsourced text sequence
aggregation based on hybrid reliability and representation. SIGIR, 1761-1764.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Self

import numpy as np
from scipy import sparse
from scipy.stats import chi2

from .answers import _pick_column
from .text import _pairs_within

__all__ = ["HRRASA", "RASA", "ClosestToAverage", "TextHRRASA", "TextRASA", "gleu_similarity"]

#: crowd-kit's floor on an annotator's summed distance (skills = prior / distance)
_EPS = 1e-5


def _ngram_counts(texts: Sequence[str], max_n: int = 4) -> sparse.csr_matrix:
    """(texts, n-grams) counts of the word 1..max_n-grams of each text (words split on
    whitespace). Turning strings into features has no vectorized form: one Python pass per
    distinct text."""
    vocabulary: dict[tuple[str, ...], int] = {}
    indptr = [0]
    indices: list[int] = []
    for text in texts:
        words = str(text).split()
        for n in range(1, max_n + 1):
            indices.extend(vocabulary.setdefault(tuple(words[k:k + n]), len(vocabulary))
                           for k in range(len(words) - n + 1))
        indptr.append(len(indices))
    x = sparse.csr_matrix((np.ones(len(indices)), np.asarray(indices, dtype=np.int64),
                           np.asarray(indptr, dtype=np.int64)),
                          shape=(len(texts), max(len(vocabulary), 1)))
    x.sum_duplicates()
    return x


def _gleu_pairs(texts: Sequence[str], left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Sentence GLEU (Wu et al. 2016, nltk's ``sentence_gleu``: matching 1..4-grams over the
    larger of the two n-gram totals) of texts[left[k]] and texts[right[k]], all pairs at once."""
    if len(left) == 0:
        return np.zeros(0)
    x = _ngram_counts(texts)
    matched = np.asarray(x[left].minimum(x[right]).sum(axis=1)).ravel()
    totals = np.asarray(x.sum(axis=1)).ravel()
    n_all = np.maximum(totals[left], totals[right])
    return np.asarray(np.divide(matched, n_all, out=np.zeros(len(left)), where=n_all > 0))


def gleu_similarity(hypothesis: str, reference: str) -> float:
    """GLEU of two texts' words (1..4-grams), HRRASA's default output similarity."""
    return float(_gleu_pairs([hypothesis, reference], np.array([0]), np.array([1]))[0])


class _Frame:
    """The answers of an embeddings frame as arrays: task codes (sorted tasks, as crowd-kit's
    groupby), worker codes (first appearance), the (answers, dims) embedding matrix, and the
    sparse task and worker indicator matrices for per-task and per-worker sums."""

    def __init__(self, data: Any, need_output: bool) -> None:
        import pandas as pd

        if not hasattr(data, "columns"):
            raise TypeError("expected a pandas DataFrame with columns task, worker, output, embedding")
        columns = [str(c) for c in data.columns]
        task_col = _pick_column(columns, ("task", "item"))
        worker_col = _pick_column(columns, ("worker", "annotator"))
        emb_col = _pick_column(columns, ("embedding",))
        self.output_col = _pick_column(columns, ("output",)) if need_output else None
        self.data = data
        self.task_col = task_col
        self.task, tasks = pd.factorize(data[task_col], sort=True)
        self.worker, workers = pd.factorize(data[worker_col], sort=False)
        self.tasks = pd.Index(tasks, name="task")
        self.workers = pd.Index(workers)
        self.emb_col = emb_col
        n = len(data)
        # one vector per answer, stacked into the (answers, dims) matrix the fit works on
        self.emb = (np.stack(data[emb_col].to_numpy()).astype(np.float64).reshape(n, -1)
                    if n else np.zeros((0, 0)))
        rows = np.arange(n)
        self.by_task = sparse.csr_matrix((np.ones(n), (self.task, rows)), shape=(len(tasks), n))
        self.task_counts = np.bincount(self.task, minlength=len(tasks))
        self.worker_counts = np.bincount(self.worker, minlength=len(workers))

    def truth(self, true_embeddings: Any) -> tuple[np.ndarray, np.ndarray]:
        """Rows (task codes) and vectors of the true embeddings of tasks in the data."""
        if true_embeddings is None:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.emb.shape[1]))
        import pandas as pd

        true_embeddings = pd.Series(true_embeddings)
        if not true_embeddings.index.is_unique:
            raise ValueError("Incorrect data in true_embeddings: multiple true embeddings for a single "
                             "task are not supported.")
        pos = self.tasks.get_indexer(true_embeddings.index)
        keep = pos >= 0
        if not keep.any():
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.emb.shape[1]))
        vectors = np.stack(true_embeddings.to_numpy()[keep]).astype(np.float64).reshape(int(keep.sum()), -1)
        return pos[keep], vectors

    def weighted_mean(self, weight: np.ndarray, truth: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """Per-task weighted average embedding, true embeddings where given."""
        with np.errstate(divide="ignore", invalid="ignore"):
            agg = (self.by_task @ (self.emb * weight[:, None])) / (self.by_task @ weight)[:, None]
        agg[truth[0]] = truth[1]
        return np.asarray(agg)

    def sq_distance(self, agg: np.ndarray) -> np.ndarray:
        diff = self.emb - agg[self.task]
        return np.asarray((diff * diff).sum(axis=1))

    def per_worker(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.worker, weights=values, minlength=len(self.workers))


def _relative_change(agg: np.ndarray, last: np.ndarray) -> float:
    delta = agg - last
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.nansum(delta * delta) / np.nansum(agg * agg))


def _closest(frame: _Frame, agg: np.ndarray,
             distance: Callable[[np.ndarray, np.ndarray], float] | None = None) -> tuple[Any, Any]:
    """crowd-kit's ClosestToAverage: each answer's distance to its task's aggregate and, per
    task, the first answer with the lowest. ``distance=None`` is the cosine distance of all
    answers at once (an all-zero vector is infinitely far, as crowd-kit's RASA has it); a
    callable is the caller's function, called once per answer as crowd-kit does."""
    import pandas as pd

    data = frame.data
    emb = frame.emb
    target = agg[frame.task] if len(frame.task) else np.zeros_like(emb)
    if distance is None:
        norm_e = np.sqrt((emb * emb).sum(axis=1))
        norm_a = np.sqrt((target * target).sum(axis=1))
        with np.errstate(divide="ignore", invalid="ignore"):
            score = 1.0 - (emb * target).sum(axis=1) / (norm_e * norm_a)
        score[(norm_e == 0) | (norm_a == 0)] = np.inf
    else:
        score = np.array([distance(e, a) for e, a in zip(emb, target, strict=True)], dtype=np.float64)
    task_index = pd.Index(frame.tasks[frame.task], name="task")
    outputs = data[frame.output_col].to_numpy()
    embeddings = data[frame.emb_col].to_numpy()
    # lists, so pandas infers the outputs' dtype (str for texts) as it does for crowd-kit's frames
    scores = pd.DataFrame({"output": list(outputs), "score": score, "embedding": list(embeddings)},
                          index=task_index)
    rows = np.arange(len(score))
    order = np.lexsort((rows, score, frame.task))
    first = np.r_[True, frame.task[order][1:] != frame.task[order][:-1]] if len(order) else np.zeros(0, bool)
    best = order[first]
    result = pd.DataFrame({"output": list(outputs[best]), "embedding": list(embeddings[best])},
                          index=pd.Index(frame.tasks[frame.task[best]], name="task"))
    return scores, result


class ClosestToAverage:
    """The answer whose embedding is closest to its task's average embedding (crowd-kit's
    ClosestToAverage): ``distance(embedding, average) -> float`` is the caller's function.

    ``fit(data, aggregated_embeddings=None, true_embeddings=None)`` on a ``task``, ``worker``,
    ``output``, ``embedding`` frame: the average is the plain mean of the task's embeddings (the
    true embedding where given) unless ``aggregated_embeddings`` (a Series by task) gives it.
    ``embeddings_and_outputs_`` and ``scores_`` as RASA's.
    """

    def __init__(self, distance: Callable[[np.ndarray, np.ndarray], float]) -> None:
        self.distance = distance

    def fit(self, data: Any, aggregated_embeddings: Any = None, true_embeddings: Any = None) -> Self:
        frame = _Frame(data, need_output=True)
        truth = frame.truth(true_embeddings)  # a non-unique index raises, as crowd-kit's
        if aggregated_embeddings is None:
            agg = frame.weighted_mean(np.ones(len(frame.task)), truth)
        else:
            agg = np.full((len(frame.tasks), frame.emb.shape[1]), np.nan)
            rows, vectors = frame.truth(aggregated_embeddings)
            agg[rows] = vectors
        self.scores_, self.embeddings_and_outputs_ = _closest(frame, agg, self.distance)
        return self

    def fit_predict_scores(self, data: Any, aggregated_embeddings: Any = None) -> Any:
        return self.fit(data, aggregated_embeddings).scores_

    def fit_predict(self, data: Any, aggregated_embeddings: Any = None) -> Any:
        return self.fit(data, aggregated_embeddings).embeddings_and_outputs_


class RASA:
    """Reliability Aware Sequence Aggregation on embeddings.

    Iterates: per task, the average embedding weighted by each annotator's reliability (the true
    embedding where given); per annotator, reliability = chi2.isf(alpha / 2, answers) / the summed
    squared distance of their embeddings to the aggregates; until the relative squared change of
    the aggregates is below ``tol`` or ``n_iter`` rounds. The answer is the output whose embedding
    is closest (cosine) to the aggregate. ``n_iter=0`` uses the plain average.

    Attributes after ``fit``: ``skills_``, ``prior_skills_`` (Series by worker),
    ``aggregated_embeddings_`` (Series by task), ``loss_history_``; after ``fit_predict`` also
    ``embeddings_and_outputs_`` and ``scores_``.
    """

    def __init__(self, n_iter: int = 100, tol: float = 1e-9, alpha: float = 0.05) -> None:
        self.n_iter = n_iter
        self.tol = tol
        self.alpha = alpha

    def _run(self, frame: _Frame, truth: tuple[np.ndarray, np.ndarray], local: np.ndarray) -> np.ndarray:
        """Alternate aggregates and global skills; ``local`` weighs each answer (HRRASA's
        local reliability, ones for RASA). Sets skills_, prior_skills_, loss_history_."""
        import pandas as pd

        prior = chi2.isf(self.alpha / 2, frame.worker_counts)
        skills = np.ones(len(frame.workers))
        agg = frame.weighted_mean(skills[frame.worker] * local, truth)
        last: np.ndarray | None = None
        self.loss_history_: list[float] = []
        for _ in range(self.n_iter if len(frame.task) else 0):
            agg = frame.weighted_mean(skills[frame.worker] * local, truth)
            total = np.maximum(frame.per_worker(frame.sq_distance(agg) / local), _EPS)
            skills = prior / total
            if last is not None:
                loss = _relative_change(agg, last)
                self.loss_history_.append(loss)
                if loss < self.tol:
                    break
            last = agg
        self.prior_skills_ = pd.Series(prior, index=frame.workers, dtype=np.float64)
        self.skills_ = pd.Series(skills, index=frame.workers, dtype=np.float64)
        return agg

    def fit(self, data: Any, true_embeddings: Any = None) -> Self:
        import pandas as pd

        frame = _Frame(data, need_output=False)
        agg = self._run(frame, frame.truth(true_embeddings), np.ones(len(frame.task)))
        self.aggregated_embeddings_ = pd.Series(list(agg), index=frame.tasks, dtype=object)
        self._agg = agg
        return self

    def _apply(self, data: Any) -> Self:
        frame = _Frame(data, need_output=True)
        self.scores_, self.embeddings_and_outputs_ = _closest(frame, self._agg)
        return self

    def fit_predict_scores(self, data: Any, true_embeddings: Any = None) -> Any:
        return self.fit(data, true_embeddings)._apply(data).scores_

    def fit_predict(self, data: Any, true_embeddings: Any = None) -> Any:
        return self.fit(data, true_embeddings)._apply(data).embeddings_and_outputs_


class HRRASA(RASA):
    """Hybrid Reliability and Representation Aware Sequence Aggregation.

    RASA where each answer is also weighted by a local reliability: the mean over the task's
    other answers (other annotators) of ``lambda_emb * exp(-|e - e'|^2 / (|e|^2 |e'|^2)) +
    lambda_out * sim(output, output')``; ``sim`` is word GLEU (``output_similarity=None``) or a
    callable ``sim(a, b) -> float`` (called once per same-task pair). The global reliability
    divides each squared distance by the local one. Tasks with one answer are left out of the
    fit and answered by that answer (their skills and weights NaN, as crowd-kit's).
    ``calculate_ranks=True`` adds ``ranks_`` (task, output, rank = skill * exp(-|e - agg|^2 /
    (|e|^2 |agg|^2)) + local reliability).

    Attributes: as RASA's, plus ``weights_`` (DataFrame by task and worker, column ``weight``).
    """

    def __init__(self, n_iter: int = 100, tol: float = 1e-9, lambda_emb: float = 0.5,
                 lambda_out: float = 0.5, alpha: float = 0.05, calculate_ranks: bool = False,
                 output_similarity: Callable[[str, str], float] | None = None) -> None:
        super().__init__(n_iter=n_iter, tol=tol, alpha=alpha)
        self.lambda_emb = lambda_emb
        self.lambda_out = lambda_out
        self.calculate_ranks = calculate_ranks
        self.output_similarity = output_similarity

    def _local_skills(self, frame: _Frame) -> np.ndarray:
        left, right = _pairs_within(frame.task)
        other = frame.worker[left] != frame.worker[right]
        left, right = left[other], right[other]
        e_l, e_r = frame.emb[left], frame.emb[right]
        diff = ((e_l - e_r) ** 2).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            emb_sim = np.exp(-diff / ((e_l * e_l).sum(axis=1) * (e_r * e_r).sum(axis=1)))
        outputs = frame.data[frame.output_col].astype(str).to_numpy()
        if self.output_similarity is None:
            import pandas as pd

            codes, uniq = pd.factorize(outputs)  # each distinct text parsed once
            seq_sim = _gleu_pairs(list(uniq), codes[left], codes[right])
        else:  # a user's callable: one call per same-task pair, as crowd-kit makes them
            sim = self.output_similarity
            seq_sim = np.array([sim(a, b) for a, b in zip(outputs[left], outputs[right], strict=True)])
        n = len(frame.task)
        denom = np.maximum(frame.task_counts[frame.task] - 1, 1).astype(np.float64)
        emb_mean = np.bincount(left, weights=emb_sim, minlength=n) / denom
        seq_mean = np.bincount(left, weights=seq_sim, minlength=n) / denom
        return np.asarray(self.lambda_emb * emb_mean + self.lambda_out * seq_mean)

    def fit(self, data: Any, true_embeddings: Any = None) -> Self:
        import pandas as pd

        full = _Frame(data, need_output=True)
        full.truth(true_embeddings)  # a non-unique index raises before any work, as crowd-kit's
        multi = full.task_counts[full.task] > 1
        frame = _Frame(data[multi], need_output=True)
        local = self._local_skills(frame)
        if len(frame.task):
            # one local skill per (task, worker), the first answer's, as crowd-kit keeps
            pair = pd.factorize(pd.MultiIndex.from_arrays([frame.task, frame.worker]))[0]
            first = np.full(pair.max() + 1, -1)
            first[pair[::-1]] = np.arange(len(pair))[::-1]
            local = local[first[pair]]
        agg = self._run(frame, frame.truth(true_embeddings), local)
        weights = self.skills_.to_numpy()[frame.worker] * local
        self.weights_ = pd.DataFrame(
            {"weight": weights},
            index=pd.MultiIndex.from_arrays([frame.tasks[frame.task], frame.workers[frame.worker]],
                                            names=["task", "worker"]))
        # tasks with one answer: the answer is the aggregate; unknown workers get NaN skills
        single = ~multi
        agg_full = np.full((len(full.tasks), full.emb.shape[1] if full.emb.size else 0), np.nan)
        if len(frame.tasks):
            agg_full[full.tasks.get_indexer(frame.tasks)] = agg
        agg_full[full.task[single]] = full.emb[single]
        self._agg = agg_full
        self.aggregated_embeddings_ = pd.Series(list(agg_full), index=full.tasks, dtype=object)
        new_workers = full.workers.difference(frame.workers, sort=False)
        if len(new_workers):
            self.skills_ = pd.concat([self.skills_, pd.Series(np.nan, index=new_workers)])
            self.prior_skills_ = pd.concat([self.prior_skills_, pd.Series(np.nan, index=new_workers)])
            lone = pd.DataFrame({"weight": np.nan}, index=pd.MultiIndex.from_arrays(
                [full.tasks[full.task[single]], full.workers[full.worker[single]]], names=["task", "worker"]))
            self.weights_ = pd.concat([self.weights_, lone])
        if self.calculate_ranks:
            skill = self.skills_.reindex(full.workers).to_numpy()[full.worker]
            target = agg_full[full.task]
            distance = ((full.emb - target) ** 2).sum(axis=1)
            distance[distance == 0.0] = _EPS
            norms = (full.emb ** 2).sum(axis=1) * (target ** 2).sum(axis=1)
            local_full = np.full(len(full.task), np.nan)
            local_full[np.flatnonzero(multi)] = local
            self.ranks_ = pd.DataFrame({"task": full.tasks[full.task],
                                        "output": data[full.output_col].to_numpy(),
                                        "rank": skill * np.exp(-distance / norms) + local_full})
        return self


def _encode(encoder: Callable[[str], Any], texts: Any) -> list[np.ndarray]:
    """The encoder's vector of each text, each distinct text encoded once (the encoder is the
    caller's function: one call per distinct text)."""
    import pandas as pd

    codes, uniq = pd.factorize(pd.Series(texts).astype(str))
    vectors = np.empty(len(uniq), dtype=object)
    vectors[:] = [np.asarray(encoder(t), dtype=np.float64) for t in uniq]
    return list(vectors[codes])


class _TextWrapper:
    """TextRASA / TextHRRASA: encode the ``text`` column with ``encoder`` and run the
    embeddings method; ``texts_`` is a Series by task named ``agg_text``. Attributes not found
    here are the inner method's (``skills_``, ``loss_history_``, ...)."""

    _inner: RASA

    def __init__(self, encoder: Callable[[str], Any]) -> None:
        self.encoder = encoder

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._inner, name)

    def _encode_data(self, data: Any) -> Any:
        columns = [str(c) for c in getattr(data, "columns", [])]
        task = _pick_column(columns, ("task", "item"))
        worker = _pick_column(columns, ("worker", "annotator"))
        text = _pick_column(columns, ("text",))
        frame = data[[task, worker, text]].rename(columns={task: "task", worker: "worker", text: "output"})
        frame["embedding"] = _encode(self.encoder, frame["output"].to_numpy())
        return frame

    def _encode_truth(self, true_objects: Any) -> Any:
        if true_objects is None:
            return None
        import pandas as pd

        true_objects = pd.Series(true_objects)
        return pd.Series(_encode(self.encoder, true_objects.to_numpy()), index=true_objects.index, dtype=object)

    def fit(self, data: Any, true_objects: Any = None) -> Self:
        self._inner.fit(self._encode_data(data), self._encode_truth(true_objects))
        return self

    def fit_predict_scores(self, data: Any, true_objects: Any = None) -> Any:
        return self._inner.fit_predict_scores(self._encode_data(data), self._encode_truth(true_objects))

    def fit_predict(self, data: Any, true_objects: Any = None) -> Any:
        result = self._inner.fit_predict(self._encode_data(data), self._encode_truth(true_objects))
        self.texts_ = result["output"].rename("agg_text")
        return self.texts_


class TextRASA(_TextWrapper):
    """RASA on text embeddings: ``encoder(text) -> vector`` (e.g. a sentence encoder's
    ``encode``), then RASA; frame columns ``task``, ``worker``, ``text``."""

    def __init__(self, encoder: Callable[[str], Any], n_iter: int = 100, tol: float = 1e-5,
                 alpha: float = 0.05) -> None:
        super().__init__(encoder)
        self._inner = RASA(n_iter=n_iter, tol=tol, alpha=alpha)


class TextHRRASA(_TextWrapper):
    """HRRASA on text embeddings: ``encoder(text) -> vector``, then HRRASA with the texts as
    outputs; frame columns ``task``, ``worker``, ``text``."""

    def __init__(self, encoder: Callable[[str], Any], n_iter: int = 100, tol: float = 1e-5,
                 lambda_emb: float = 0.5, lambda_out: float = 0.5, alpha: float = 0.05,
                 calculate_ranks: bool = False,
                 output_similarity: Callable[[str, str], float] | None = None) -> None:
        super().__init__(encoder)
        self._inner = HRRASA(n_iter=n_iter, tol=tol, lambda_emb=lambda_emb, lambda_out=lambda_out,
                             alpha=alpha, calculate_ranks=calculate_ranks,
                             output_similarity=output_similarity)
