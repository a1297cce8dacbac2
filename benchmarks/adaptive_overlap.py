"""Benchmark 2 of issue 3: adaptive overlap vs fixed overlap, replaying real answers.

On datasets with >= 5 answers per item, each item's real answers arrive in a random order (one
permutation per item and seed). Policies:

* fixed overlap k = 1..5: the first k arrivals of every item, aggregated by majority vote, by
  Dawid-Skene and (k >= 3) by the recommended default, each fitted on those answers only;
* adaptive: what the PLATFORM does (``goldlabel.services.consensus`` and
  ``goldlabel.services.refit``). The queue serves the open
  item with the most answers first (``QUEUE_ORDER``), so items are completed one after another.
  After every answer the item's posterior is ``goldlabel.quality.item_posterior`` over its
  answers, from the confusion matrices and class prior stored by the last background re-fit of
  the default model (prior mixed 0.98 / 0.02 with uniform; an annotator the fit did not see is
  one-coin ``default_annotator_accuracy`` = 0.7). The item is final when P(top) >= the target
  (the project's ``target_confidence``, 0.95) and ``overlap_min`` is met, goes to review at
  ``overlap_max`` (or when its answers run out). The re-fit runs after 2% of the budget
  (n_items x 5), doubling, then every 10%; final labels are the default model's over the
  collected answers (the last re-fit). Options that would change the platform: ``shrinkage``
  (stored confusions mixed with the default one by answer count), a futility stop (stop when
  the answers still allowed cannot change the leader) and tempering.

A random sample of items is checked against ``item_posterior`` itself every run.

Goal (issue 3): the accuracy of fixed-overlap-5 Dawid-Skene with at most 60% of its answers,
averaged over seeds.

Usage::

    python benchmarks/adaptive_overlap.py              # 6 datasets x 5 seeds, the default policies
    python benchmarks/adaptive_overlap.py --quick      # bluebirds' first 40 items, 1 seed (smoke test)
    python benchmarks/adaptive_overlap.py --targets 0.9,0.99 --policies 1:5:0,1:4:0
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _datasets import Categorical, load_categorical, machine_description, require_datasets

from goldlabel import quality
from goldlabel.quality import DawidSkene, from_codes, item_posterior
from goldlabel.quality.skill import confusions_from_skills

DATASETS = ["zheng_possent", "snow_rte", "dog", "bluebirds", "acf_sp_amt", "mill"]
MAX_OVERLAP = 5
DEFAULT_POLICIES = "1:5:0,2:5:0,1:5:5,2:5:5"


def arrival_table(data: Categorical, rng: np.random.Generator, depth: int) -> np.ndarray:
    """``table[i, r]``: index of the answer that reaches item i r-th (-1 when i has fewer)."""
    key = rng.random(data.n_answers)
    order = np.lexsort((key, data.item))  # by item, random within an item
    item_sorted = data.item[order]
    starts = np.searchsorted(item_sorted, np.arange(data.n_items))
    rank = np.arange(data.n_answers) - starts[item_sorted]
    table = np.full((data.n_items, depth), -1, dtype=np.int64)
    keep = rank < depth
    table[item_sorted[keep], rank[keep]] = order[keep]
    return table


def fit_model(data: Categorical, used: np.ndarray, method: str = "ds"):
    """DawidSkene (``"ds"``) or goldlabel's recommended default (``"default"``) on some answers."""
    answers = from_codes(data.item[used], data.worker[used], data.label[used], n_items=data.n_items,
                         n_annotators=data.n_workers, n_labels=data.n_classes)
    model = DawidSkene() if method == "ds" else quality.METHODS[quality.DEFAULT_METHOD]()
    return model.fit(answers)


def majority(data: Categorical, used: np.ndarray) -> np.ndarray:
    votes = np.bincount(data.item[used] * data.n_classes + data.label[used],
                        minlength=data.n_items * data.n_classes).reshape(data.n_items, data.n_classes)
    return votes.argmax(axis=1)  # ties -> lowest label


def accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    known = truth >= 0
    return float((predicted[known] == truth[known]).mean())


