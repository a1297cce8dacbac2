"""Every /api/v1 route has an SDK method: a tour calls each public ``Client`` method once, records
the requests it sends, and matches them against the app's route table. A new route without an
SDK method (or an SDK method calling a path no route serves) fails here."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pyotp
from fastapi.routing import APIRoute, iter_route_contexts

from goldlabel.client import Client
from goldlabel.client.transport import ASGIAppTransport
from goldlabel.services.webhooks import route_events

BASE_URL = "http://goldlabel.test"
SCHEMA = {
    "questions": [{"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"]}]
}
POSITIVE = {"sentiment": "positive"}


def api_routes(app) -> list:
    """The app's /api/v1 routes, flattened through included routers (FastAPI >= 0.165 keeps them nested)."""
    return [
        r
        for r in iter_route_contexts(app.routes)
        if isinstance(r.original_route, APIRoute) and r.path.startswith("/api/v1/")
    ]


def match_route(routes: list, method: str, path: str) -> tuple[str, str] | None:
    """The (method, path template) the app dispatches to; the first match wins, as in Starlette."""
    for route in routes:
        if route.path_regex.match(path) and method in route.methods:
            return method, route.path
    return None


class RecordingTransport(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport, log: list[tuple[str, str]]) -> None:
        self._inner, self._log = inner, log

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._log.append((request.method, request.url.path))
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


class MethodSpy:
    """Wraps a Client and notes which of its public methods the tour used."""

    def __init__(self, client: Client, used: set[str]) -> None:
        self._client, self._used = client, used

    def __getattr__(self, name: str):
        value = getattr(self._client, name)
        if callable(value) and not name.startswith("_"):
            self._used.add(name)
        return value


def public_methods() -> set[str]:
    return {n for n in dir(Client) if callable(getattr(Client, n)) and not n.startswith("_")} - {"close"}


