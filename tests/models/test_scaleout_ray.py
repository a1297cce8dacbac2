"""The scale-out passes on a local Ray instance (ray.init(num_cpus=2)) give the in-process
results: the same int8 vectors byte for byte, the same probabilities, the same flagged items;
and, inside the platform on SQLite and PostgreSQL, the same rows where the worker writes them.
Skipped only where Ray is not installed (`make test` installs it: the test extra)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from goldlabel.cli import cli
from goldlabel.models import ProjectModel
from goldlabel.models.scaleout import (
    InProcess,
    RayExecutor,
    audit_pass,
    dequantize_rows,
    embed_pass,
    params_of,
    predict_pass,
)
from goldlabel.services import model_scaleout
from goldlabel.services import models as model_service
from goldlabel.storage.engine import read_tx, write_tx
from goldlabel.storage.tables import embeddings, label_issues, predictions

# Ray Data's own DataContext() sets its deprecated fields in its constructor (ray 2.60): not ours
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*")

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'goldlabel[ray]' (make test installs it)")

from tests.models.test_scaleout import _embedder, labeled_reviews
from tests.services.test_model_worker import _label, _project


@pytest.fixture(scope="module")
def on_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield RayExecutor(window=3)  # several Ray datasets per pass (4 embed batches, 5 folds)
    finally:
        ray.shutdown()


def test_ray_passes_equal_the_in_process_passes(on_ray):
    _embedder()
    texts, _, labels = labeled_reviews(240)
    q, scale = embed_pass(texts, InProcess(), batch_size=64)
    rq, rscale = embed_pass(texts, on_ray, batch_size=64)
    assert rq.tobytes() == q.tobytes() and rscale.tobytes() == scale.tobytes()  # bitwise

    X = dequantize_rows(q, scale)
    fit_model = ProjectModel(3, seed=0)
    fit_model.fit(X[:160], labels[:160])
    params = params_of(fit_model)
    probas = predict_pass(q, params, InProcess(), scales=scale, batch_size=100)
    np.testing.assert_allclose(predict_pass(q, params, on_ray, scales=scale, batch_size=100), probas,
                               rtol=0, atol=1e-6)

    local = audit_pass(X, labels, 3, executor=InProcess())
    remote = audit_pass(X, labels, 3, executor=on_ray)
    np.testing.assert_allclose(remote.oof_probas, local.oof_probas, rtol=0, atol=1e-6)
    assert len(local.issues.indices) > 0
    np.testing.assert_array_equal(remote.issues.indices, local.issues.indices)


def _rows(ctx, table, pid, *cols):
    with read_tx(ctx.engine) as conn:
        return sorted(tuple(r) for r in conn.execute(sa.select(*cols).where(table.c.project_id == pid)))


def _clear(ctx, pid, *tables):
    with write_tx(ctx.engine) as conn:
        for table in tables:
            conn.execute(table.delete().where(table.c.project_id == pid))


def test_project_passes_on_ray_write_what_in_process_writes(factory, ctx, on_ray, database_url):
    _embedder()
    project, truth = _project(factory, 150, duplicates=3)
    pid = project["id"]
    ids = sorted(truth)
    _label(factory, project, truth, ids[:90])
    _label(factory, project, truth, ids[90:100], wrong=True)
    summary = model_service.process_project(ctx, pid, train=True)
    assert summary["trained"] is not None and summary["embedded"] == 153
    worker_vectors = _rows(ctx, embeddings, pid, embeddings.c.item_id, embeddings.c.content_hash,
                           embeddings.c.vector, embeddings.c.scale)
    worker_predictions = _rows(ctx, predictions, pid, predictions.c.item_id, predictions.c.model_version,
                               predictions.c.value, predictions.c.score)
    worker_issues = _rows(ctx, label_issues, pid, label_issues.c.item_id, label_issues.c.rank,
                          label_issues.c.suggested, label_issues.c.self_confidence)
    assert worker_issues  # ten wrong labels: the audit flags some

    results = {}
    for name, executor in (("in_process", InProcess()), ("ray", on_ray)):
        _clear(ctx, pid, embeddings, predictions, label_issues)
        embedded = model_scaleout.run_pass(ctx, pid, "embed", executor)
        # 153 items, 3 of them duplicates of others' text: 150 texts embedded, each once
        assert (embedded["embedded"], embedded["texts"], embedded["reused"]) == (153, 150, 0)
        predicted = model_scaleout.run_pass(ctx, pid, "predict", executor)
        audited = model_scaleout.run_pass(ctx, pid, "audit", executor)
        assert audited["label_issues"] == len(worker_issues)
        results[name] = (
            _rows(ctx, embeddings, pid, embeddings.c.item_id, embeddings.c.content_hash, embeddings.c.vector,
                  embeddings.c.scale),
            _rows(ctx, predictions, pid, predictions.c.item_id, predictions.c.model_version, predictions.c.value,
                  predictions.c.score),
            _rows(ctx, label_issues, pid, label_issues.c.item_id, label_issues.c.rank, label_issues.c.suggested,
                  label_issues.c.self_confidence),
            predicted["predicted"])
        # a second pass has nothing left to do: every item has its vector and the version's prediction
        again = model_scaleout.run_pass(ctx, pid, "embed", executor)
        assert again["embedded"] == again["texts"] == 0
    assert results["ray"] == results["in_process"]
    vectors, preds, issues, n_predicted = results["ray"]
    all_ids = [r[0] for r in vectors]
    sliced = model_service.in_slice(ctx, all_ids, model_service.status(ctx, None, pid)["settings"])
    assert n_predicted == 153 - sliced.sum()  # the calibration slice gets no model output
    # where the worker writes them: one vector per item, under the same content hash
    assert [r[:2] for r in vectors] == [r[:2] for r in worker_vectors]
    # the same label issues as the training run wrote (same folds, same out-of-fold probabilities)
    assert issues == [(i, rank, s, pytest.approx(c, abs=1e-6)) for i, rank, s, c in worker_issues]
    # the worker's predictions of the items it did not train on are the pass's, to 1e-6 (the
    # worker embedded the labeled items in their own batches, so a vector may differ in one int8 step)
    trained = set(ids[:100])
    worker = {r[0]: r for r in worker_predictions if r[0] not in trained}
    mine = {r[0]: r for r in preds if r[0] in worker}
    assert mine.keys() == worker.keys() and len(mine) >= 40
    for item_id, (_, version, value, score) in worker.items():
        assert mine[item_id][1:3] == (version, value)
        assert mine[item_id][3] == pytest.approx(score, abs=1e-3)

    # the command line: `--ray` alone joins the Ray instance this process started (and leaves it up)
    out = CliRunner().invoke(cli, ["--database", database_url, "models", "audit", str(pid), "--ray",
                                   "--limit", "500", "--json"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert sorted((r["item_id"], r["rank"]) for r in json.loads(out.output)) == [r[:2] for r in issues]
    out = CliRunner().invoke(cli, ["--database", database_url, "models", "predict", str(pid), "--ray"],
                             catch_exceptions=False)
    assert out.exit_code == 0 and "predicted: 0" in out.output and "RayExecutor" in out.output, out.output
    assert ray.is_initialized()