class Skills:
    """What the platform stores after a re-fit: per-annotator confusion matrices and the class
    prior of the default model, read back by the per-answer update.

    ``services/refit.py`` stores the default model's ``confusions_`` for every fitted
    annotator and ``probas_.mean(axis=0)`` as the prior, mixed 0.98 / 0.02 with the uniform
    prior; an annotator the last fit did not see counts as one-coin ``default_accuracy``. With
    ``shrinkage`` s > 0 (a proposed platform change), a fitted annotator's matrix is mixed with
    the default one by answer count n: ``(n C_fit + s C_default) / (n + s)``.
    """

    def __init__(self, data: Categorical, default_accuracy: float, shrinkage: float, temper: bool = False):
        self.data, self.shrinkage, self.temper = data, shrinkage, temper
        self.temperature = 1.0
        self.default = confusions_from_skills(np.full(data.n_workers, default_accuracy), data.n_classes)
        self.confusions = self.default.copy()
        self.prior = np.full(data.n_classes, 1.0 / data.n_classes)
        self._logs()

    def _logs(self) -> None:
        self.log_confusions = np.log(self.confusions)
        self.log_prior = np.log(self.prior)

    def update(self, model, used: np.ndarray) -> None:
        data = self.data
        seen = np.bincount(data.worker[used], minlength=data.n_workers).astype(float)
        fitted = np.asarray(model.confusions_, dtype=float)
        n = seen[:, None, None]
        mixed = (n * fitted + self.shrinkage * self.default) / np.maximum(n + self.shrinkage, 1e-12)
        self.confusions = np.where(n > 0, mixed, self.default)
        answered = np.bincount(data.item[used], minlength=data.n_items) > 0
        prior = np.asarray(model.probas_, dtype=float)[answered].mean(axis=0)
        prior = 0.98 * prior + 0.02 / data.n_classes  # as goldlabel.quality.consensus.class_prior
        self.prior = prior / prior.sum()
        temperatures = getattr(model, "temperatures_", None)
        self.temperature = float(temperatures[0]) if self.temper and temperatures else 1.0
        self._logs()

    def answer_scores(self, answers: np.ndarray) -> np.ndarray:
        """``answers.shape + (n_classes,)``: log P(answer | true class k)."""
        scores = self.log_confusions[self.data.worker[answers], :, self.data.label[answers]]
        return scores / self.temperature if self.temperature != 1.0 else scores


def top_posterior(scores: np.ndarray, log_prior: np.ndarray) -> np.ndarray:
    total = scores + log_prior
    total -= total.max(axis=-1, keepdims=True)
    p = np.exp(total)
    return p.max(axis=-1) / p.sum(axis=-1)


def refit_points(budget: int, first: float, share: float) -> list[int]:
    """Answer counts at which the background re-fit runs: at ``first`` x budget, doubling
    until the spacing reaches ``share`` x budget, then every ``share`` x budget."""
    points, at = [], max(int(first * budget), 1)
    step = max(int(share * budget), 1)
    while at < budget:
        points.append(at)
        at = min(2 * at, at + step) if at < step else at + step
    return points


