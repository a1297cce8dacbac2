"""Console pages in process (no browser), on both backends: every page renders for a manager,
access follows the project roles, data is escaped, and the dashboard shows real numbers."""

from __future__ import annotations

import re

import httpx
import pytest

from goldlabel.client.transport import ASGIAppTransport
from goldlabel.services.sessions import SESSION_COOKIE, start_session

XSS = '<img src=x onerror="window.__xss=1">'
SCHEMA = {"questions": [{"name": "sentiment", "kind": "choice", "labels": ["positive", "negative", XSS]}]}


@pytest.fixture
def session_as(app):
    clients: list[tuple[httpx.Client, ASGIAppTransport]] = []

    def make(actor) -> httpx.Client:
        cookie, session = app.state.web.signer.issue(actor.id)
        start_session(app.state.context, session)  # as a login does: the cookie needs its record
        transport = ASGIAppTransport(app)
        client = httpx.Client(transport=transport, base_url="http://goldlabel.test", cookies={SESSION_COOKIE: cookie})
        clients.append((client, transport))
        return client

    yield make
    for client, transport in clients:
        client.close()
        transport.close()


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]*)"', html).group(1)


@pytest.fixture
def labeled(factory):
    """A project with items, answers from two annotators, one item at needs_review."""
    a1, a2 = factory.make_user(), factory.make_user()
    project = factory.make_project(schema=SCHEMA, annotators=[a1, a2], overlap_min=2, overlap_max=2,
                                   instructions=f"Be careful {XSS}", name=f"P {XSS}")
    rows = [{"external_id": f"e{i}", "data": {"text": f"text {i} {XSS}"}} for i in range(6)]
    manager = factory.api_as(project["manager"])
    assert manager.post(f"/api/v1/projects/{project['id']}/items", json=rows).status_code == 201
    for annotator, labels in ((a1, ["positive"] * 6), (a2, ["positive", "negative"] * 3)):
        api = factory.api_as(annotator)
        for label in labels:
            lease = api.post(f"/api/v1/projects/{project['id']}/next").json()
            res = api.post(f"/api/v1/projects/{project['id']}/answers",
                           json={"lease_token": lease["token"], "value": {"sentiment": label}, "duration_ms": 1500})
            assert res.status_code == 201, res.text
    return project, a1, a2


def test_every_console_page_renders_for_the_manager(labeled, session_as):
    project, a1, _ = labeled
    client = session_as(project["manager"])
    pid = project["id"]
    item_id = client.get(f"/api/v1/projects/{pid}/items").json()["items"][0]["id"]
    pages = ["/console", "/console/projects/new", f"/console/projects/{pid}", f"/console/projects/{pid}/settings",
             f"/console/projects/{pid}/import", f"/console/projects/{pid}/export", f"/console/projects/{pid}/items",
             f"/console/projects/{pid}/items?status=needs_review&label=positive&max_conf=0.9&annotator={a1.id}",
             f"/console/projects/{pid}/items/{item_id}", f"/console/projects/{pid}/items/{item_id}?review=1",
             f"/console/projects/{pid}/review", f"/console/projects/{pid}/annotators/{a1.id}", "/console/users"]
    for path in pages:
        res = client.get(path)
        assert res.status_code == 200, (path, res.text[:500])
        assert "text/html" in res.headers["content-type"]
        assert "frame-ancestors 'none'" in res.headers["content-security-policy"]
        assert res.headers["x-content-type-options"] == "nosniff"
        # Data is escaped: the payload never appears as markup.
        assert XSS not in res.text, path
        assert "<img src=x" not in res.text, path


def test_dashboard_shows_counts_charts_and_annotators(labeled, session_as):
    project, a1, a2 = labeled
    html = session_as(project["manager"]).get(f"/console/projects/{project['id']}").text
    assert html.count("<svg") >= 4
    assert a1.username in html and a2.username in html
    assert "1.5 s" in html  # median time per answer
    assert 'data-testid="annotators"' in html


