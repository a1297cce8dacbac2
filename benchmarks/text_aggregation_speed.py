"""ROVER, RASA and HRRASA: goldlabel against crowd-kit on the same simulated answers.

    python benchmarks/text_aggregation_speed.py [--crowdkit PYTHON] [--long-tasks 20] [--wer]

Short answers: 2,000 tasks x 10 answers of 8-25 words (a 3,000-word vocabulary, 20% of the
words replaced, 5% dropped), 64-dim hashed bag-of-words embeddings for RASA / HRRASA. Long
answers: ``--long-tasks`` tasks x 10 answers of about 190 words, ROVER only. With ``--crowdkit``
(a python with crowd-kit 1.4.2, e.g. ``.venv-crowdkit/bin/python``) the same script runs there
too and the outputs are compared (HRRASA's are not expected to match: the default output
similarities differ, docs/quality.md). Prints seconds per method and the load average. With
``--wer``, also the word error rate on the CrowdWSA sets of ``$GOLDLABEL_DATASETS`` (default
``../shared/datasets``): ROVER with two tokenizers, the plain medoid and a random answer.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
import zlib

import numpy as np
import pandas as pd


def short_answers() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    vocab = np.array([f"w{i}" for i in range(3000)])
    rows = []
    for t in range(2000):
        ref = rng.choice(vocab, rng.integers(8, 25))
        for _ in range(10):
            words = [x if rng.random() > 0.2 else rng.choice(vocab) for x in ref if rng.random() > 0.05]
            rows.append((f"t{t}", f"a{rng.integers(0, 200)}", " ".join(words)))
    return pd.DataFrame(rows, columns=["task", "worker", "text"])


def long_answers(n_tasks: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    vocab = np.array([f"w{i}" for i in range(500)])
    rows = []
    for t in range(n_tasks):
        ref = rng.choice(vocab, 200)
        for w in range(10):
            words = [x if rng.random() > 0.2 else rng.choice(vocab) for x in ref if rng.random() > 0.05]
            rows.append((f"t{t}", f"a{w}", " ".join(words)))
    return pd.DataFrame(rows, columns=["task", "worker", "text"])


def encode(text: str) -> np.ndarray:
    v = np.zeros(64)
    for w in text.split():
        v[zlib.crc32(w.encode()) % 64] += 1.0
    return v


def digest(values: list[str]) -> str:
    return hashlib.md5("|".join(values).encode()).hexdigest()[:12]


def run(side: str, long_tasks: int) -> dict[str, tuple[float, str]]:
    if side == "crowdkit":
        from crowdkit.aggregation import HRRASA, RASA, ROVER
    else:
        from goldlabel.quality import HRRASA, RASA, ROVER
    out: dict[str, tuple[float, str]] = {}
    short = short_answers()
    for name, data in (("rover_short", short), ("rover_long", long_answers(long_tasks))):
        t0 = time.perf_counter()
        texts = ROVER(lambda s: s.split(" "), " ".join).fit_predict(data)
        out[name] = (time.perf_counter() - t0, digest(texts.tolist()))
    emb = short.rename(columns={"text": "output"}).drop_duplicates(["task", "worker"])
    emb["embedding"] = emb["output"].map(encode)
    for name, model in (("rasa", RASA()), ("hrrasa", HRRASA())):
        t0 = time.perf_counter()
        result = model.fit_predict(emb)
        out[name] = (time.perf_counter() - t0, digest(result["output"].tolist()))
    return out


def wer_table() -> None:
    from pathlib import Path

    from goldlabel.quality import ROVER
    from goldlabel.quality.text import TextMedoid, compute_wer, normalize_words

    root = Path(os.environ.get("GOLDLABEL_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    print("| set | ROVER, split on spaces | ROVER, `normalize_words` | medoid | random answer |")
    print("|---|---|---|---|---|")
    for name in ("crowdwsa2019_t1", "crowdwsa2019_t2", "crowdwsa2019_j1"):
        answers = pd.read_csv(root / name / "answers.csv", dtype=str, keep_default_na=False)
        truth = pd.read_csv(root / name / "truth.csv", dtype=str).set_index("item")["label"]
        data = answers.rename(columns={"item": "task", "label": "text"})
        rates = []
        for tokenizer in (lambda s: s.split(" "), normalize_words):
            texts = ROVER(tokenizer, " ".join).fit_predict(data)
            rates.append(compute_wer(list(texts[truth.index]), list(truth)))
        item, items = pd.factorize(answers["item"])
        worker, _ = pd.factorize(answers["worker"])
        medoid = dict(zip(items, TextMedoid().fit(item, worker, list(answers["label"])).texts_, strict=True))
        rates.append(compute_wer([medoid[i] for i in truth.index], list(truth)))
        # a random answer's expected rate: every answer against its task's truth
        rates.append(compute_wer(list(answers["label"]), list(truth[answers["item"]])))
        print(f"| {name} | " + " | ".join(f"{r:.3f}" for r in rates) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--crowdkit", help="a python with crowd-kit 1.4.2 installed")
    parser.add_argument("--long-tasks", type=int, default=20)
    parser.add_argument("--wer", action="store_true", help="also the word error rates on CrowdWSA")
    parser.add_argument("--side", default="goldlabel", choices=["goldlabel", "crowdkit"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side == "crowdkit":
        print(json.dumps(run("crowdkit", args.long_tasks)))
        return 0
    ours = run("goldlabel", args.long_tasks)
    theirs = {}
    if args.crowdkit:
        done = subprocess.run([args.crowdkit, __file__, "--side", "crowdkit", "--long-tasks", str(args.long_tasks)],
                              capture_output=True, text=True, check=True)
        theirs = json.loads(done.stdout)
    print(f"load average {os.getloadavg()[0]:.1f}; 20,000 short answers, {args.long_tasks} long tasks")
    for name, (seconds, result) in ours.items():
        line = f"{name:12s} goldlabel {seconds:7.2f} s"
        if name in theirs:
            their_s, their_result = theirs[name]
            line += f"   crowd-kit {their_s:7.2f} s   same result: {result == their_result}"
        print(line)
    if args.wer:
        wer_table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
