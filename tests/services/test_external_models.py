"""External models on SQLite and PostgreSQL, against a real HTTP receiver on 127.0.0.1 (allow-
listed through ``external_model_allowed_networks``, as the webhook tests allow-list theirs) and a
real Python entry point: predictions become pre-labels (predictor) or the item's model
prediction (annotator); a model that answers malformed, times out or is refused by the outbound
guard leaves the items with the humans, records the error (the status's ``last_error``, a
``model.failed`` event) and never holds up the queue."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from goldlabel.config import Settings
from goldlabel.models import MiniLMEmbedder
from goldlabel.services import models as model_service
from goldlabel.services.context import Context
from goldlabel.services.queue import lease as lease_service
from goldlabel.storage import models as model_store
from goldlabel.storage.engine import read_tx
from goldlabel.storage.tables import events, items, predictions

SCHEMA = {"questions": [{"name": "label", "kind": "choice", "labels": ["yes", "no"]}]}
PLUGIN = '''
def predict(request):
    assert request["version"] == 1
    labels = request["question"]["labels"]
    return {"version": 1, "predictions": [
        {"id": it["id"], "label": labels[it["id"] % 2], "score": 0.9} for it in request["items"]]}
'''


class ModelServer:
    """An external model on 127.0.0.1 speaking the protocol; ``mode`` picks how it answers:
    good, malformed (a label outside the question's), garbage (not JSON), slow (past the
    timeout), error (HTTP 500)."""

    def __init__(self) -> None:
        self.mode = "good"
        self.requests: list[dict] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(request)
                status, body = 200, b""
                if server.mode == "slow":
                    time.sleep(2.0)
                if server.mode == "error":
                    status = 500
                elif server.mode == "garbage":
                    body = b"<html>oops</html>"
                else:
                    labels = request["question"]["labels"]
                    label = (lambda i: "maybe") if server.mode == "malformed" else (lambda i: labels[i % 2])
                    body = json.dumps({"version": 1, "predictions": [
                        {"id": it["id"], "label": label(it["id"]), "score": 0.8} for it in request["items"]]}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the caller gave up (timeout)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/predict"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    s = ModelServer()
    yield s
    s.close()


@pytest.fixture
def settings(database_url: str, tmp_path: Path, monkeypatch) -> Settings:
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir()
    (plugin_dir / "gl_test_judge.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(plugin_dir))
    return Settings(database_url=database_url, secret_key="test-secret", media_dir=str(tmp_path / "media"),
                    totp_key_file=str(tmp_path / "totp.key"), external_model_allowed_networks="127.0.0.1/32",
                    external_model_timeout_s=0.5, external_model_retries=1,
                    external_models="judge=gl_test_judge:predict, broken=gl_test_judge:missing")


def _project(factory, ctx, n: int = 30):
    ctx.model_embedder_factory = lambda: MiniLMEmbedder(threads=1)
    annotator = factory.make_user()
    project = factory.make_project(schema=SCHEMA, annotators=[annotator], settings={"show_predictions": True})
    factory.add_items(project, n)
    with read_tx(ctx.engine) as conn:
        ids = [r[0] for r in conn.execute(sa.select(items.c.id).where(items.c.project_id == project["id"])
                                          .order_by(items.c.id))]
    return project, annotator, ids


def _predictions(ctx, pid: int, version: str) -> dict[int, tuple[str, float]]:
    with read_tx(ctx.engine) as conn:
        return {i: (v["label"], s) for i, v, s in conn.execute(
            sa.select(predictions.c.item_id, predictions.c.value, predictions.c.score)
            .where(predictions.c.project_id == pid, predictions.c.model_version == version))}


def _failures(ctx, pid: int) -> list[str]:
    with read_tx(ctx.engine) as conn:
        return [p["error"] for k, p in conn.execute(sa.select(events.c.kind, events.c.payload)
                                                    .where(events.c.project_id == pid)) if k == "model.failed"]


def test_an_http_model_pre_labels_through_the_guard(factory, ctx, model_server):
    project, annotator, ids = _project(factory, ctx)
    pid, api = project["id"], factory.api_as(project["manager"])
    res = api.patch(f"/api/v1/projects/{pid}/models/settings",
                    json={"external_model": model_server.url, "external_batch": 8, "calibration_fraction": 0.2})
    assert res.status_code == 200, res.text
    settings = res.json()["settings"]
    summary = model_service.process_project(ctx, pid)
    sliced = {i for i, s in zip(ids, model_service.in_slice(ctx, ids, settings).tolist()) if s}
    expected = [i for i in ids if i not in sliced]
    assert summary["external_predicted"] == len(expected) and "external_error" not in summary, summary
    got = _predictions(ctx, pid, "external:" + model_server.url)
    assert sorted(got) == expected  # every open item but the calibration slice's
    assert all(got[i] == (["yes", "no"][i % 2], 0.8) for i in expected)
    first = model_server.requests[0]
    assert first["version"] == 1 and first["question"] == {"name": "label", "labels": ["yes", "no"]}
    it = first["items"][0]
    assert len(first["items"]) == 8 and it == {"id": expected[0], "data": {"text": f"item {ids.index(it['id'])}"}}
    assert {it["id"] for r in model_server.requests for it in r["items"]} == set(expected)
    # a second pass asks nothing: every item it can predict has its prediction
    asked = len(model_server.requests)
    assert model_service.process_project(ctx, pid)["external_predicted"] == 0
    assert len(model_server.requests) == asked
    # the workspace shows it as a pre-label
    lease = lease_service.lease_next(ctx, annotator, pid)
    versions = {p["model_version"] for p in lease["item"]["predictions"]}
    assert "external:" + model_server.url in versions or factory.item_id(annotator, pid, lease["item"]["id"]) in sliced

    # without the allow-list the guard refuses loopback: recorded, nothing sent
    strict = Context.from_settings(ctx.settings.model_copy(update={"external_model_allowed_networks": ""}))
    try:
        strict.model_embedder_factory = ctx.model_embedder_factory
        factory.add_items(project, 3, start=100)
        out = model_service.process_project(strict, pid)
    finally:
        strict.close()
    assert "refused by the outbound guard" in out["external_error"], out
    assert len(model_server.requests) == asked
    st = model_service.status(ctx, project["manager"], pid)
    assert "refused by the outbound guard" in st["last_error"]


def test_malformed_slow_and_failing_models_leave_the_items_with_the_humans(factory, ctx, model_server):
    project, annotator, ids = _project(factory, ctx, n=12)
    pid, api = project["id"], factory.api_as(project["manager"])
    res = api.patch(f"/api/v1/projects/{pid}/models/settings",
                    json={"external_model": model_server.url, "calibration_fraction": 0})
    assert res.status_code == 200, res.text
    version = "external:" + model_server.url

    model_server.mode = "malformed"
    out = model_service.process_project(ctx, pid)
    assert "malformed predictions" in out["external_error"] and "'maybe'" in out["external_error"], out
    assert _predictions(ctx, pid, version) == {}
    assert lease_service.lease_next(ctx, annotator, pid) is not None  # the queue goes on

    model_server.mode = "garbage"
    out = model_service.process_project(ctx, pid)
    assert "not JSON" in out["external_error"], out

    model_server.mode = "slow"
    started = time.monotonic()
    out = model_service.process_project(ctx, pid)
    took = time.monotonic() - started
    assert "timed out after 0.5 s (after 2 attempts)" in out["external_error"], out
    assert took < 1.5 + 5  # two attempts of 0.5 s and a 0.5 s wait (and the embedder's pass)
    assert _predictions(ctx, pid, version) == {}

    model_server.mode = "error"
    out = model_service.process_project(ctx, pid)
    assert "HTTP 500 (after 2 attempts)" in out["external_error"], out
    st = model_service.status(ctx, project["manager"], pid)
    assert "HTTP 500" in st["last_error"]
    failures = _failures(ctx, pid)
    assert len(failures) == 4 and any("timed out" in f for f in failures)  # one event per new error

    model_server.mode = "good"  # it recovers: predictions, and the error is over
    out = model_service.process_project(ctx, pid)
    assert out["external_predicted"] == len(ids) and "external_error" not in out, out
    assert model_service.status(ctx, project["manager"], pid)["last_error"] is None


def test_a_python_entry_point_as_the_annotator(factory, ctx):
    project, _annotator, ids = _project(factory, ctx, n=10)
    pid, api = project["id"], factory.api_as(project["manager"])
    res = api.patch(f"/api/v1/projects/{pid}/models/settings", json={"external_model": "nope"})
    assert res.status_code == 422 and res.json()["errors"][0]["code"] == "bad_external_model"
    res = api.patch(f"/api/v1/projects/{pid}/models/settings",
                    json={"external_model": "judge", "external_role": "annotator", "auto_label": True})
    assert res.status_code == 422
    assert res.json()["errors"][0]["code"] == "auto_label_with_external_annotator"
    res = api.patch(f"/api/v1/projects/{pid}/models/settings",
                    json={"external_model": "judge", "external_role": "annotator", "calibration_fraction": 0})
    assert res.status_code == 200, res.text
    out = model_service.process_project(ctx, pid)
    assert out["external_predicted"] == len(ids), out
    # its predictions are the items' model predictions: the consensus, the re-fit and active
    # learning read them as they read the project model's
    got = _predictions(ctx, pid, model_store.MODEL_PREFIX + "external:judge")
    assert got == {i: (["yes", "no"][i % 2], 0.9) for i in ids}
    with read_tx(ctx.engine) as conn:
        votes = model_store.fetch_model_votes(conn, pid, "label")
        assert model_service.annotator_question(conn, project, factory.ctx.get_schema(project)) == "label"
    assert sorted(v[0] for v in votes) == ids

    res = api.patch(f"/api/v1/projects/{pid}/models/settings", json={"external_model": "broken"})
    assert res.status_code == 200, res.text
    factory.add_items(project, 2, start=50)
    out = model_service.process_project(ctx, pid)
    assert "cannot be loaded" in out["external_error"], out
