"""Benchmark 2 of issue 3: adaptive overlap vs fixed overlap, replaying real answers.

On datasets with >= 5 answers per item, each item's real answers arrive one by one in a
random order (one permutation per item and seed). Policies:

* fixed overlap k = 1..5: the first k arrivals of every item, aggregated by majority vote and
  by Dawid-Skene fitted on those answers only;
* adaptive: ask for another answer only while the item's posterior P(top label) is below the
  target (0.95), up to max overlap 5 (or the item's number of answers). The posterior is the
  server's incremental one, ``goldlabel.quality.item_posterior``: class prior and annotator
  skills from a Dawid-Skene fit on the answers collected so far, re-fitted in the background
  every 10% of the answer budget (n_items x 5), one-coin confusions
  (``goldlabel.quality.confusions_from_skills``) from each annotator's DS accuracy shrunk
  toward a default accuracy (0.7) by ``--shrinkage`` pseudo-answers, so an annotator not seen
  by the last fit counts as 0.7. After every re-fit all open items are re-scored. Final
  labels: Dawid-Skene on the collected answers.

The replay is vectorized by arrival round: in round r every still-open item receives its r-th
answer; the round's arrivals are split where a re-fit falls due (items in random order), and
item posteriors are kept as running sums of log confusions, as the server does. A random
sample of items is checked against ``item_posterior`` itself every run.

Goal (issue 3): the accuracy of fixed-overlap-5 Dawid-Skene with at most 60% of its answers,
averaged over seeds.

Usage::

    python benchmarks/adaptive_overlap.py              # 6 datasets x 5 seeds
    python benchmarks/adaptive_overlap.py --quick      # bluebirds, 2 seeds (smoke test)
    python benchmarks/adaptive_overlap.py --datasets dog,snow_rte --seeds 10 --target 0.9
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _datasets import Categorical, load_categorical, machine_description, require_datasets  # noqa: E402

from goldlabel import quality  # noqa: E402
from goldlabel.quality import DawidSkene, from_codes, item_posterior  # noqa: E402
from goldlabel.quality.skill import confusions_from_skills  # noqa: E402

DATASETS = ["zheng_possent", "snow_rte", "dog", "bluebirds", "acf_sp_amt", "mill"]
MAX_OVERLAP = 5


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


def fit_ds(data: Categorical, used: np.ndarray, method: str = "ds"):
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
    """Log one-coin confusions per annotator and the class prior, from the last DS fit."""

    def __init__(self, data: Categorical, default_accuracy: float, shrinkage: float):
        self.data, self.default, self.shrinkage = data, default_accuracy, shrinkage
        self.update(None, np.zeros(0, dtype=np.int64))

    def update(self, model: DawidSkene | None, used: np.ndarray) -> None:
        data = self.data
        accuracy_ = np.full(data.n_workers, self.default)
        prior = np.full(data.n_classes, 1.0 / data.n_classes)
        if model is not None:
            seen = np.bincount(data.worker[used], minlength=data.n_workers).astype(float)
            skill = np.asarray(model.skills_, dtype=float)
            accuracy_ = (seen * skill + self.shrinkage * self.default) / (seen + self.shrinkage)
            prior = np.asarray(model.prior_, dtype=float).ravel()
        self.confusions = confusions_from_skills(accuracy_, data.n_classes)
        self.log_confusions = np.log(self.confusions)
        self.prior = prior
        self.log_prior = np.log(prior)

    def answer_scores(self, answers: np.ndarray) -> np.ndarray:
        """``(len(answers), n_classes)``: log P(answer | true class k)."""
        return self.log_confusions[self.data.worker[answers], :, self.data.label[answers]]

    def item_scores(self, used: np.ndarray) -> np.ndarray:
        """Running sums ``S[i, k]`` over item i's collected answers, recomputed from scratch."""
        data = self.data
        scores = np.zeros((data.n_items, data.n_classes))
        per_answer = self.answer_scores(used)
        for k in range(data.n_classes):  # loop over classes, not answers
            scores[:, k] = np.bincount(data.item[used], per_answer[:, k], minlength=data.n_items)
        return scores


def top_posterior(scores: np.ndarray, log_prior: np.ndarray) -> np.ndarray:
    total = scores + log_prior
    total -= total.max(axis=1, keepdims=True)
    p = np.exp(total)
    return p.max(axis=1) / p.sum(axis=1)


