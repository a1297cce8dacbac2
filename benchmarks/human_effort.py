"""Human-effort replay (issue 14, the headline): how many human answers each policy spends for
the accuracy it reaches, replaying a crowd dataset's recorded answers.

    python benchmarks/human_effort.py --dataset DIR [--seeds N] [--json OUT] [--cache-dir D]

DIR: a dataset folder in the layout of ``../shared/datasets`` (answers.csv ``item,worker,label``,
truth.csv ``item,label``, texts.csv ``item,text``; meta.json optional). Items arrive; when the
queue serves an item, an annotator answers by replaying one of the item's recorded answers (a
random order per item and seed); an item with no recorded answer left goes to review.

The decisions are the platform's own functions, in process: the per-answer posterior sums
log likelihoods (as ``goldlabel.quality.item_posterior``) over confusion matrices built as the server builds them
(``goldlabel.quality.consensus.skill_confusions``: stored skills shrunk toward the default annotator by
``skill_prior_answers``; ``goldlabel.quality.consensus.class_prior``), the stopping rule is
``goldlabel.domain.stopping.decide_status`` (what ``services.consensus.decide_after_answer``
calls), and the background re-fit is the default aggregator ``quality.METHODS[DEFAULT_METHOD]``
whose confusions and prior are stored as ``services.refit._refit`` stores them. Settings are
the platform's defaults (target_confidence 0.95, default_annotator_accuracy, skill_prior_answers);
overlap 1..5.

Policies:
* ``fixed3_mv``: the first 3 answers of every item, majority vote (quality.MajorityVote);
* ``fixed5_ds``: the first 5 (all where fewer are recorded), Dawid-Skene (quality.DawidSkene);
* ``adaptive``: adaptive overlap, items served in a random order, re-fit after every batch;
* ``models``: adaptive + the project model (goldlabel.models.ProjectModel on MiniLM embeddings)
  as one more annotator, through the functions the server calls: the re-fit learns its skill
  per confidence band where humans answered (goldlabel.models.add_model_answers, model_skill:
  services.refit), each answer's posterior adds its vote (goldlabel.models.model_log_likelihood)
  and a label no human gave never stops an item (goldlabel.models.decisive_confidence:
  services.consensus); + active learning: the batches are the top of the queue priorities the
  model worker writes (goldlabel.models.active_priorities, policy uncertainty_diversity, a
  diverse cold start before the first model: services.models);
  a uniformly random calibration slice (goldlabel.models.calibration_slice, as services.models
  draws it) is served first, as the platform's queue serves it (active learning ranks the other
  items below it), answered by humans only (the model gives no answer there, nor on audits:
  their labels judge the model);
* ``models_auto``: ``models`` + auto-labeling at target 0.95, delta 0.05
  (goldlabel.models.slice_threshold: the calibration slice's out-of-fold scores only; a later
  round's bound only on the slice items no earlier round would have taken,
  goldlabel.models.taken_earlier), 5% of auto-labels audited by humans
  (goldlabel.models.check_audits can switch it off); with the platform's default
  ``review_calibration_slice`` (services.models): every slice item, once its answers settle it,
  is reviewed, and the bound uses the reviewed slice labels only (a reviewer's label is the
  reference, confidence 1), so auto-labeling starts once 153 slice items are reviewed.
  **The reviewer is simulated from truth**: an expert who gives truth.csv's label, one human
  answer per reviewed slice item (counted in ``human_answers``); a slice item without truth
  stays unreviewed. This assumes the reviewer is always right: the guarantee is against the
  reviewer, so a real reviewer's error rate comes on top of the bound's 1 - target. Truth is
  read for nothing else (and by ``--verbose``'s printout).

Fixed by principle before scoring (never tuned on truth): batch sizes (2% of items, doubling
up to 20%: the re-fit and retrain points), calibration slice (10% of items, at least 2x the 153
items the bound's first test needs, at most half; served first), the logistic
regression on standardised features with its penalty chosen from the human labels
(``C="auto"``), 3 folds, the model's confidence bands, pair features for texts of the form
"A || B" (cosine + Sentence-BERT's (u*v, |u-v|)). One exception, reported: a first look at
zheng_product (C = 1 vs 0.01 vs 0.001 against truth on a 2,000/2,000 split) showed the fixed
C = 1 overfitting 768 pair features; that look led to ``C="auto"``, which picks C from the
human labels alone.

Output: a table; ``--json OUT`` writes one row per policy and seed:
``{"policy", "seed", "items", "human_answers", "accuracy", "auto_labeled", "auto_accuracy"}``
(accuracy over the items that have truth).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _datasets import require_datasets

from goldlabel import quality
from goldlabel.config import Settings
from goldlabel.domain.stopping import decide_status
from goldlabel.models import (
    DEFAULT_BANDS,
    EmbeddingStore,
    MiniLMEmbedder,
    ProjectModel,
    active_priorities,
    add_model_answers,
    audit_mask,
    calibration_slice,
    check_audits,
    decisive_confidence,
    embed_cached,
    margin_uncertainty,
    model_log_likelihood,
    model_skill,
    model_votes,
    pair_features,
    slice_threshold,
    taken_earlier,
)
from goldlabel.models.autolabel import min_start_count
from goldlabel.quality.consensus import class_prior, posterior_from_scores, skill_confusions
from goldlabel.quality.skill import default_confusion

POLICIES = ["fixed3_mv", "fixed5_ds", "adaptive", "models", "models_auto"]
OVERLAP_MIN, OVERLAP_MAX = 1, 5
TARGET_AUTO, DELTA = 0.95, 0.05
AUDIT_FRACTION = 0.05
CALIBRATION_SHARE = 0.10
VERBOSE = False


# ------------------------------------------------------------------ data


@dataclass
class Dataset:
    name: str
    item: np.ndarray      # answer -> item code
    worker: np.ndarray    # answer -> worker code
    label: np.ndarray     # answer -> class code
    truth: np.ndarray     # item -> class code, -1 unknown
    texts: list[str]      # item -> text ("" when absent)
    classes: list[str]
    n_workers: int

    @property
    def n_items(self) -> int:
        return len(self.truth)

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def _rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def load_dataset(folder: Path) -> Dataset:
    for needed in ("answers.csv", "truth.csv", "texts.csv"):
        if not (folder / needed).is_file():
            raise SystemExit(f"{folder}: {needed} is missing (expected answers.csv, truth.csv, texts.csv)")
    answers = _rows(folder / "answers.csv")
    truth_rows = _rows(folder / "truth.csv")
    meta_path = folder / "meta.json"
    classes = None
    if meta_path.is_file():
        classes = [str(c) for c in json.loads(meta_path.read_text(encoding="utf-8")).get("classes") or []]
    if not classes:
        classes = sorted({r["label"] for r in answers} | {r["label"] for r in truth_rows})
    code = {c: i for i, c in enumerate(classes)}
    bad = next((i for i, r in enumerate(answers) if r["label"] not in code), None)
    if bad is not None:
        raise SystemExit(f"{folder / 'answers.csv'} line {bad + 2}: label {answers[bad]['label']!r} "
                         f"is not one of the classes {classes}")
    item_ids = sorted({r["item"] for r in answers})
    item_code = {v: i for i, v in enumerate(item_ids)}
    worker_ids = sorted({r["worker"] for r in answers})
    worker_code = {v: i for i, v in enumerate(worker_ids)}
    truth = np.full(len(item_ids), -1, dtype=np.int64)
    for r in truth_rows:
        if r["item"] in item_code and r["label"] in code:
            truth[item_code[r["item"]]] = code[r["label"]]
    texts = [""] * len(item_ids)
    for r in _rows(folder / "texts.csv"):
        if r["item"] in item_code:
            texts[item_code[r["item"]]] = r["text"] or ""
    return Dataset(
        folder.name,
        np.array([item_code[r["item"]] for r in answers], dtype=np.int64),
        np.array([worker_code[r["worker"]] for r in answers], dtype=np.int64),
        np.array([code[r["label"]] for r in answers], dtype=np.int64),
        truth, texts, classes, len(worker_ids),
    )


def embed_items(data: Dataset, cache_dir: Path, threads: int) -> np.ndarray:
    """Item features: MiniLM embeddings (cached by content hash + model id); for texts of the
    form "A || B" (every text), the pair features of A's and B's embeddings."""
    embedder = MiniLMEmbedder(threads=threads)
    store = EmbeddingStore(cache_dir / "embeddings" / embedder.model_id, embedder.model_id, embedder.dim)
    started = time.perf_counter()
    paired = all(" || " in t for t in data.texts)
    if paired:
        halves = [t.split(" || ", 1) for t in data.texts]
        vectors = embed_cached([h for pair in halves for h in pair], embedder, store)
        features = pair_features(vectors[0::2], vectors[1::2])
    else:
        features = embed_cached(data.texts, embedder, store)
    print(f"features: {features.shape} ({'pair' if paired else 'text'} embeddings, "
          f"{time.perf_counter() - started:.1f} s incl. cache)", flush=True)
    return features


# ------------------------------------------------------------------ the platform's decisions


class Platform:
    """The per-answer posterior, the stopping rule and the background re-fit, as the server
    runs them, over one replay's answers."""

    def __init__(self, data: Dataset, rng: np.random.Generator, n_bands: int = 0) -> None:
        settings = Settings()
        self.data, self.rng = data, rng
        self.default_accuracy = settings.default_annotator_accuracy
        self.prior_answers = settings.skill_prior_answers
        self.target = 0.95  # ProjectSettings' target_confidence default
        k = data.n_classes
        self.n_bands = n_bands
        self.model_codes = data.n_workers + np.arange(n_bands)
        # arrival order: each item's recorded answers in a random order
        key = rng.random(len(data.item))
        order = np.lexsort((key, data.item))
        starts = np.searchsorted(data.item[order], np.arange(data.n_items))
        rank = np.arange(len(order)) - starts[data.item[order]]
        self.available = np.bincount(data.item, minlength=data.n_items)
        self.table = np.full((data.n_items, max(int(self.available.max()), 1)), -1, dtype=np.int64)
        self.table[data.item[order], rank] = order
        self.count = np.zeros(data.n_items, dtype=np.int64)      # human answers collected
        self.served = np.zeros(data.n_items, dtype=bool)
        self.status = np.full(data.n_items, "new", dtype="<U12")
        self.model_label = np.full(data.n_items, -1, dtype=np.int64)  # model's answer (-1: none)
        self.model_band = np.zeros(data.n_items, dtype=np.int64)
        self.model_probas = np.zeros((data.n_items, k))
        self.confusions = np.broadcast_to(default_confusion(self.default_accuracy, k),
                                          (data.n_workers + n_bands, k, k)).copy()
        self.prior = class_prior(None, k)[0]
        self.consensus = np.zeros((data.n_items, k))
        self.model_skill: dict | None = None  # the model's learned skill as an annotator

    def used_answers(self) -> np.ndarray:
        steps = np.arange(self.table.shape[1])
        mask = steps[None, :] < self.count[:, None]
        return self.table[mask]

    def refit(self) -> None:
        """services.refit._refit: the default aggregator over every collected answer (and the
        model's answers, on items humans answered), stored skills, confusions and prior."""
        data, k = self.data, self.data.n_classes
        used = self.used_answers()
        if len(used) == 0:
            return
        answers = quality.from_codes(data.item[used], data.worker[used], data.label[used],
                                     n_items=data.n_items, n_annotators=data.n_workers, n_labels=k)
        if self.n_bands:
            scored = self.model_label >= 0
            answers, codes = add_model_answers(answers, self.model_probas, DEFAULT_BANDS, scored=scored)
            assert (codes == self.model_codes).all()
        estimator = quality.METHODS[quality.DEFAULT_METHOD]()
        estimator.fit(answers)
        probas = np.asarray(estimator.probas_)
        answered = np.bincount(answers.item, minlength=data.n_items) > 0
        self.consensus[answered] = probas[answered]
        skills = np.asarray(estimator.skills_, dtype=np.float64)
        confusions = np.asarray(estimator.confusions_)
        per_annotator = np.bincount(answers.annotator, minlength=answers.n_annotators)
        seen = np.flatnonzero(per_annotator > 0)
        rows = [{"accuracy": float(skills[a]), "confusion": np.round(confusions[a], 6).tolist(),
                 "n_answers": int(per_annotator[a])} for a in seen]
        fresh = np.broadcast_to(default_confusion(self.default_accuracy, k),
                                self.confusions.shape).copy()
        fresh[seen] = skill_confusions(rows, k, self.default_accuracy, self.prior_answers)
        self.confusions = fresh
        if self.n_bands:  # stored as services.refit stores it; read per answer by model_log_likelihood
            self.model_skill = model_skill(confusions, skills, per_annotator, self.model_codes)
        self.prior = class_prior(probas[answered].mean(axis=0).tolist(), k)[0]

    def serve(self, items: np.ndarray) -> None:
        """Humans answer ``items`` one answer at a time until the stopping rule says final or
        review (or the item's recorded answers run out: review)."""
        data = self.data
        items = np.asarray(items, dtype=np.int64)
        self.served[items] = True
        self.status[items] = "open"
        target = np.full(len(items), OVERLAP_MIN, dtype=np.int64)
        active = np.arange(len(items))
        while len(active):
            it = items[active]
            out = self.count[it] >= self.available[it]
            self.status[it[out]] = "needs_review"
            active, it = active[~out], it[~out]
            if not len(active):
                break
            self.count[it] += 1
            confidence = np.empty(len(it))
            for j, i in enumerate(it.tolist()):  # the per-answer update, item by item
                rows = self.table[i, :self.count[i]]
                annotators, labels = data.worker[rows], data.label[rows]
                # as services.consensus.item_consensus: humans' log likelihoods, the prior, and
                # the model's vote with its band's learned skill
                with np.errstate(divide="ignore"):
                    scores = np.log(self.prior) + np.log(self.confusions[annotators, :, labels]).sum(axis=0)
                voted = self.model_label[i] >= 0 and self.model_skill is not None
                if voted:
                    scores = scores + model_log_likelihood(
                        self.model_skill, int(self.model_label[i]), float(self.model_probas[i].max()),
                        data.n_classes, self.default_accuracy, self.prior_answers)
                posterior = posterior_from_scores(scores, self.prior)
                top = int(posterior.argmax())
                confidence[j] = decisive_confidence(posterior[top:top + 1], np.array([voted]),
                                                    np.array([bool((labels == top).any())]))[0]
            status, new_target = decide_status(self.count[it], confidence, target[active],
                                               OVERLAP_MIN, OVERLAP_MAX, self.target)
            target[active] = new_target
            self.status[it] = status
            active = active[status == "open"]

    def give_model_answers(self, items: np.ndarray, probas: np.ndarray) -> None:
        """The model answers ``items`` (before humans do) with its prediction at this moment."""
        label, band = model_votes(probas, DEFAULT_BANDS)
        self.model_label[items], self.model_band[items] = label, band
        self.model_probas[items] = probas