def replay_adaptive(data: Categorical, table: np.ndarray, rng: np.random.Generator, target: float,
                    default_accuracy: float, policy: Policy, refit_first: float, refit_share: float,
                    check: bool) -> tuple[np.ndarray, int, int, np.ndarray]:
    """Replay the platform's queue; return the collected answer indices, the number of
    re-fits, the posterior cross-checks done and, per item, whether it stopped at the target
    confidence (final; otherwise it goes to review).

    The queue serves the open item with the most answers first (``QUEUE_ORDER``), so items are
    completed one after another (in a random order per seed, as ids): an item receives its
    answers in ``table`` order until the per-answer posterior under the stored skills reaches
    ``target`` with at least ``policy.min_overlap`` answers, or ``policy.max_overlap`` (or the
    item's answers) run out. Skills change only at a re-fit (``refit_points``): the default
    model on every answer collected so far. Vectorized over the items served between two
    re-fits; the item during which a re-fit falls due finishes with the old skills.
    """
    n_items, max_k = data.n_items, table.shape[1]
    budget = n_items * MAX_OVERLAP
    points = refit_points(budget, refit_first, refit_share)
    skills = Skills(data, default_accuracy, policy.shrinkage, policy.temper)
    collected = np.zeros(data.n_answers, dtype=bool)
    order = rng.permutation(np.flatnonzero(table[:, 0] >= 0))
    available = (table >= 0).sum(axis=1)
    steps = np.arange(1, max_k + 1)
    reached = np.zeros(n_items, dtype=bool)  # stopped at the target confidence (final), else review
    stop_top = np.full(n_items, np.nan)      # the per-answer P(top) when the item stopped
    futility_weight = np.log(default_accuracy * (data.n_classes - 1) / (1 - default_accuracy))
    n_collected, position, refits, checks, point = 0, 0, 0, 0, 0
    while position < len(order):
        room = (points[point] - n_collected) if point < len(points) else len(order)
        batch = order[position:position + max(room, 1)]
        answers = table[batch]                                   # (b, max_k), -1 = none
        valid = answers >= 0
        per_answer = skills.answer_scores(np.where(valid, answers, 0)) * valid[..., None]
        scores = np.cumsum(per_answer, axis=1) + skills.log_prior   # after 1, 2, ... answers
        top = top_posterior(scores, 0.0)
        confident = (top >= target - 1e-12) & (steps >= policy.min_overlap)
        stop = confident | (steps >= available[batch][:, None])
        if policy.futility:
            # no answer still allowed can change the leader: even if all of them (from annotators
            # at the default accuracy) named the runner-up, it would stay behind
            ordered = np.sort(scores, axis=-1)
            gap = ordered[..., -1] - ordered[..., -2]
            remaining = available[batch][:, None] - steps
            stop |= (gap > remaining * futility_weight) & (steps >= policy.min_overlap)
        spent = stop.argmax(axis=1) + 1
        reached[batch[:len(spent)]] = confident[np.arange(len(spent)), spent - 1]
        stop_top[batch[:len(spent)]] = top[np.arange(len(spent)), spent - 1]
        total = np.cumsum(spent)
        served = int(np.searchsorted(total, room)) + 1 if point < len(points) else len(batch)
        served = min(served, len(batch))
        for step in range(max_k):  # mark the answers the served items used
            rows = spent[:served] > step
            collected[answers[:served][rows, step]] = True
        n_collected = int(collected.sum())
        position += served
        while point < len(points) and n_collected >= points[point]:
            point += 1
            if point < len(points) and n_collected >= points[point]:
                continue  # several re-fits fell due at once: one fit
            used = np.flatnonzero(collected)
            skills.update(fit_model(data, used, "default"), used)
            refits += 1
            if check and skills.temperature == 1.0:
                checks += cross_check(data, collected, skills, rng)
    return np.flatnonzero(collected), refits, checks, reached, stop_top


def cross_check(data: Categorical, collected: np.ndarray, skills: Skills, rng: np.random.Generator,
                n: int = 20) -> int:
    """The replay's posterior (running sum of log confusions) equals
    goldlabel.quality.item_posterior on sampled items."""
    has = np.flatnonzero(np.bincount(data.item[collected], minlength=data.n_items))
    picks = rng.choice(has, size=min(n, len(has)), replace=False)
    for i in picks:
        answers = np.flatnonzero(collected & (data.item == i))
        reference = item_posterior(data.worker[answers], data.label[answers], skills.confusions, skills.prior)
        total = skills.answer_scores(answers).sum(axis=0) + skills.log_prior
        mine = np.exp(total - total.max())
        mine /= mine.sum()
        if not np.allclose(reference, mine, atol=1e-9):
            raise AssertionError(f"posterior mismatch on item {i}: {mine} vs item_posterior {reference}")
    return len(picks)


@dataclass(frozen=True)
class Policy:
    """An adaptive-overlap setting: the project's ``overlap_min`` / ``overlap_max`` and the
    skill shrinkage (pseudo-answers at the default accuracy; 0 = the platform as it is)."""

    min_overlap: int
    max_overlap: int
    shrinkage: float
    futility: bool = False
    temper: bool = False

    def name(self, target: float) -> str:
        extras = [f"min {self.min_overlap}", f"max {self.max_overlap}"]
        extras += [f"shrink {self.shrinkage:g}"] if self.shrinkage else []
        extras += ["stop when futile"] if self.futility else []
        extras += ["tempered"] if self.temper else []
        today = "" if self.shrinkage or self.futility or self.temper else "; the platform today"
        return f"adaptive P>={target:g} ({', '.join(extras)}{today})"