def replay_adaptive(data: Categorical, table: np.ndarray, rng: np.random.Generator, target: float,
                    default_accuracy: float, shrinkage: float, refit_share: float,
                    check: bool, min_overlap: int = 1, skill_min_answers: int = 1,
                    method: str = "ds") -> tuple[np.ndarray, int, int]:
    """Collected answer indices, number of re-fits, and posterior cross-checks done."""
    n_items = data.n_items
    budget = n_items * MAX_OVERLAP
    refit_every = max(int(refit_share * budget), 1)
    skills = Skills(data, default_accuracy, shrinkage)
    collected = np.zeros(data.n_answers, dtype=bool)
    n_collected, next_refit, refits, checks = 0, refit_every, 0, 0
    scores = np.zeros((n_items, data.n_classes))
    is_open = table[:, 0] >= 0
    for r in range(table.shape[1]):
        arriving = np.flatnonzero(is_open & (table[:, r] >= 0))
        is_open[is_open & (table[:, r] < 0)] = False  # ran out of answers
        rng.shuffle(arriving)
        position = 0
        while position < len(arriving):
            # arrivals up to the next background re-fit
            take = min(len(arriving) - position, next_refit - n_collected)
            chunk = arriving[position:position + take]
            position += take
            new = table[chunk, r]
            collected[new] = True
            n_collected += len(new)
            np.add.at(scores, data.item[new], skills.answer_scores(new))
            done = ((top_posterior(scores[chunk], skills.log_prior) >= target) & (r + 1 >= min_overlap)) \
                | (r + 1 >= table.shape[1])
            is_open[chunk[done]] = False
            if n_collected >= next_refit:
                used = np.flatnonzero(collected)
                fit_on = used
                if skill_min_answers > 1:  # items answered once only echo their annotator
                    counts = np.bincount(data.item[used], minlength=n_items)
                    fit_on = used[counts[data.item[used]] >= skill_min_answers]
                if len(fit_on):
                    skills.update(fit_ds(data, fit_on, method), fit_on)
                refits += 1
                next_refit += refit_every
                scores = skills.item_scores(used)
                still = np.flatnonzero(is_open)
                confident = top_posterior(scores[still], skills.log_prior) >= target
                is_open[still[confident & (np.bincount(data.item[used], minlength=n_items)[still] >= min_overlap)]] = False
                if check:
                    checks += cross_check(data, collected, skills, scores, rng)
    return np.flatnonzero(collected), refits, checks


def cross_check(data: Categorical, collected: np.ndarray, skills: Skills, scores: np.ndarray,
                rng: np.random.Generator, n: int = 20) -> int:
    """The vectorized posterior equals goldlabel.quality.item_posterior on sampled items."""
    has = np.flatnonzero(np.bincount(data.item[collected], minlength=data.n_items))
    picks = rng.choice(has, size=min(n, len(has)), replace=False)
    for i in picks:
        answers = np.flatnonzero(collected & (data.item == i))
        reference = item_posterior(data.worker[answers], data.label[answers], skills.confusions, skills.prior)
        total = scores[i] + skills.log_prior
        mine = np.exp(total - total.max())
        mine /= mine.sum()
        if not np.allclose(reference, mine, atol=1e-9):
            raise AssertionError(f"posterior mismatch on item {i}: {mine} vs item_posterior {reference}")
    return len(picks)


def parse_variants(text: str) -> list[tuple]:
    """``"5:1:1,10:2:2:default"`` -> [(max overlap, min overlap, min answers of an item used for
    skills, model for skills and final labels: ds or default)]."""
    variants = []
    for part in filter(None, text.split(",")):
        fields = part.split(":")
        variants.append((int(fields[0]), int(fields[1]), int(fields[2]), fields[3] if len(fields) > 3 else "ds"))
    return variants


def variant_name(target: float, variant: tuple) -> str:
    max_k, min_k, skill_min, method = variant
    extras = [f"max {max_k}"] + ([f"min {min_k}"] if min_k > 1 else []) \
        + ([f"skills from items with >= {skill_min} answers"] if skill_min > 1 else [])
    model = "DS" if method == "ds" else f"default ({quality.DEFAULT_METHOD})"
    return f"adaptive P>={target:g} ({', '.join(extras)}), {model}"