# ------------------------------------------------------------------ policies


def accuracy(labels: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    known = truth >= 0 if mask is None else (truth >= 0) & mask
    return float((labels[known] == truth[known]).mean()) if known.any() else float("nan")


def run_fixed(data: Dataset, seed: int, k: int, method: str) -> dict:
    platform = Platform(data, np.random.default_rng(seed))
    platform.count = np.minimum(platform.available, k)
    used = platform.used_answers()
    answers = quality.from_codes(data.item[used], data.worker[used], data.label[used],
                                 n_items=data.n_items, n_annotators=data.n_workers,
                                 n_labels=data.n_classes)
    model = quality.MajorityVote() if method == "mv" else quality.DawidSkene()
    labels = np.asarray(model.fit(answers).probas_).argmax(axis=1)
    return {"human_answers": len(used), "accuracy": accuracy(labels, data.truth),
            "auto_labeled": 0, "auto_accuracy": None}


def batch_sizes(n: int) -> list[int]:
    """2% of the items, doubling up to 20%, then 20% at a time (the re-fit / retrain points)."""
    sizes, size, total = [], max(50, math.ceil(0.02 * n)), 0
    while total < n:
        size = min(size, n - total)
        sizes.append(size)
        total += size
        size = min(2 * size, max(50, math.ceil(0.20 * n)))
    return sizes


def run_adaptive(data: Dataset, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    platform = Platform(data, rng)
    order = rng.permutation(data.n_items)
    position = 0
    for size in batch_sizes(data.n_items):
        platform.serve(order[position:position + size])
        position += size
        platform.refit()
    labels = platform.consensus.argmax(axis=1)
    return {"human_answers": int(platform.count.sum()), "accuracy": accuracy(labels, data.truth),
            "auto_labeled": 0, "auto_accuracy": None}


def run_models(data: Dataset, features: np.ndarray, seed: int, auto: bool) -> dict:
    rng = np.random.default_rng(seed)
    n, k = data.n_items, data.n_classes
    platform = Platform(data, rng, n_bands=len(DEFAULT_BANDS))
    # the calibration slice as the platform draws it (goldlabel.models.calibration_slice: a keyed
    # hash of the item id, here keyed by the seed), reserved for humans whatever the policy says
    fraction = min(0.5, max(CALIBRATION_SHARE, 2 * min_start_count(TARGET_AUTO, DELTA) / n))
    is_cal = calibration_slice(np.arange(n), hashlib.blake2b(f"slice:{seed}".encode()).digest()[:32], fraction)
    calibration = np.flatnonzero(is_cal)
    n_cal = len(calibration)
    cal_next = 0
    auto_label = np.full(n, -1, dtype=np.int64)     # the model's label on auto-labeled items
    # review_calibration_slice (services.models, on by default with auto-labeling): each slice
    # item, once settled, goes to review; the simulated reviewer is an expert who gives the
    # truth label (one human answer); the bound is then taken on reviewed slice labels only
    review_slice = auto
    reviewed = np.zeros(n, dtype=bool)
    audits: list[int] = []                          # auto-labeled items sent to humans
    auto_on, pending_audits = auto, np.zeros(0, dtype=np.int64)
    model: ProjectModel | None = None
    probas_all = None
    fits = 0
    rounds: list[tuple[np.ndarray, float]] = []   # (the round's model's scores on the slice, its threshold)
    for size in batch_sizes(n):
        free = ~platform.served & (auto_label < 0) & ~is_cal
        n_free_cal = n_cal - cal_next
        if not free.any() and n_free_cal == 0 and not len(pending_audits):
            break
        # the platform's queue serves the slice first (active learning ranks the rest below it)
        take_cal = min(n_free_cal, size)
        chosen_cal = calibration[cal_next:cal_next + take_cal]
        cal_next += take_cal
        room = max(size - take_cal - len(pending_audits), 0)
        candidates = np.flatnonzero(free)
        if room and len(candidates):
            # the model worker's function (services.models.priorities.prioritize): queue priorities from
            # the uncertainty of the model's posterior (unanswered items) and k-center diversity,
            # a diverse cold start before the first model; humans take the top of the queue
            uncertainty = None if probas_all is None else margin_uncertainty(probas_all[candidates])
            labeled = features[platform.served] if probas_all is not None else None
            priority = active_priorities(uncertainty, len(candidates), lambda index, at=candidates: features[at[index]],
                                         policy="uncertainty_diversity", batch=min(room, len(candidates)),
                                         labeled=labeled, rng=rng)
            picked = candidates[np.argsort(-priority, kind="stable")[:room]]
        else:
            picked = np.zeros(0, dtype=np.int64)
        batch = np.concatenate([chosen_cal, picked, pending_audits]).astype(np.int64)
        pending_audits = np.zeros(0, dtype=np.int64)
        if probas_all is not None and len(picked):
            # the model answers first, out of sample (it never trained on them); never on the
            # calibration slice or on audits, whose labels must not lean on the model they judge
            platform.give_model_answers(picked, probas_all[picked])
        platform.serve(batch)
        platform.refit()
        if review_slice:
            reviewed |= review_calibration_items(data, platform, is_cal, reviewed)
            platform.consensus[reviewed] = np.eye(k)[data.truth[reviewed]]  # a review stands over re-fits
        # retrain the project model on the consensus of every served item, weighted by confidence
        # (a reviewed label: the reviewer's, weight 1)
        served = np.flatnonzero(platform.served)
        y = platform.consensus[served].argmax(axis=1)
        if len(np.unique(y)) < 2:
            continue
        model = ProjectModel(n_classes=k, folds=3, seed=seed)
        fit = model.fit(features[served], y, weight=platform.consensus[served].max(axis=1))
        fits += 1
        probas_all = model.predict_proba(features)
        if audits and auto_on:
            audit_items = np.array(audits)
            done = platform.served[audit_items] & (platform.status[audit_items] != "open")
            verdict = check_audits(platform.consensus[audit_items[done]].argmax(axis=1)
                                   == auto_label[audit_items[done]], TARGET_AUTO, DELTA)
            auto_on = verdict.keep_on
        if auto_on:
            cal_served = served[is_cal[served]]
            # each slice label's chance of being right: its humans-only consensus posterior
            # (the model never votes on the slice), as services.models.training passes a
            # consensus's confidence and, as services.models.training does, only the slice items
            # no earlier round would have taken
            # (goldlabel.models.taken_earlier over each auto-labeling round's scores and threshold)
            taken = np.zeros(n, dtype=bool)
            if rounds:
                taken[calibration] = taken_earlier(np.vstack([r[0] for r in rounds]),
                                                   np.array([r[1] for r in rounds]))
            # with review_calibration_slice, only the reviewed slice labels (confidence 1: the
            # reviewer is the reference), as services.models.training.train_version passes them
            usable = is_cal[served] & ~taken[served] & (reviewed[served] if review_slice else True)
            result = slice_threshold(fit.oof_probas.max(axis=1), fit.oof_probas.argmax(axis=1) == y,
                                     usable, target=TARGET_AUTO, delta=DELTA,
                                     label_confidence=platform.consensus[served].max(axis=1))
            if VERBOSE:
                print(f"  served {int(platform.served.sum())}, answers {int(platform.count.sum())}, "
                      f"C={fit.metrics['C']}, oof acc {fit.metrics['oof_accuracy']:.3f}, "
                      f"calibration {len(cal_served)}, threshold {result.threshold}, "
                      f"auto {int((auto_label >= 0).sum())}", file=sys.stderr, flush=True)
                _diagnose(data, platform, fit, y, served, is_cal, probas_all, result, auto_label)
            if result.threshold is not None:
                free = ~platform.served & (auto_label < 0) & ~is_cal
                above = np.flatnonzero(free & (probas_all.max(axis=1) >= result.threshold))
                auto_label[above] = probas_all[above].argmax(axis=1)
                if len(above):  # a round that took items (as a version with auto_labels rows)
                    rounds.append((probas_all[calibration].max(axis=1), result.threshold))
                audit = above[audit_mask(len(above), AUDIT_FRACTION, rng)]
                audits.extend(audit.tolist())
                pending_audits = audit
    # items never served nor auto-labeled (the loop ran out of batches): serve them now
    rest = np.flatnonzero(~platform.served & (auto_label < 0))
    if len(rest) or len(pending_audits):
        if probas_all is not None:
            plain = rest[~is_cal[rest]]
            platform.give_model_answers(plain, probas_all[plain])
        platform.serve(np.concatenate([rest, pending_audits]).astype(np.int64))
        platform.refit()
    if review_slice:
        reviewed |= review_calibration_items(data, platform, is_cal, reviewed)
        platform.consensus[reviewed] = np.eye(k)[data.truth[reviewed]]
    labels = platform.consensus.argmax(axis=1)
    only_auto = (auto_label >= 0) & ~platform.served
    labels[only_auto] = auto_label[only_auto]
    n_auto = int(only_auto.sum())
    return {"human_answers": int(platform.count.sum() + reviewed.sum()), "accuracy": accuracy(labels, data.truth),
            "auto_labeled": n_auto,
            "auto_accuracy": accuracy(labels, data.truth, only_auto) if n_auto else None,
            "model_fits": fits, "auto_on_at_end": bool(auto_on) if auto else None,
            "calibration_items": n_cal, "slice_reviews": int(reviewed.sum())}


def review_calibration_items(data: Dataset, platform: Platform, is_cal: np.ndarray,
                             reviewed: np.ndarray) -> np.ndarray:
    """The slice items the (simulated) reviewer reviews now: served, settled (final or at review)
    and not reviewed before. SIMULATED FROM TRUTH: the reviewer is an expert whose label is
    truth.csv's, one human answer per item; an item without truth is left unreviewed (its
    consensus then never enters the bound). This assumes reviewers who are right; a real
    reviewer's errors weaken the guarantee by as much (the bound is against the reviewer)."""
    settled = platform.served & (platform.status != "open") & is_cal & ~reviewed
    return settled & (data.truth >= 0)


def _diagnose(data, platform, fit, y, served, is_cal, probas_all, result, auto_label) -> None:
    """--verbose: where the bound and the truth part (truth is read here only, never by a decision)."""
    truth = data.truth[served]
    cal = is_cal[served]
    oof_label, oof_score = fit.oof_probas.argmax(axis=1), fit.oof_probas.max(axis=1)
    conf = platform.consensus[served].max(axis=1)
    final = np.mean(platform.status[served][cal] == "final")
    msg = [(f"slice consensus vs truth {np.mean(y[cal] == truth[cal]):.3f} (n {int(cal.sum())}, "
           f"final {final:.2f}, 1 - confidence {np.mean(1 - conf[cal]):.3f})"),
           (f"slice oof vs consensus {np.mean(oof_label[cal] == y[cal]):.3f}, "
           f"vs truth {np.mean(oof_label[cal] == truth[cal]):.3f}")]
    if result.threshold is not None:
        above = cal & (oof_score >= result.threshold)
        soft = 1 - conf[above] * (oof_label[above] == y[above])
        msg.append(f"slice above t: n {int(above.sum())}, oof vs consensus {np.mean(oof_label[above] == y[above]):.3f}"
                   f", vs truth {np.mean(oof_label[above] == truth[above]):.3f}, consensus vs truth "
                   f"{np.mean(y[above] == truth[above]):.3f}, counted error {soft.mean():.3f}")
        free = ~platform.served & (auto_label < 0) & ~is_cal
        new = np.flatnonzero(free & (probas_all.max(axis=1) >= result.threshold))
        right = np.mean(probas_all[new].argmax(axis=1) == data.truth[new]) if len(new) else float("nan")
        msg.append(f"new auto-labels {len(new)} of {int(free.sum())} free, vs truth {right:.3f}")
    print("   " + "; ".join(msg), file=sys.stderr, flush=True)


# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path,
                        help="dataset folder (default: zheng_product in the shared datasets)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="run seeds first..first+seeds-1")
    parser.add_argument("--json", type=Path, help="write one row per policy and seed here")
    parser.add_argument("--cache-dir", type=Path,
                        default=Path(os.environ.get("GOLDLABEL_CACHE", Path.home() / ".cache" / "goldlabel")),
                        help="embedding cache (content hash + model id), outside the repository")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads")
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--verbose", action="store_true",
                        help="progress per batch on stderr, and per retrain where the bound and the truth part "
                             "(truth read for the printout only)")
    args = parser.parse_args(argv)
    global VERBOSE
    VERBOSE = args.verbose
    policies = [p for p in args.policies.split(",") if p]
    unknown = set(policies) - set(POLICIES)
    if unknown:
        parser.error(f"unknown policies {sorted(unknown)}; choose from {POLICIES}")
    if args.dataset is None:  # `make bench` runs every script without arguments
        args.dataset = require_datasets() / "zheng_product"
    data = load_dataset(args.dataset)
    print(f"{data.name}: {data.n_items} items, {len(data.item)} answers, {data.n_workers} workers, "
          f"{data.n_classes} classes, {(data.truth >= 0).sum()} with truth", flush=True)
    features = None
    if any(p.startswith("models") for p in policies):
        features = embed_items(data, args.cache_dir, args.threads)
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for policy in policies:
            started = time.perf_counter()
            if policy == "fixed3_mv":
                row = run_fixed(data, seed, 3, "mv")
            elif policy == "fixed5_ds":
                row = run_fixed(data, seed, 5, "ds")
            elif policy == "adaptive":
                row = run_adaptive(data, seed)
            else:
                row = run_models(data, features, seed, auto=policy == "models_auto")
            row = {"policy": policy, "seed": seed, "items": data.n_items, **row,
                   "seconds": round(time.perf_counter() - started, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print_summary(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


def print_summary(rows: list[dict]) -> None:
    by = {}
    for r in rows:
        by.setdefault(r["policy"], []).append(r)
    mean = {p: (np.mean([r["accuracy"] for r in rs]), np.mean([r["human_answers"] for r in rs]))
            for p, rs in by.items()}
    print(f"\n{'policy':<12} {'accuracy':>9} {'answers':>9} {'vs fixed3':>10} {'vs fixed5':>10} "
          f"{'auto':>6} {'auto acc (min)':>15}")
    for p, rs in by.items():
        acc, ans = mean[p]
        ratio3 = f"{ans / mean['fixed3_mv'][1]:.1%}" if "fixed3_mv" in mean else "-"
        ratio5 = f"{ans / mean['fixed5_ds'][1]:.1%}" if "fixed5_ds" in mean else "-"
        autos = [r["auto_accuracy"] for r in rs if r["auto_accuracy"] is not None]
        print(f"{p:<12} {acc:>9.4f} {ans:>9.0f} {ratio3:>10} {ratio5:>10} "
              f"{np.mean([r['auto_labeled'] for r in rs]):>6.0f} "
              f"{(min(autos) if autos else float('nan')):>15.4f}")


if __name__ == "__main__":
    sys.exit(main())
