"""The console's Models page in real Chromium: a manager trains the project model with the button
(the server embeds and fits it), sees the version with its held-out accuracy and ECE, the
label-error audit ranked (a planted wrong label near the top), turns auto-labeling on, and sees
the worker's error when the embedder fails."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from goldlabel.demo import _reviews_with_truth
from goldlabel.models import model_skill
from goldlabel.services import models as model_service
from goldlabel.services import review as review_service
from goldlabel.storage.engine import read_tx, write_tx
from goldlabel.storage.models import set_model_annotator, update_state
from goldlabel.storage.tables import items

pytestmark = pytest.mark.browser

SCHEMA = {"questions": [{"name": "sentiment", "kind": "choice", "labels": ["positive", "negative", "neutral"]}]}
WRONG = {"positive": "negative", "negative": "neutral", "neutral": "positive"}


def test_manager_trains_and_reads_the_models_page(page, server, ui):
    project = server.make_project(SCHEMA)
    pid, manager = project["id"], project["manager"]
    reviews = _reviews_with_truth(160, 11, 0)
    server.add_items(project, [{"external_id": r["external_id"], "data": r["data"]} for r, _ in reviews])
    with read_tx(server.ctx.engine) as conn:
        ids = dict(conn.execute(sa.select(items.c.external_id, items.c.id).where(items.c.project_id == pid)).all())
    for n, (row, truth) in enumerate(reviews[:140]):
        label = WRONG[truth] if n < 4 else truth  # four planted label errors
        review_service.review_item(server.ctx, manager, pid, ids[row["external_id"]], "fix", {"sentiment": label})

    ui.login(manager, f"/console/projects/{pid}/models")
    assert "No model yet" in page.inner_text("[data-testid=versions-table]")
    page.click("[data-testid=train-model]")
    row = page.wait_for_selector("[data-testid=versions-table] tbody tr[data-version]", timeout=120_000)
    assert "current" in row.inner_text()
    accuracy = float(page.inner_text("[data-testid=model-accuracy]").rstrip("%"))
    assert accuracy >= 60, accuracy  # the majority class is about half
    issues = page.query_selector_all("[data-testid=label-issues-table] tbody tr[data-issue]")
    flagged = [r.get_attribute("data-issue") for r in issues]
    planted = {str(ids[row["external_id"]]) for row, _ in reviews[:4]}
    assert planted & set(flagged[:10]), flagged

    page.click("[data-testid=toggle-auto-label]")
    page.wait_for_selector("[data-testid=toggle-auto-label][data-on=true]")
    assert page.inner_text("[data-testid=auto-label-state]") == "on"
    ui.screenshot("console-models")

    # the model as an annotator (a skill as the re-fit stores it) and active learning on
    skill = model_skill(np.full((6, 3, 3), 0.05) + np.eye(3) * 0.85, np.array([0.5, 0.6, 0.7, 0.8, 0.9, 0.97]),
                        np.array([0, 3, 8, 20, 41, 60]), np.arange(6))
    with write_tx(server.ctx.engine) as conn:
        set_model_annotator(conn, pid, {"question": "sentiment", "fitted_at": 1, **skill}, 1)
    model_service.update_settings(server.ctx, None, pid,
                                  {"auto_label": False, "active_learning": "uncertainty_diversity"})
    page.reload()
    table = page.inner_text("[data-testid=model-annotator-table]")
    assert "0.99–1.00" in table and "97.0%" in table and "60" in table
    assert "uncertainty_diversity" in page.inner_text("[data-testid=active-learning]")
    ui.screenshot("console-models-annotator")

    # a failing embedder: the page says so, the annotators go on
    with write_tx(server.ctx.engine) as conn:
        update_state(conn, pid, last_error="the embedder could not be loaded: no model.onnx", last_error_at=1)
    page.reload()
    assert "no model.onnx" in page.inner_text("[data-testid=model-error]")