def parse_policies(text: str) -> list[Policy]:
    """``"1:5:0,1:5:10:f,1:5:0:t"`` -> [Policy(min overlap, max overlap, shrinkage, futility stop
    ("f"), per-answer posterior tempered by the re-fit's held-out temperature ("t"))]."""
    out = []
    for part in filter(None, text.split(",")):
        fields = part.split(":")
        flags = "".join(fields[3:])
        out.append(Policy(int(fields[0]), int(fields[1]), float(fields[2]), "f" in flags, "t" in flags))
    return out


def run_dataset(data: Categorical, seeds: int, targets: list[float], default_accuracy: float,
                policies: list[Policy], refit_first: float, refit_share: float, quick: bool = False) -> dict:
    rows: dict[str, list[tuple[float, float]]] = {}

    def add(policy, answers_per_item, acc):
        rows.setdefault(policy, []).append((answers_per_item, acc))

    depth = max([MAX_OVERLAP] + [p.max_overlap for p in policies])
    refits_total, checks_total = 0, 0
    review: dict[str, list[float]] = {}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        table = arrival_table(data, rng, depth)
        for k in ([MAX_OVERLAP] if quick else range(1, MAX_OVERLAP + 1)):
            used = table[:, :k][table[:, :k] >= 0]
            per_item = len(used) / data.n_items
            add(f"fixed k={k}, MV", per_item, accuracy(majority(data, used), data.truth))
            add(f"fixed k={k}, DS", per_item, accuracy(fit_model(data, used).label_codes_, data.truth))
            if k >= 3:
                add(f"fixed k={k}, default ({quality.DEFAULT_METHOD})", per_item,
                    accuracy(fit_model(data, used, "default").label_codes_, data.truth))
        for t_number, target in enumerate(targets):
            for number, policy in enumerate(policies):
                used, refits, checks, reached, _ = replay_adaptive(
                    data, table[:, :policy.max_overlap], np.random.default_rng([seed, number]), target,
                    default_accuracy, policy, refit_first, refit_share,
                    check=(seed == 0 and number == 0 and t_number == 0))
                refits_total += refits if number == 0 and t_number == 0 else 0
                checks_total += checks
                # final labels: the last re-fit of the default model over the collected answers
                add(policy.name(target), len(used) / data.n_items,
                    accuracy(fit_model(data, used, "default").label_codes_, data.truth))
                review.setdefault(policy.name(target), []).append(1.0 - reached.mean())
    everything = np.arange(data.n_answers)
    reference = (data.n_answers / data.n_items, accuracy(fit_model(data, everything).label_codes_, data.truth))
    summary = {policy: tuple(np.mean(values, axis=0)) for policy, values in rows.items()}
    spread = {policy: float(np.std([v[1] for v in values])) for policy, values in rows.items()}
    return {"summary": summary, "spread": spread, "all_answers_ds": reference,
            "refits": refits_total / seeds, "checks": checks_total,
            "review": {policy: float(np.mean(v)) for policy, v in review.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: bluebirds' first 40 items, 1 seed, first policy, fixed k=5 only")
    parser.add_argument("--datasets", help="comma-separated (default: " + ",".join(DATASETS) + ")")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--targets", default="0.95",
                        help="comma-separated target confidences; the first is the headline (project default 0.95)")
    parser.add_argument("--default-accuracy", type=float, default=0.7,
                        help="settings.default_annotator_accuracy: skill of an annotator the last fit did not see")
    parser.add_argument("--refit-first", type=float, default=0.02,
                        help="first background re-fit after this share of the budget (n_items x 5), then doubling")
    parser.add_argument("--refit-share", type=float, default=0.10,
                        help="... until re-fits are this share of the budget apart")
    parser.add_argument("--policies", default=DEFAULT_POLICIES,
                        help="adaptive policies MIN:MAX:SHRINK: overlap_min, overlap_max (capped by the item's "
                             "answers), pseudo-answers shrinking each stored confusion toward the default "
                             "(0 = as today)")
    parser.add_argument("--output", help="also write the markdown to this file")
    args = parser.parse_args(argv)
    policies = parse_policies(args.policies)
    targets = [float(t) for t in args.targets.split(",")]
    if args.quick:
        policies, targets = policies[:1], targets[:1]
    require_datasets()
    names = args.datasets.split(",") if args.datasets else (["bluebirds"] if args.quick else DATASETS)
    seeds = 1 if args.quick else args.seeds

    lines: list[str] = []
    emit = lines.append
    emit(f"Machine: {machine_description()}; load average at start {os.getloadavg()[0]:.1f}.  ")
    emit(f"{seeds} seeds (random item order and arrival order per item per seed); fixed overlap k = first k "
         f"arrivals. Adaptive: the platform's loop (queue serves the item with most answers first; per-answer "
         f"posterior from stored confusions + prior of the last `{quality.DEFAULT_METHOD}` re-fit, unseen annotators "
         f"at {args.default_accuracy:g}; final at P(top) >= target and overlap_min; re-fit after "
         f"{100 * args.refit_first:g}% of the budget, doubling, then every {100 * args.refit_share:g}%; final labels "
         f"from the last `{quality.DEFAULT_METHOD}` fit). Cells: answers per item / accuracy (%) on items with truth, "
         "mean over seeds.")
    emit("")
    results = {}
    started = time.perf_counter()
    for name in names:
        data = load_categorical(name)
        if args.quick:
            keep = np.zeros(data.n_items, dtype=bool)
            keep[:40] = True
            data = data.subset_items(keep)
        results[name] = run_dataset(data, seeds, targets, args.default_accuracy, policies, args.refit_first,
                                    args.refit_share, quick=args.quick)
    wall = time.perf_counter() - started
    rows = list(next(iter(results.values()))["summary"])
    emit("| policy | " + " | ".join(names) + " | mean |")
    emit("|---|" + "---:|" * (len(names) + 1))
    for policy in rows:
        cells = [results[n]["summary"][policy] for n in names]
        mean = np.mean(cells, axis=0)
        emit(f"| {policy} | " + " | ".join(f"{a:.2f} / {100 * b:.2f}" for a, b in cells)
             + f" | {mean[0]:.2f} / {100 * mean[1]:.2f} |")
    cells = [results[n]["all_answers_ds"] for n in names]
    emit("| all answers, DS (reference) | " + " | ".join(f"{a:.1f} / {100 * b:.2f}" for a, b in cells) + " | |")
    emit("")
    emit("Share of items that stopped below the target (to review): " + "; ".join(
        f"{policy}: " + ", ".join(f"{n} {100 * results[n]['review'][policy]:.0f}%" for n in names)
        for policy in results[names[0]]["review"]) + ".")
    emit("")
    emit("Re-fits per adaptive replay: " + ", ".join(f"{n} {results[n]['refits']:.1f}" for n in names)
         + f"; {sum(r['checks'] for r in results.values())} item posteriors cross-checked against "
         f"`item_posterior`; wall time {wall:.0f} s.")
    emit("")
    emit("```")
    for target in targets:
        for policy in policies:
            adaptive = policy.name(target)
            emit(adaptive)
            ratios, gaps = [], []
            for name in names:
                a_spent, a_acc = results[name]["summary"][adaptive]
                f_spent, f_acc = results[name]["summary"][f"fixed k={MAX_OVERLAP}, DS"]
                ratio, gap = a_spent / f_spent, 100 * (a_acc - f_acc)
                ratios.append(ratio)
                gaps.append(gap)
                verdict = "PASS" if ratio <= 0.6 and gap >= 0 else "FAIL"
                emit(f"  {verdict}  {name:<14} {a_spent:.2f} answers/item ({100 * ratio:.0f}% of fixed-5), "
                     f"accuracy {100 * a_acc:.2f} vs fixed-5 DS {100 * f_acc:.2f} ({gap:+.2f}; seed sd "
                     f"{100 * results[name]['spread'][adaptive]:.2f})")
            mean_ratio, mean_gap = float(np.mean(ratios)), float(np.mean(gaps))
            verdict = "PASS" if mean_ratio <= 0.6 and mean_gap >= 0 else "FAIL"
            emit(f"  {verdict}  mean over datasets: {100 * mean_ratio:.0f}% of fixed-5 answers, accuracy "
                 f"{mean_gap:+.2f} points vs fixed-5 DS (goal: <= 60% and >= +0.00)")
    emit("```")
    text = "\n".join(lines)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
