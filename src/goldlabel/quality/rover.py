"""ROVER (Fiscus 1997): align each task's texts word by word into a word transition network
and vote per slot; crowd-kit's ``ROVER(tokenizer, detokenizer)``.

A task's answers are aligned in row order: the first answer is the network, each next answer
is aligned to it by edit distance (a word matches a slot holding that word; skipping a slot
that already holds the empty word is free), then merged into it. Each slot keeps a count per
word; the result takes, per slot, the word with the most votes (ties: the longer word, then
the larger string, as crowd-kit's), and drops the empty word.

Vectorized over tasks: every task's network is one padded (tasks, slots, words) count array in
the task's own word numbering, the k-th answers of all tasks are aligned together, and the edit
distance dynamic program runs one hypothesis word at a time over all tasks and all slots (the
row's left-to-right dependency is a running minimum); the backtrack steps all tasks at once.
The loops left are over the k-th answer of a task, hypothesis positions and path steps, never
over tasks or answers. Tasks are processed in chunks of similar size to bound the padded arrays.
The tokenizer and detokenizer are the caller's functions: one call per answer and per task.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from typing import Any, Self

import numpy as np

from .answers import _pick_column

__all__ = ["ROVER"]

_DIAG, _DEL, _INS = 0, 1, 2
#: padded cells (tasks x slots x words) per chunk of tasks
_CHUNK_CELLS = 4_000_000


def _align_step(counts: np.ndarray, length: np.ndarray, hyp: np.ndarray, hyp_len: np.ndarray,
                sources: int) -> tuple[np.ndarray, np.ndarray]:
    """Align one hypothesis per task (``hyp``: (T, N) local word ids, 0 = padding) to the
    networks ``counts`` (T, L, V) of ``length`` slots; ``sources`` answers are in the networks.
    Returns the merged networks and their lengths."""
    n_tasks, n_slots, n_words = counts.shape
    n_hyp = hyp.shape[1]
    t_idx = np.arange(n_tasks)
    # member[t, i, j]: hypothesis word i is in slot j; skipping slot j costs 0 if it holds ""
    member = counts[t_idx[:, None, None], np.arange(n_slots)[None, None, :], hyp[:, :, None]] > 0
    del_cost = (counts[:, :, 0] == 0).astype(np.int64)                      # (T, L)
    cum = np.concatenate([np.zeros((n_tasks, 1), np.int64), np.cumsum(del_cost, axis=1)], axis=1)
    dist = np.empty((n_tasks, n_hyp + 1, n_slots + 1), dtype=np.int64)
    action = np.empty((n_tasks, n_hyp + 1, n_slots + 1), dtype=np.int8)
    dist[:, 0, :] = np.arange(n_slots + 1)  # the first row skips slots at cost 1 each, as crowd-kit's
    action[:, 0, :] = _DEL
    for i in range(1, n_hyp + 1):  # one hypothesis position at a time, all tasks and slots at once
        diag = dist[:, i - 1, :-1] + ~member[:, i - 1, :]
        ins = dist[:, i - 1, 1:] + 1
        best = np.minimum(diag, ins)
        # dist[i, j] = min(best[j], dist[i, j-1] + del_cost[j]), dist[i, 0] = i: a running minimum
        start = np.full((n_tasks, 1), i, dtype=np.int64)
        run = np.minimum.accumulate(np.concatenate([start, best - cum[:, 1:]], axis=1), axis=1)
        row = run + cum
        dist[:, i, :] = row
        dele = row[:, :-1] + del_cost
        # crowd-kit's preference on ties: match/substitute, then skip the slot, then insert
        action[:, i, 1:] = np.where(diag == row[:, 1:], _DIAG, np.where(dele == row[:, 1:], _DEL, _INS))
        action[:, i, 0] = _INS
    # backtrack every task at once; the merged network is built from its last slot back
    pos_i = hyp_len.astype(np.int64).copy()
    pos_j = length.astype(np.int64).copy()
    out = np.zeros((n_tasks, n_hyp + n_slots, n_words), dtype=counts.dtype)
    steps = np.zeros(n_tasks, dtype=np.int64)
    live = (pos_i > 0) | (pos_j > 0)
    while live.any():  # one path step at a time, all tasks at once
        t = np.flatnonzero(live)
        act = action[t, pos_i[t], pos_j[t]]
        take_slot = act != _INS
        take_word = act != _DEL
        column = np.zeros((len(t), n_words), dtype=counts.dtype)
        column[take_slot] = counts[t[take_slot], pos_j[t[take_slot]] - 1]
        column[~take_slot, 0] = sources
        word = np.where(take_word, hyp[t, np.maximum(pos_i[t] - 1, 0)], 0)
        column[np.arange(len(t)), word] += 1
        out[t, steps[t]] = column
        steps[t] += 1
        pos_i[t] -= take_word
        pos_j[t] -= take_slot
        live = (pos_i > 0) | (pos_j > 0)
    # the path was walked backwards: reverse each task's slots
    new_len = steps
    pos = np.arange(out.shape[1])[None, :]
    src = np.where(pos < new_len[:, None], new_len[:, None] - 1 - pos, pos)
    merged = out[t_idx[:, None], src]
    width = int(new_len.max()) if n_tasks else 0
    return merged[:, :width], new_len


class ROVER:
    """Recognizer Output Voting Error Reduction: word-aligned vote over a task's texts.

    ``ROVER(tokenizer, detokenizer, silent=True)``: ``tokenizer(text) -> list of words``,
    ``detokenizer(words) -> text``. ``fit(data)`` takes a frame with columns ``task``, ``worker``,
    ``text``; ``texts_`` (and ``fit_predict``'s result) is a Series by task (sorted, as
    crowd-kit's groupby) named ``agg_text``. ``silent`` is accepted for crowd-kit's signature
    (goldlabel shows no progress bar).

    J. G. Fiscus (1997). A post-processing system to yield reduced word error rates: Recognizer
    Output Voting Error Reduction (ROVER). IEEE ASRU, 347-354.
    """

    def __init__(self, tokenizer: Callable[[str], list[str]], detokenizer: Callable[[list[str]], str],
                 silent: bool = True) -> None:
        self.tokenizer = tokenizer
        self.detokenizer = detokenizer
        self.silent = silent

    def fit(self, data: Any) -> Self:
        import pandas as pd

        if not hasattr(data, "columns"):
            raise TypeError("expected a pandas DataFrame with columns task, worker, text")
        columns = [str(c) for c in data.columns]
        task_col = _pick_column(columns, ("task", "item"))
        _pick_column(columns, ("worker", "annotator"))
        text_col = _pick_column(columns, ("text",))
        task, tasks = pd.factorize(data[task_col], sort=True)
        n_tasks = len(tasks)
        # the caller's tokenizer: one call per answer
        tokens = [list(self.tokenizer(t)) for t in data[text_col].to_numpy()]
        n_tok = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
        word_id, uniq_words = pd.factorize(pd.Series(list(chain.from_iterable(tokens)), dtype=object))
        words = np.asarray(uniq_words, dtype=object)
        # the empty word is id 0 in every task's numbering; the others 1.. within their task
        is_empty = np.asarray(words == "", dtype=bool)
        answer_of_tok = np.repeat(np.arange(len(tokens)), n_tok)
        tok_task = task[answer_of_tok]
        n_global = len(words) + 1
        key = tok_task * n_global + word_id
        empty_tok = is_empty[word_id]
        uniq, inv = np.unique(key[~empty_tok], return_inverse=True)
        uniq_task = uniq // n_global
        first = np.searchsorted(uniq_task, np.arange(n_tasks))
        local = np.zeros(len(key), dtype=np.int64)
        local[~empty_tok] = inv - first[tok_task[~empty_tok]] + 1
        n_local = np.bincount(uniq_task, minlength=n_tasks) + 1
        # per-task word -> global word, and the vote's tie order: longer, then larger string
        glob = np.full((n_tasks, int(n_local.max()) if n_tasks else 1), -1, dtype=np.int64)
        glob[uniq_task, np.arange(len(uniq)) - first[uniq_task] + 1] = uniq % n_global
        as_str = words.astype(str)
        tie_order = np.lexsort((as_str, np.char.str_len(as_str)))
        tie_rank = np.zeros(len(words) + 1, dtype=np.int64)
        tie_rank[tie_order] = np.arange(1, len(words) + 1)
        tie_rank[np.flatnonzero(is_empty)] = 0
        # each answer's place among its task's answers (row order) and its words, padded
        order = np.argsort(task, kind="stable")
        rank = np.empty(len(task), dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(np.bincount(task, minlength=n_tasks))[:-1]])
        rank[order] = np.arange(len(task)) - starts[task[order]]
        tok_pos = np.arange(len(local)) - np.repeat(np.cumsum(n_tok) - n_tok, n_tok)
        overlap = np.bincount(task, minlength=n_tasks)
        total = np.bincount(task, weights=n_tok, minlength=n_tasks)
        result_words: list[list[str]] = [[] for _ in range(n_tasks)]
        # chunks of tasks of similar size bound the padded arrays (a network is at most its
        # task's words long)
        by_size = np.argsort(total, kind="stable")
        bounds = np.cumsum(((total + 1) * n_local)[by_size])
        cut = (np.searchsorted(bounds, np.arange(_CHUNK_CELLS, bounds[-1], _CHUNK_CELLS)) if n_tasks
               else np.zeros(0, dtype=np.int64))
        chunks = [c for c in np.split(by_size, np.unique(cut)) if len(c)]
        for members in chunks:  # one step per chunk of tasks
            self._fit_chunk(members, task, rank, overlap, n_tok, answer_of_tok, tok_pos, local, n_local,
                            tie_rank, glob, words, result_words)
        # the caller's detokenizer: one call per task
        texts = [self.detokenizer(w) for w in result_words]
        self.texts_ = pd.Series(texts, index=pd.Index(tasks, name="task"), name="agg_text",
                                dtype=None if texts else object)
        return self

    def _fit_chunk(self, members: np.ndarray, task: np.ndarray, rank: np.ndarray, overlap: np.ndarray,
                   n_tok: np.ndarray, answer_of_tok: np.ndarray, tok_pos: np.ndarray, local: np.ndarray,
                   n_local: np.ndarray, tie_rank: np.ndarray, glob: np.ndarray, words: np.ndarray,
                   result_words: list[list[str]]) -> None:
        n = len(members)
        slot = np.full(len(overlap), -1, dtype=np.int64)
        slot[members] = np.arange(n)
        n_words = int(n_local[members].max())
        k_max = int(overlap[members].max())
        in_chunk = slot[task] >= 0
        # padded hypotheses: hyp[t, k, p] and their lengths
        longest = int(n_tok[in_chunk].max()) if in_chunk.any() else 0
        hyp = np.zeros((n, k_max, max(longest, 1)), dtype=np.int64)
        hyp_len = np.zeros((n, k_max), dtype=np.int64)
        a = np.flatnonzero(in_chunk)
        hyp_len[slot[task[a]], rank[a]] = n_tok[a]
        tok = np.flatnonzero(in_chunk[answer_of_tok])
        ans = answer_of_tok[tok]
        hyp[slot[task[ans]], rank[ans], tok_pos[tok]] = local[tok]
        # the first answers are the networks
        length = hyp_len[:, 0].copy()
        counts = np.zeros((n, max(int(length.max()), 1), n_words), dtype=np.int64)
        p = np.arange(counts.shape[1])[None, :]
        valid = p < length[:, None]
        rows, cols = np.nonzero(valid)
        counts[rows, cols, hyp[rows, 0, cols]] = 1
        for k in range(1, k_max):  # the k-th answers of all tasks that have one, together
            active = np.flatnonzero(overlap[members] > k)
            if len(active) == 0:
                break
            h = hyp[active, k]
            merged, new_len = _align_step(counts[active, :max(int(length[active].max()), 0)], length[active],
                                          h[:, :max(int(hyp_len[active, k].max()), 1)], hyp_len[active, k], k)
            if merged.shape[1] > counts.shape[1]:
                grown = np.zeros((n, merged.shape[1], n_words), dtype=np.int64)
                grown[:, :counts.shape[1]] = counts
                counts = grown
            counts[active] = 0
            counts[active, :merged.shape[1]] = merged
            length[active] = new_len
        # the vote per slot: most answers, then the longer word, then the larger string
        g = glob[members, :n_words]
        rank_local = np.where(g >= 0, tie_rank[np.maximum(g, 0)], 0)
        rank_local[:, 0] = 0
        score = counts * (len(words) + 2) + rank_local[:, None, :]
        best = np.argmax(score, axis=2)
        keep = (np.arange(counts.shape[1])[None, :] < length[:, None]) & (best > 0)
        rows, cols = np.nonzero(keep)
        chosen = words[g[rows, best[rows, cols]]] if len(rows) else np.zeros(0, dtype=object)
        # split the chosen words by task (rows are sorted by task, slots in order)
        cuts = np.searchsorted(rows, np.arange(1, n))
        for t, part in zip(members, np.split(chosen, cuts), strict=True):  # one list per task
            result_words[t] = list(part)

    def fit_predict(self, data: Any) -> Any:
        return self.fit(data).texts_