def run_dataset(data: Categorical, seeds: int, target: float, default_accuracy: float,
                shrinkage: float, refit_share: float, variants: list[tuple[int, int, int]]) -> dict:
    rows: dict[str, list[tuple[float, float]]] = {}

    def add(policy, answers_per_item, acc):
        rows.setdefault(policy, []).append((answers_per_item, acc))

    depth = max([MAX_OVERLAP] + [v[0] for v in variants])
    refits_total, checks_total = 0, 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        table = arrival_table(data, rng, depth)
        for k in range(1, MAX_OVERLAP + 1):
            used = table[:, :k][table[:, :k] >= 0]
            per_item = len(used) / data.n_items
            add(f"fixed k={k}, MV", per_item, accuracy(majority(data, used), data.truth))
            add(f"fixed k={k}, DS", per_item, accuracy(fit_ds(data, used).label_codes_, data.truth))
        for number, variant in enumerate(variants):
            max_k, min_k, skill_min, method = variant
            used, refits, checks = replay_adaptive(data, table[:, :max_k], rng, target, default_accuracy,
                                                   shrinkage, refit_share, check=(seed == 0 and number == 0),
                                                   min_overlap=min_k, skill_min_answers=skill_min, method=method)
            refits_total += refits if number == 0 else 0
            checks_total += checks
            add(variant_name(target, variant), len(used) / data.n_items,
                accuracy(fit_ds(data, used, method).label_codes_, data.truth))
        add(f"fixed k={MAX_OVERLAP}, default ({quality.DEFAULT_METHOD})", len(table[:, :MAX_OVERLAP][table[:, :MAX_OVERLAP] >= 0]) / data.n_items,
            accuracy(fit_ds(data, table[:, :MAX_OVERLAP][table[:, :MAX_OVERLAP] >= 0], "default").label_codes_, data.truth))
    everything = np.arange(data.n_answers)
    reference = (data.n_answers / data.n_items, accuracy(fit_ds(data, everything).label_codes_, data.truth))
    summary = {policy: tuple(np.mean(values, axis=0)) for policy, values in rows.items()}
    spread = {policy: float(np.std([v[1] for v in values])) for policy, values in rows.items()}
    return {"summary": summary, "spread": spread, "all_answers_ds": reference,
            "refits": refits_total / seeds, "checks": checks_total}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="bluebirds only, 2 seeds, first variant")
    parser.add_argument("--datasets", help="comma-separated (default: " + ",".join(DATASETS) + ")")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--target", type=float, default=0.95, help="stop when P(top) >= target")
    parser.add_argument("--default-accuracy", type=float, default=0.7)
    parser.add_argument("--shrinkage", type=float, default=2.0,
                        help="pseudo-answers at the default accuracy added to each annotator's DS skill")
    parser.add_argument("--refit-share", type=float, default=0.10, help="re-fit every this share of the budget")
    parser.add_argument("--variants", default="5:1:1,10:2:2,5:2:2:default",
                        help="adaptive variants MAX:MIN:SKILLMIN[:ds|default]: max overlap (capped by the item's answers), "
                             "min overlap, min collected answers of an item for it to enter the skill fit")
    parser.add_argument("--output", help="also write the markdown to this file")
    args = parser.parse_args(argv)
    variants = parse_variants(args.variants)
    if args.quick:
        variants = variants[:1]
    require_datasets()
    names = args.datasets.split(",") if args.datasets else (["bluebirds"] if args.quick else DATASETS)
    seeds = 2 if args.quick else args.seeds

    lines: list[str] = []
    emit = lines.append
    emit(f"Machine: {machine_description()}.  ")
    emit(f"{seeds} seeds (random arrival order per item and seed); max overlap {MAX_OVERLAP}; adaptive target "
         f"P(top) >= {args.target:g}, DS re-fit every {100 * args.refit_share:g}% of the budget, default accuracy "
         f"{args.default_accuracy:g}, shrinkage {args.shrinkage:g} pseudo-answers. Cells: answers per item / "
         "accuracy (%) on items with truth, mean over seeds.")
    emit("")
    results = {}
    started = time.perf_counter()
    for name in names:
        data = load_categorical(name)
        results[name] = run_dataset(data, seeds, args.target, args.default_accuracy, args.shrinkage,
                                    args.refit_share, variants)
    wall = time.perf_counter() - started
    policies = list(next(iter(results.values()))["summary"])
    emit("| policy | " + " | ".join(names) + " | mean |")
    emit("|---|" + "---:|" * (len(names) + 1))
    for policy in policies:
        cells = [results[n]["summary"][policy] for n in names]
        mean = np.mean(cells, axis=0)
        emit(f"| {policy} | " + " | ".join(f"{a:.2f} / {100 * b:.2f}" for a, b in cells)
             + f" | {mean[0]:.2f} / {100 * mean[1]:.2f} |")
    cells = [results[n]["all_answers_ds"] for n in names]
    emit("| all answers, DS (reference) | " + " | ".join(f"{a:.1f} / {100 * b:.2f}" for a, b in cells) + " | |")
    emit("")
    emit(f"Re-fits per adaptive replay: " + ", ".join(f"{n} {results[n]['refits']:.1f}" for n in names)
         + f"; {sum(r['checks'] for r in results.values())} item posteriors cross-checked against "
         f"`item_posterior`; wall time {wall:.0f} s.")
    emit("")
    emit("```")
    for variant in variants:
        adaptive = variant_name(args.target, variant)
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