def test_item_browser_filters_and_keyset_pages(factory, session_as):
    project = factory.make_project(schema=SCHEMA)
    factory.add_items(project, 120)
    client = session_as(project["manager"])
    first = client.get(f"/console/projects/{project['id']}/items").text
    assert first.count('class="num"><a href=') == 50
    after = re.search(r'after=(\d+)" data-testid="next-page"', first).group(1)
    second = client.get(f"/console/projects/{project['id']}/items?after={after}").text
    assert "x50<" in second and "x49<" not in second
    assert "No items match" in client.get(f"/console/projects/{project['id']}/items?status=final").text


def test_console_access_follows_project_roles(labeled, factory, session_as):
    project, a1, _ = labeled
    pid = project["id"]
    outsider = session_as(factory.make_user("manager"))
    assert outsider.get(f"/console/projects/{pid}").status_code == 404
    annotator = session_as(a1)
    assert annotator.get(f"/console/projects/{pid}").status_code == 403
    assert annotator.get("/console/users").status_code == 403
    reviewer = factory.make_user("reviewer")
    factory.api_as(project["manager"]).put(f"/api/v1/projects/{pid}/members",
                                           json={"user_id": reviewer.id, "role": "reviewer"})
    rc = session_as(reviewer)
    assert rc.get(f"/console/projects/{pid}/review").status_code == 200
    assert rc.get(f"/console/projects/{pid}/settings").status_code == 403
    assert rc.get(f"/console/projects/{pid}/import").status_code == 403


def test_console_requires_login(app):
    transport = ASGIAppTransport(app)
    with httpx.Client(transport=transport, base_url="http://goldlabel.test") as client:
        res = client.get("/console")
    transport.close()
    assert res.status_code == 303 and res.headers["location"].startswith("/login?next=/console")


def test_review_from_the_session_needs_csrf(labeled, session_as):
    project, _, _ = labeled
    client = session_as(project["manager"])
    pid = project["id"]
    item = client.get(f"/api/v1/projects/{pid}/items?status=needs_review").json()["items"][0]
    url = f"/api/v1/projects/{pid}/items/{item['id']}/reviews"
    assert client.post(url, json={"action": "accept"}).status_code == 403
    token = csrf_of(client.get(f"/console/projects/{pid}/items/{item['id']}?review=1").text)
    res = client.post(url, json={"action": "accept"}, headers={"X-CSRF-Token": token})
    assert res.status_code == 201 and res.json()["item_status"] == "final"
    html = client.get(f"/console/projects/{pid}/items/{item['id']}").text
    assert f"<b>{project['manager'].username}</b> accepted" in html


def test_dashboard_and_annotator_page_render_after_gold_answers(factory, session_as):
    """A gold answer writes the annotator's evidence without a ``reason`` (only a suspension
    or a manager's change gives one): both pages read it, and used to answer 500."""
    right, wrong = factory.make_user(), factory.make_user()
    project = factory.make_project(schema=SCHEMA, annotators=[right, wrong], overlap_min=1, overlap_max=1,
                                   settings={"gold_rate": 1.0})
    pid = project["id"]
    rows = [{"external_id": f"g{i}", "data": {"text": f"gold {i}"}, "gold": {"sentiment": "positive"}}
            for i in range(2)]
    rows += [{"external_id": f"n{i}", "data": {"text": f"normal {i}"}} for i in range(2)]  # gold needs real work
    manager = factory.api_as(project["manager"])
    assert manager.post(f"/api/v1/projects/{pid}/items", json=rows).status_code == 201
    for annotator, label in ((right, "positive"), (wrong, "negative")):
        api = factory.api_as(annotator)
        lease = api.post(f"/api/v1/projects/{pid}/next").json()
        res = api.post(f"/api/v1/projects/{pid}/answers",
                       json={"lease_token": lease["token"], "value": {"sentiment": label}})
        assert res.status_code == 201, res.text
    client = session_as(project["manager"])
    dashboard = client.get(f"/console/projects/{pid}")
    assert dashboard.status_code == 200, dashboard.text[:500]
    assert "1/1" in dashboard.text and "0/1" in dashboard.text  # gold correct / answered
    for annotator, misses in ((right, 0), (wrong, 1)):
        page = client.get(f"/console/projects/{pid}/annotators/{annotator.id}")
        assert page.status_code == 200, page.text[:500]
        assert "Gold answers" in page.text
        assert ("Recent gold misses" in page.text) == bool(misses)
        passed = f"{1 - misses} passed of 1, mean score {1 - misses:.2f}"
        assert f'data-testid="gold-sentiment">{passed}</dd>' in page.text


