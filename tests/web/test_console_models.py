"""The console's Models page in process, on both backends: who may see it, what it shows before a
model exists, and a worker error (escaped) at the top."""

from __future__ import annotations

import httpx
import pytest

from goldlabel.client.transport import ASGIAppTransport
from goldlabel.services import models as model_service
from goldlabel.services.sessions import SESSION_COOKIE, start_session
from goldlabel.storage import models as model_store
from goldlabel.storage.engine import now_ms, write_tx

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def session_as(app):
    made: list[tuple[httpx.Client, ASGIAppTransport]] = []

    def make(actor) -> httpx.Client:
        cookie, session = app.state.web.signer.issue(actor.id)
        start_session(app.state.context, session)
        transport = ASGIAppTransport(app)
        client = httpx.Client(transport=transport, base_url="http://goldlabel.test", cookies={SESSION_COOKIE: cookie})
        made.append((client, transport))
        return client

    yield make
    for client, transport in made:
        client.close()
        transport.close()


def test_models_page_scoping_empty_state_and_error(factory, session_as, ctx):
    annotator = factory.make_user()
    reviewer = factory.make_user("reviewer")
    project = factory.make_project(annotators=[annotator])
    pid = project["id"]
    path = f"/console/projects/{pid}/models"
    assert session_as(factory.make_user("manager")).get(path).status_code == 404  # not a member
    assert session_as(annotator).get(path).status_code == 403
    page = session_as(project["manager"]).get(path)
    assert page.status_code == 200
    assert "No model yet" in page.text and 'data-testid="train-model"' in page.text
    # the model as an annotator (on by default, nothing learned yet), queue order off, no pre-labels yet
    assert "No skill learned yet" in page.text and "Active learning is off" in page.text
    assert 'data-testid="prelabels-table"' in page.text and "No answers recorded yet" in page.text
    assert 'data-testid="nav-models"' in page.text

    model_service.update_settings(ctx, project["manager"], pid, {"min_labels": 30})
    with write_tx(ctx.engine) as conn:
        model_store.update_state(conn, pid, last_error=f"embedder broke: {XSS}", last_error_at=now_ms())
    from goldlabel.services import projects as project_service

    project_service.set_member(ctx, project["manager"], pid, reviewer.id, "reviewer")
    page = session_as(reviewer).get(path)
    assert page.status_code == 200
    assert XSS not in page.text and "embedder broke: &lt;img" in page.text
    assert "once 30 items have final labels" in page.text
    assert 'data-testid="train-model"' not in page.text  # reviewers read, managers act

    # an external model: named on the page with its role (its failures show as the error above)
    assert 'data-testid="external-model"' not in page.text
    model_service.update_settings(ctx, project["manager"], pid, {"external_model": "https://judge.example.com/v1",
                                                                 "external_role": "annotator"})
    page = session_as(reviewer).get(path)
    assert 'data-testid="external-model"' in page.text and "https://judge.example.com/v1" in page.text
    assert "as the annotator" in page.text


def test_models_page_says_auto_labeling_waits_for_reviewed_slice_labels(factory, session_as, ctx):
    schema = {"questions": [{"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"]}]}
    project = factory.make_project(schema=schema)
    pid, manager = project["id"], project["manager"]
    path = f"/console/projects/{pid}/models"
    assert 'data-testid="slice-review"' not in session_as(manager).get(path).text  # auto-labeling off
    model_service.update_settings(ctx, manager, pid, {"auto_label": True})
    page = session_as(manager).get(path).text
    assert 'data-testid="slice-review"' in page and "review_calibration_slice" in page
    assert "needs 153 reviewed slice labels" in page  # min_start_count at target 0.95, delta 0.05
    model_service.update_settings(ctx, manager, pid, {"review_calibration_slice": False})
    assert 'data-testid="slice-review"' not in session_as(manager).get(path).text