def test_every_route_is_called_by_an_sdk_method(factory, app, make_user, tmp_path: Path):
    routes = api_routes(app)
    log: list[tuple[str, str]] = []
    used: set[str] = set()
    clients: list[Client] = []

    def connect(actor=None, token=None):
        token = factory.token_for(actor) if actor is not None else token
        client = Client(BASE_URL, token, transport=RecordingTransport(ASGIAppTransport(app), log))
        clients.append(client)
        return MethodSpy(client, used)

    try:
        admin, annotator = make_user("admin"), make_user()
        gl, ann = connect(admin), connect(annotator)

        # users and tokens
        assert gl.me().id == admin.id
        user = gl.create_user("tour-user")
        assert gl.get_user(user.id).username == "tour-user"
        gl.update_user(user.id, display_name="Tour")
        assert any(u.id == user.id for u in gl.list_users())
        token = gl.create_token(user.id, "t")
        assert [t.id for t in gl.list_tokens(user.id)] == [token.id]
        gl.revoke_token(user.id, token.id)
        gl.end_sessions(user.id)
        # two-factor login: the annotator enrols (codes from the secret, as an app computes them),
        # then an admin turns it off (a lost phone)
        assert ann.get_totp(annotator.id).enabled is False
        enrolment = ann.start_totp(annotator.id)
        assert len(ann.confirm_totp(annotator.id, pyotp.TOTP(enrolment.secret).now())) == 10
        assert gl.disable_totp(annotator.id).enabled is False

        # projects and members
        project = gl.create_project("tour", SCHEMA, overlap_min=1)
        pid = project.id
        gl.update_project(pid, instructions="be kind")
        assert [p.id for p in gl.list_projects()] == [pid]
        assert gl.get_project(pid).instructions == "be kind"
        gl.set_member(pid, annotator.id)
        gl.set_member(pid, user.id)
        gl.remove_member(pid, user.id)
        assert {m.user_id for m in gl.list_members(pid)} == {admin.id, annotator.id}
        assert [v.version for v in gl.list_schema_versions(pid)] == [1]

        # webhooks: subscribed before the annotate loop below, so its events are routed to it
        # (by route_events: no worker runs here, and nothing is sent)
        hook = gl.create_webhook(pid, "https://hooks.example.com/goldlabel", ["item.final", "answer.created"])
        assert hook["secret"].startswith("whsec_")
        assert [h["id"] for h in gl.list_webhooks(pid)] == [hook["id"]]
        assert "secret" not in gl.get_webhook(pid, hook["id"])

        # items
        gl.add_items(pid, [{"external_id": f"x{i}", "data": {"text": f"t{i}"}} for i in range(3)])
        items = list(gl.list_items(pid))
        assert gl.get_item(pid, items[0].id).external_id == "x0"
        gl.delete_item(pid, items[2].id)
        assert gl.restore_items(pid, item_ids=[items[2].id]) == 1
        assert gl.bulk_items(pid, "priority", filter={"q": "t2"}, priority=3)["changed"] == 1
        gone = gl.bulk_items(pid, "delete", item_ids=[items[2].id])
        assert gl.restore_items(pid, deleted_at=gone["deleted_at"]) == 1
        gl.delete_item(pid, items[2].id)

        # the annotate loop
        lease = ann.lease_next(pid)
        result = ann.submit_answer(pid, lease.token, POSITIVE)
        ann.release_item(pid, ann.lease_next(pid).token)
        ann.skip_item(pid, ann.lease_next(pid).token)
        assert ann.lease_next(pid) is None
        [mine] = ann.list_my_answers(pid)
        assert mine.id == result.answer.id
        # The item is final after one answer (overlap 1): editing it is refused, but the call is made.
        try:
            ann.edit_answer(pid, mine.id, POSITIVE)
        except Exception as exc:  # noqa: BLE001 - only the request matters here
            assert getattr(exc, "code", None) == "item_closed", exc
        assert [a.id for a in gl.list_answers(pid)] == [mine.id]
        assert any(e.kind == "answer.created" for e in gl.list_events(pid))

        route_events(factory.ctx)
        assert gl.update_webhook(pid, hook["id"], is_active=False)["is_active"] is False
        deliveries = gl.list_webhook_deliveries(pid, hook["id"])
        assert "answer.created" in {d["event_type"] for d in deliveries}
        assert gl.resend_webhook_delivery(pid, hook["id"], deliveries[0]["id"])["status"] == "pending"
        gl.delete_webhook(pid, hook["id"])

        # quality and review
        assert [a["annotator_id"] for a in gl.list_annotators(pid)] == [annotator.id]
        assert gl.set_annotator_status(pid, annotator.id, "active")["status"] == "active"
        assert isinstance(gl.get_agreement(pid), dict)
        assert isinstance(gl.refit_project(pid), dict)
        answered = factory.item_id(annotator, pid, result.answer.item_id)
        gl.review_item(pid, answered, "accept", comment="fine")
        assert gl.report_item(pid, items[1].id)["status"] == "needs_review"

        # the project model: too few labels to train yet, so the call answers why
        assert gl.update_model_settings(pid, retrain_every=10)["settings"]["retrain_every"] == 10
        assert gl.train_model(pid)["summary"]["trained"] is None
        assert gl.get_model_status(pid)["versions"] == []
        assert gl.list_label_issues(pid, limit=5) == []
        assert gl.send_label_issues_to_review(pid, [answered]) == {"sent": [], "skipped": [answered]}
        changed = gl.update_model_settings(pid, calibration_fraction=0.1, external_model="https://judge.example.com/v1",
                                           external_role="predictor", external_batch=16)["settings"]
        assert (changed["calibration_fraction"], changed["external_model"], changed["external_batch"]) == (
            0.1, "https://judge.example.com/v1", 16)
        assert gl.update_model_settings(pid, external_model=None)["settings"]["external_model"] is None

        # media: one item per uploaded file, served same-origin
        picture = tmp_path / "tour.png"
        picture.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)
        assert gl.upload_media(pid, [picture]).created == 1
        url = next(i for i in gl.list_items(pid) if i.external_id == "tour.png").data["image"]
        assert gl.download_media(url) == picture.read_bytes()

        # snapshots: a frozen export, downloaded byte for byte
        snapshot = gl.create_snapshot(pid, "v1", "jsonl")
        assert [x.id for x in gl.list_snapshots(pid)] == [snapshot.id]
        frozen = io.BytesIO()
        assert gl.download_snapshot(pid, snapshot.id, frozen) == snapshot.size_bytes
        assert [r["action"] for r in gl.list_reviews(pid, answered)] == ["accept"]

        # files (the routes exist before create_app mounts them; covered as soon as it does)
        has_files = match_route(routes, "POST", f"/api/v1/projects/{pid}/imports") is not None
        if has_files:
            path = tmp_path / "more.jsonl"
            path.write_text(json.dumps({"external_id": "y1", "data": {"text": "y"}}) + "\n")
            assert gl.import_file(pid, path).created == 1
        if has_files:
            out = io.BytesIO()
            assert gl.export(pid, "jsonl", out) > 0

        gl.delete_project(pid)
        assert gl.restore_project(pid).id == pid
        gl.delete_project(pid)
        # the audit log of all the above
        assert [e.project_id for e in gl.list_audit(action="project.delete")] == [pid, pid]  # deleted twice
        trail = io.BytesIO()
        assert gl.export_audit(trail, "csv", project_id=pid) > 0
    finally:
        for client in clients:
            client.close()

    unserved = sorted({request for request in log if match_route(routes, *request) is None})
    assert not unserved, f"the SDK sent requests that no route serves: {unserved}"
    called = {match_route(routes, *request) for request in log}
    declared = {(method, r.path) for r in routes for method in r.methods}
    missing = sorted(declared - called)
    assert not missing, (
        f"routes without an SDK method: {missing}. Add a method to goldlabel.client.Client, call it in "
        "this tour, test it in tests/client/ and document it in docs/sdk.md."
    )
    assert has_files, "the import/export routes are not mounted"
    untoured = sorted(public_methods() - used)
    assert not untoured, f"Client methods this tour does not call: {untoured}; call each once above"