def test_account_page_for_every_user_escapes_the_display_name(app, factory, session_as):
    annotator = factory.make_user()
    client = session_as(annotator)
    assert client.patch(f"/api/v1/users/{annotator.id}", json={"display_name": XSS},
                        headers={"X-CSRF-Token": csrf_of(client.get("/account").text)}).status_code == 200
    res = client.get("/account")
    assert res.status_code == 200 and annotator.username in res.text
    assert XSS not in res.text and "&lt;img src=x" in res.text
    assert 'href="/account"' in client.get("/").text  # the top bar links it
    transport = ASGIAppTransport(app)
    with httpx.Client(transport=transport, base_url="http://goldlabel.test") as anonymous:
        assert anonymous.get("/account").headers["location"] == "/login?next=/account"
    transport.close()


def test_item_page_after_a_review_shows_the_saved_outcome(labeled, session_as):
    project, _, _ = labeled
    client = session_as(project["manager"])
    pid = project["id"]
    item = client.get(f"/api/v1/projects/{pid}/items?status=needs_review").json()["items"][0]
    path = f"/console/projects/{pid}/items/{item['id']}"
    token = csrf_of(client.get(path).text)
    assert client.post(f"/api/v1/projects/{pid}/items/{item['id']}/reviews", json={"action": "accept"},
                       headers={"X-CSRF-Token": token}).status_code == 201
    html = client.get(f"{path}?review=1&reviewed=accept").text
    assert "Accepted and saved (the item is now final)" in html and 'data-testid="review-next"' in html
    unknown = client.get(f"{path}?review=1&reviewed=%3Cscript%3E").text
    assert "and saved" not in unknown and "&lt;script&gt;" not in unknown  # not echoed at all


def test_settings_page_warns_when_the_gold_pool_is_too_small(factory, session_as):
    anns = [factory.make_user() for _ in range(3)]
    project = factory.make_project(annotators=anns, overlap_min=1, overlap_max=2,
                                   settings={"qualification_gold": 3})
    pid = project["id"]
    manager = factory.api_as(project["manager"])
    gold = [{"external_id": f"g{i}", "data": {"text": f"gold {i}"}, "gold": {"sentiment": "positive"}}
            for i in range(3)]
    assert manager.post(f"/api/v1/projects/{pid}/items", json=gold).status_code == 201
    page = session_as(project["manager"]).get(f"/console/projects/{pid}/settings")
    assert page.status_code == 200
    warnings = re.findall(r'data-testid="gold-pool-warning">([^<]*)<', page.text)
    assert len(warnings) == 2, warnings
    assert "gold pool (3 gold items)" in warnings[0]
    assert "3 annotators x 3 qualification gold = 9" in warnings[1] and "at most 6" in warnings[1]
    # Enough gold: no warning.
    more = [{"external_id": f"h{i}", "data": {"text": f"gold h{i}"}, "gold": {"sentiment": "positive"}}
            for i in range(3)]
    assert manager.post(f"/api/v1/projects/{pid}/items", json=more).status_code == 201
    page = session_as(project["manager"]).get(f"/console/projects/{pid}/settings")
    assert "gold-pool-warning" not in page.text
