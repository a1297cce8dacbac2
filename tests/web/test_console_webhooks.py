"""The console's webhooks page, in process on both backends: the log and the re-send button's
API call from a session (with its CSRF token), escaping, and who may see it."""

from __future__ import annotations

import re

import httpx
import pytest

from goldlabel.client.transport import ASGIAppTransport
from goldlabel.services.sessions import SESSION_COOKIE, start_session
from goldlabel.services.webhooks import route_events
from goldlabel.storage import consensus_events
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


def test_webhooks_page_shows_the_log_and_resends(factory, session_as):
    project = factory.make_project()
    pid = project["id"]
    manager = session_as(project["manager"])
    page = manager.get(f"/console/projects/{pid}/webhooks")
    assert page.status_code == 200 and "No subscriptions yet." in page.text
    csrf = re.search(r'name="csrf-token" content="([^"]*)"', page.text).group(1)
    path = f"/api/v1/projects/{pid}/webhooks"
    body = {"url": f"https://hooks.example.com/x?q={XSS}", "event_types": ["item.final"]}
    assert manager.post(path, json=body).status_code == 403  # a cookie write needs the CSRF header
    res = manager.post(path, json=body, headers={"X-CSRF-Token": csrf})
    assert res.status_code == 201, res.text
    hook = res.json()
    with write_tx(factory.ctx.engine) as conn:
        consensus_events.insert_event(conn, pid, "item.final", {"item_id": 5, "status": "final"}, now_ms())
    route_events(factory.ctx)

    page = manager.get(f"/console/projects/{pid}/webhooks").text
    [delivery_id] = re.findall(r'data-resend="(\d+)"', page)
    assert "item.final" in page and "pending" in page
    assert XSS not in page and "<img src=x" not in page
    assert hook["secret"] not in page
    res = manager.post(f"{path}/{hook['id']}/deliveries/{delivery_id}/resend", headers={"X-CSRF-Token": csrf})
    assert res.status_code == 200 and res.json()["status"] == "pending", res.text
    # The page is linked from the project's navigation.
    assert f'href="/console/projects/{pid}/webhooks"' in manager.get(f"/console/projects/{pid}").text


def test_webhooks_page_is_for_managers(factory, session_as):
    reviewer = factory.make_user("reviewer")
    project = factory.make_project(annotators=[reviewer])
    res = session_as(reviewer).get(f"/console/projects/{project['id']}/webhooks")
    assert res.status_code == 403
