"""Two-factor login and the audit log in real Chromium (issue 17, item 15): an admin sets up
TOTP on the account page with a code computed from the key the page shows (as an app would),
logs out, logs in again through the code step, and reads the audit log with its filters."""

from __future__ import annotations

import time

import pyotp
import pytest

pytestmark = pytest.mark.browser

PASSWORD = "plum-otter-canvas-42"  # every user's, as Server.make_user (tests/browser/conftest.py) sets it
SCHEMA = {"questions": [{"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"]}]}


def test_totp_enrolment_login_and_the_audit_page(page, server, ui):
    admin = server.make_user("admin", username="olga-admin")
    ui.login(admin, "/account")

    # Set up: the page shows the key once; a first code from it turns two-factor login on.
    page.click("[data-testid=totp-start]")
    page.wait_for_selector("[data-testid=totp-code]", state="visible")
    secret = page.inner_text("[data-testid=totp-secret]").replace(" ", "")
    totp = pyotp.TOTP(secret)
    enrolled_at = time.time()
    page.fill("[data-testid=totp-code]", totp.at(enrolled_at))
    ui.screenshot("account-totp-enrol")
    page.click("[data-testid=totp-confirm]")
    page.wait_for_selector("[data-testid=totp-recovery-codes] li >> nth=9")
    codes = page.locator("[data-testid=totp-recovery-codes] li").all_inner_texts()
    assert len(set(codes)) == 10
    assert "Two-factor login is on" in page.inner_text("[data-testid=account-flash]")
    page.reload()
    assert "Recovery codes left: 10" in page.inner_text("[data-testid=totp-state]")
    assert secret not in page.content()  # never shown again

    # Some audited work, so the log has more than logins in it.
    with server.api_as(admin) as api:
        project = api.post("/api/v1/projects", json={"name": "Audited reviews", "label_schema": SCHEMA}).json()
        api.patch(f"/api/v1/projects/{project['id']}", json={"settings": {"gold_rate": 0.1}})
        assert api.get(f"/api/v1/projects/{project['id']}/export", params={"format": "csv"}).status_code == 200
        newbie = api.post("/api/v1/users", json={"username": "newbie-auditee", "role": "annotator"}).json()
        api.patch(f"/api/v1/users/{newbie['id']}", json={"is_active": False})

    # Log out; the password alone now leads to the code step, not in.
    page.click("[data-testid=logout]")
    page.wait_for_url("**/login")
    page.goto("/login?next=/console/audit")
    page.fill("input[name=username]", admin.username)
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/login/code?next=/console/audit")
    page.allowed_problems = ("401",)  # the browser logs the wrong code's status
    wrong = "000000" if totp.at(enrolled_at + 30) != "000000" else "111111"
    page.fill("[data-testid=login-code]", wrong)
    page.keyboard.press("Enter")
    page.wait_for_selector(".alert.error")
    assert "Wrong code" in page.inner_text(".alert.error")
    page.fill("[data-testid=login-code]", totp.at(enrolled_at + 30))
    ui.screenshot("login-code")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server.base_url}/console/audit")

    # The audit log: this admin's entries, newest first, then one action.
    page.fill("[data-testid=audit-actor]", admin.username)
    page.click("[data-testid=audit-filter]")
    page.wait_for_url("**actor=olga-admin**")
    actions = page.locator("[data-testid=audit-table] tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.action)")
    assert actions[:2] == ["login.success", "login.failure"]
    assert {"totp.enrol", "totp.enable", "project.create", "project.settings", "export.download",
            "user.create", "user.suspend"} <= set(actions)
    ui.screenshot("console-audit")
    page.select_option("[data-testid=audit-action]", "export.download")
    page.click("[data-testid=audit-filter]")
    page.wait_for_url("**action=export.download**")
    rows = page.locator("[data-testid=audit-table] tbody tr")
    assert rows.count() == 1 and "csv" in rows.first.inner_text()
    # The CSV link carries the filters.
    href = page.get_attribute("[data-testid=audit-export-csv]", "href")
    assert "action=export.download" in href and "format=csv" in href
