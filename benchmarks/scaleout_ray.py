"""The embedding pass in process vs on a local Ray instance (goldlabel.models.scaleout), the same
texts and batches, texts per second, in the same run.

    python benchmarks/scaleout_ray.py [--texts 2000] [--num-cpus 2] [--batch 256]

Texts: the halves of zheng_product's product-pair texts (short product names), as
benchmarks/embedding_throughput.py uses. In process: one embedder with 1 ONNX Runtime thread
(the platform's worker setting), then with N threads (the same CPUs as Ray's). On Ray:
``ray.init(num_cpus=N)``, one task per batch, each worker building its own embedder (1 thread)
once; Ray's start is timed apart, and the Ray pass runs twice (the first pays for starting the
workers and loading the model in each). Both passes must give the same int8 vectors; the load
average is printed with the results: the machine is shared.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _datasets import datasets_dir, machine_description, require_datasets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    require_datasets()
    import ray

    from goldlabel.models.scaleout import InProcess, MiniLMFiles, RayExecutor, embed_pass

    with (datasets_dir() / "zheng_product" / "texts.csv").open(newline="", encoding="utf-8") as f:
        texts = [h for r in csv.DictReader(f) for h in r["text"].split(" || ", 1)][:args.texts]
    print(machine_description())
    print(f"load average at the start: {os.getloadavg()}")
    embed_pass(texts[:64], InProcess(), batch_size=64)  # load the model once, as a worker has
    started = time.perf_counter()
    q, scale = embed_pass(texts, InProcess(), batch_size=args.batch)
    local_s = time.perf_counter() - started
    two_threads = MiniLMFiles(threads=args.num_cpus)  # the fair comparison: the same CPUs in one process
    embed_pass(texts[:64], InProcess(), embedder=two_threads, batch_size=64)
    started = time.perf_counter()
    embed_pass(texts, InProcess(), embedder=two_threads, batch_size=args.batch)
    threads_s = time.perf_counter() - started
    started = time.perf_counter()
    ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    init_s = time.perf_counter() - started
    runs = []
    try:
        executor = RayExecutor()
        for _ in range(2):
            started = time.perf_counter()
            rq, rscale = embed_pass(texts, executor, batch_size=args.batch)
            runs.append(time.perf_counter() - started)
            assert rq.tobytes() == q.tobytes() and rscale.tobytes() == scale.tobytes(), "Ray's vectors differ"
    finally:
        ray.shutdown()
    print(f"load average at the end: {os.getloadavg()}")
    print(f"{len(texts)} texts, batches of {args.batch}; ray.init(num_cpus={args.num_cpus}) took {init_s:.1f} s")
    print("| path | seconds | texts/s |")
    print("|---|---|---|")
    print(f"| in process (1 thread) | {local_s:.1f} | {len(texts) / local_s:.0f} |")
    print(f"| in process ({args.num_cpus} threads) | {threads_s:.1f} | {len(texts) / threads_s:.0f} |")
    for i, seconds in enumerate(runs):
        label = "first pass: workers start, load the model" if i == 0 else "second pass: workers warm"
        print(f"| Ray, {args.num_cpus} CPUs, {label} | {seconds:.1f} | {len(texts) / seconds:.0f} |")
    print("the same int8 vectors on both paths: yes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
