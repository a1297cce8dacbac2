"""``ranking`` consensus: a weighted Borda order, per answer, and Crowd-BT in the re-fit."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import special

from goldlabel.quality import text as text_lib
from goldlabel.quality.consensus.one_coin import broadcast_accuracy, logit_weight, skill_rows
from goldlabel.quality.consensus.question import Question
from goldlabel.quality.ranking import CrowdBT

# ================================================================ per answer


def _positions(value: Sequence[Any], allow_ties: bool) -> list[tuple[str, int]]:
    if allow_ties:
        return [(str(c), g) for g, group in enumerate(value) for c in group]
    return [(str(c), i) for i, c in enumerate(value)]


def _ranking_value(order: Sequence[str], allow_ties: bool) -> list[Any]:
    return [[c] for c in order] if allow_ties else list(order)


def ranking_consensus(question: Question, values: Sequence[Sequence[Any]],
                      accuracy: Any) -> tuple[list[Any], float]:
    """Weighted Borda order and the posterior of its weakest ordered pair."""
    allow_ties = bool(getattr(question, "allow_ties", False))
    parsed = [_positions(v, allow_ties) for v in values]
    candidates: dict[str, int] = {}
    for entries in parsed:
        for c, _ in entries:
            candidates.setdefault(c, len(candidates))
    k = len(candidates)
    pos = np.full((len(parsed), k), np.nan)
    for j, entries in enumerate(parsed):
        for c, p in entries:
            pos[j, candidates[c]] = p
    # votes[j, a, b] = +1 when answer j ranks a above b, -1 below, 0 tied or missing
    votes = np.nan_to_num(np.sign(pos[:, None, :] - pos[:, :, None]))
    pair = np.einsum("jab,j->ab", votes, logit_weight(broadcast_accuracy(accuracy, len(parsed))))
    mean_pos = np.nanmean(pos, axis=0)
    order = np.lexsort((np.arange(k), mean_pos, -pair.sum(axis=1)))
    hi, lo = np.triu_indices(k, 1)
    conf = float(special.expit(pair[order[hi], order[lo]]).min()) if k > 1 else 1.0
    names = list(candidates)
    return _ranking_value([names[i] for i in order], allow_ties), conf


# ================================================================ full re-fit (vectorized)


def refit_ranking(q: Any, items: np.ndarray, item: np.ndarray, annotator: np.ndarray, annotator_ids: np.ndarray,
                  values: list[Any], default: float, settings: Mapping[str, Any], now: int,
                  ) -> tuple[str, list[Any], Any, list[dict[str, Any]] | None]:
    allow_ties = bool(getattr(q, "allow_ties", False))
    # edge: parse answers into (answer, (item, candidate) code, position) entries
    code_of: dict[tuple[int, str], int] = {}
    entry_answer, entry_code, entry_pos = [], [], []
    for n, (i, v) in enumerate(zip(item.tolist(), values)):
        for c, p in _positions(v, allow_ties):
            entry_answer.append(n)
            entry_code.append(code_of.setdefault((i, c), len(code_of)))
            entry_pos.append(p)
    n_codes = len(code_of)
    code_item = np.fromiter((k[0] for k in code_of), np.int64, count=n_codes)
    names = [k[1] for k in code_of]
    e_answer = np.asarray(entry_answer, np.int64)
    e_code = np.asarray(entry_code, np.int64)
    e_pos = np.asarray(entry_pos, np.int64)
    a, b = text_lib._pairs_within(e_answer) if len(e_answer) else (np.zeros(0, np.int64),) * 2
    above = e_pos[a] < e_pos[b]
    winner, loser, who = e_code[a][above], e_code[b][above], annotator[e_answer[a][above]]
    if len(winner):
        est = CrowdBT().fit(who, winner, loser, n_candidates=n_codes, n_annotators=len(annotator_ids))
        scores, reliability = est.scores_, est.reliabilities_
    else:
        scores, reliability = np.zeros(n_codes), np.full(len(annotator_ids), default)
    first_seen = np.arange(n_codes)
    order = np.lexsort((first_seen, -scores, code_item))  # per item, best first
    rank = np.empty(n_codes, np.int64)
    starts = np.r_[0, np.flatnonzero(code_item[order][1:] != code_item[order][:-1]) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, n_codes]))
    rank[order] = np.arange(n_codes) - group_start
    # pair log-odds in the consensus orientation (earlier candidate first)
    first = np.where(rank[winner] < rank[loser], winner, loser)
    second = np.where(rank[winner] < rank[loser], loser, winner)
    sign = np.where(first == winner, 1.0, -1.0)
    key, inverse = np.unique(first * n_codes + second, return_inverse=True)
    pair = np.bincount(inverse, weights=sign * logit_weight(reliability)[who], minlength=len(key))
    n_items = len(items)
    confidence = np.ones(n_items)
    np.minimum.at(confidence, code_item[key // n_codes], special.expit(pair))
    k = np.bincount(code_item, minlength=n_items)
    voted_pairs = np.bincount(code_item[key // n_codes], minlength=n_items)
    confidence = np.where(voted_pairs < k * (k - 1) // 2, np.minimum(confidence, 0.5), confidence)
    ordered = [names[c] for c in order.tolist()]
    bounds = np.r_[starts, n_codes].tolist()
    by_item = {int(code_item[order[s]]): _ranking_value(ordered[s:e], allow_ties)
               for s, e in itertools.pairwise(bounds)}
    out_values = [by_item.get(i, []) for i in range(n_items)]
    skills = skill_rows(annotator_ids, reliability, annotator, "crowd_bt", now)
    return "crowd_bt", out_values, confidence, skills

