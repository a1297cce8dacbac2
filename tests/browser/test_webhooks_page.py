"""The console's webhooks page in real Chromium: a manager subscribes (the secret is shown once),
reads the delivery log and re-sends a delivery with the button."""

from __future__ import annotations

import pytest

from goldlabel.services import webhooks as webhook_service
from goldlabel.storage import consensus_events
from goldlabel.storage import webhooks as webhook_store
from goldlabel.storage.engine import now_ms, write_tx
from goldlabel.storage.tables import webhook_deliveries

pytestmark = pytest.mark.browser

SCHEMA = {"questions": [{"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"]}]}


def test_manager_subscribes_and_resends_a_delivery(page, server, ui):
    project = server.make_project(SCHEMA)
    pid = project["id"]
    ui.login(project["manager"], f"/console/projects/{pid}/webhooks")
    page.fill("[data-testid=webhook-url]", "https://hooks.example.com/goldlabel")
    page.click("[data-testid=create-webhook]")
    secret = page.wait_for_selector("[data-testid=webhook-secret]").inner_text()
    assert secret.startswith("whsec_")

    [hook] = webhook_service.list_subscriptions(server.ctx, project["manager"], pid)
    with write_tx(server.ctx.engine) as conn:
        consensus_events.insert_event(conn, pid, "item.final", {"item_id": 1, "status": "final"}, now_ms())
    # every batch: the shared server's outbox holds the other tests' events, routed oldest first
    while webhook_service.route_events(server.ctx):
        pass
    # A delivery that was given up on; the subscription paused so that the server's own worker
    # leaves it alone while the test looks. No claim on it either: a worker that claimed it
    # before the pause writes its attempt only while its claim holds (storage.webhooks
    # record_attempt), so its late outcome cannot overwrite this one (it did: attempts 1).
    with write_tx(server.ctx.engine) as conn:
        conn.execute(webhook_deliveries.update().where(webhook_deliveries.c.project_id == pid)
                     .values(status="failed", attempts=9, claimed_until=None))
        webhook_store.update_subscription(conn, hook["id"], {"is_active": False})
    page.reload()
    assert secret not in page.content()
    row = page.wait_for_selector("[data-testid=deliveries-table] tbody tr[data-delivery]")
    assert "item.final" in row.inner_text()
    assert "failed" in row.inner_text()
    row.query_selector("button[data-resend]").click()
    page.wait_for_selector("#console-flash:not([hidden])")
    assert page.is_disabled("button[data-resend]")
    [after] = webhook_service.list_deliveries(server.ctx, project["manager"], pid, hook["id"])
    assert (after["status"], after["attempts"]) == ("pending", 9)
