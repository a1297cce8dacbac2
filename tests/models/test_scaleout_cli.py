"""`goldlabel models embed|predict|audit PROJECT` without --ray: the whole-project passes in
process (services/model_scaleout.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from click.testing import CliRunner

from goldlabel.cli import cli
from goldlabel.services import model_scaleout
from goldlabel.services import models as model_service
from goldlabel.storage.engine import write_tx
from goldlabel.storage.tables import embeddings, label_issues, predictions
from tests.models.test_scaleout import _embedder
from tests.services.test_model_worker import _label, _project


def _cli(database_url: str, *args: str) -> str:
    out = CliRunner().invoke(cli, ["--database", database_url, "models", *args], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    return out.output


def test_passes_from_the_command_line(factory, ctx, database_url):
    _embedder()
    project, truth = _project(factory, 60)
    pid = project["id"]
    ids = sorted(truth)
    _label(factory, project, truth, ids[:36])
    _label(factory, project, truth, ids[36:42], wrong=True)
    # before any version: the embed pass runs, predict and audit say there is nothing to use
    first = json.loads(_cli(database_url, "embed", str(pid), "--json"))
    assert (first["embedded"], first["texts"], first["executor"]) == (60, 60, "InProcess")
    assert "no model version yet" in _cli(database_url, "predict", str(pid))
    summary = model_service.process_project(ctx, pid, train=True)
    assert summary["embedded"] == 0 and summary["trained"] is not None  # the pass's vectors served
    issues = model_service.label_audit(ctx, None, pid, 100)
    with write_tx(ctx.engine) as conn:
        conn.execute(label_issues.delete().where(label_issues.c.project_id == pid))
        conn.execute(embeddings.delete().where(embeddings.c.item_id.in_(ids[50:])))
        conn.execute(predictions.delete().where(predictions.c.item_id.in_(ids[50:])))
    assert "embedded: 10" in _cli(database_url, "embed", str(pid))
    # only the items without a prediction of the version, the calibration slice left out
    sliced = model_service.in_slice(ctx, ids[50:], model_service.status(ctx, None, pid)["settings"])
    assert json.loads(_cli(database_url, "predict", str(pid), "--json"))["predicted"] == 10 - sliced.sum()
    rows = json.loads(_cli(database_url, "audit", str(pid), "--run", "--json"))
    # the labels the pass flags: human finals, among them wrong ones (the training run's list may
    # rank otherwise: its folds follow the order the database returns the vectors in)
    flagged = {r["item_id"] for r in rows}
    assert issues and flagged and flagged <= set(ids[:42]) and flagged & set(ids[36:42])
    # the project is claimed while a pass runs: a second process is told so
    with write_tx(ctx.engine) as conn:
        assert model_scaleout.model_store.claim_project(conn, pid, 0, 10**15)
    out = CliRunner().invoke(cli, ["--database", database_url, "models", "embed", str(pid), "--wait", "1.5"])
    assert out.exit_code == 1 and "another process" in out.output
