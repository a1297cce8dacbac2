"""The dashboard tells whether a background re-fit runs and when the last one ran (issue 12.15)."""

from __future__ import annotations

import re

import httpx

from goldlabel.client.transport import ASGIAppTransport
from goldlabel.services import dashboard as dashboard_service
from goldlabel.services import refit as refit_service
from goldlabel.storage import quality as quality_store
from goldlabel.storage.engine import now_ms, write_tx


def test_refit_state_before_during_and_after_a_refit(factory):
    annotator = factory.make_user()
    project = factory.make_project(annotators=[annotator])
    factory.add_items(project, 3)
    manager, pid = project["manager"], project["id"]

    before = dashboard_service.project_dashboard(factory.ctx, manager, pid)["refit"]
    assert before == {"running": False, "started_at": None, "fitted_at": None, "n_answers": 0}

    claimed = now_ms()
    with write_tx(factory.ctx.engine) as conn:  # what a re-fit in another process holds
        assert quality_store.claim_refit(conn, pid, claimed, refit_service.REFIT_HOLD_MS)
    during = dashboard_service.project_dashboard(factory.ctx, manager, pid)["refit"]
    assert during["running"] is True and during["started_at"] == claimed
    with write_tx(factory.ctx.engine) as conn:
        quality_store.upsert_model(conn, pid, "", busy_until=None)

    refit_service.refit_project(factory.ctx, manager, pid)
    after = dashboard_service.project_dashboard(factory.ctx, manager, pid, now=now_ms())["refit"]
    assert after["running"] is False and after["fitted_at"] >= claimed and after["n_answers"] == 0


def test_the_console_dashboard_shows_it(factory, app):
    manager = factory.make_user("manager", password="a long passphrase")
    project = factory.make_project(manager)
    client = httpx.Client(transport=ASGIAppTransport(app), base_url="http://goldlabel.test")
    try:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)[1]
        client.post("/login", data={"username": manager.username, "password": "a long passphrase",
                                    "csrf_token": token, "next": "/"})
        page = client.get(f"/console/projects/{project['id']}").text
        assert "No re-fit yet" in page
        refit_service.refit_project(factory.ctx, manager, project["id"])
        assert "Skills last re-fitted" in client.get(f"/console/projects/{project['id']}").text
    finally:
        client.close()
