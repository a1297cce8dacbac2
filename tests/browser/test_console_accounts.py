"""Account basics in the browser: change your own password on /account; an admin sets another
user's password from the Users page; a manager is not offered what the API would refuse."""

from __future__ import annotations

import pytest

from goldlabel.domain.errors import GoldlabelError
from goldlabel.services import users as user_service

PASSWORD = "plum-otter-canvas-42"  # tests/browser/conftest.py gives every seeded user this one

pytestmark = pytest.mark.browser


def logs_in(server, username: str, password: str) -> bool:
    try:
        user_service.authenticate_password(server.ctx, username, password)
        return True
    except GoldlabelError:
        return False


def test_anyone_changes_their_own_password_on_the_account_page(page, server, ui):
    annotator = server.make_user()
    ui.login(annotator)
    page.click("[data-testid=nav-account]")
    page.wait_for_url("**/account")
    # A mismatch and a short one are caught before anything is sent.
    page.fill("[data-testid=account-password]", "violet harbor sings 73")
    page.fill("[data-testid=account-confirm]", "new-password-2")
    page.click("[data-testid=account-save-password]")
    assert "differ" in page.inner_text("#password-errors")
    page.fill("[data-testid=account-password]", "short")
    page.fill("[data-testid=account-confirm]", "short")
    page.click("[data-testid=account-save-password]")
    assert "at least 8 characters" in page.inner_text("#password-errors")
    assert logs_in(server, annotator.username, PASSWORD)
    page.fill("[data-testid=account-password]", "violet harbor sings 73")
    page.fill("[data-testid=account-confirm]", "violet harbor sings 73")
    page.click("[data-testid=account-save-password]")
    page.wait_for_selector("[data-testid=account-flash]:not([hidden])")
    ui.screenshot("account-password")
    assert logs_in(server, annotator.username, "violet harbor sings 73")
    assert not logs_in(server, annotator.username, PASSWORD)
    # This browser stays signed in.
    page.goto("/")
    assert annotator.username in page.inner_text("[data-testid=nav-account]")


def test_admin_sets_a_users_password_and_a_manager_is_not_offered_it(page, server, ui):
    admin = server.make_user("admin")
    target = server.make_user("manager")
    # the page of the Users list that holds the target (the shared server has many users by now)
    ui.login(admin, f"/console/users?after={target.id - 1}")
    page.click(f"[data-testid=set-password-{target.username}]")
    page.wait_for_selector("#password-dialog[open]")
    page.fill("[data-testid=set-password-input]", "chosen-by-admin")
    ui.screenshot("console-users-set-password")
    page.click("[data-testid=set-password-save]")
    page.wait_for_selector("#console-flash:not([hidden])")
    assert target.username in page.inner_text("#console-flash")
    assert page.locator("#password-dialog[open]").count() == 0
    assert logs_in(server, target.username, "chosen-by-admin")
    # A user the admin just created has the button at once.
    page.fill("[data-testid=new-username]", "fresh-user")
    page.fill("[data-testid=new-password]", "fresh-password")
    page.click("[data-testid=create-user]")
    page.click("[data-testid=set-password-fresh-user]")
    page.fill("[data-testid=set-password-input]", "fresh-password-2")
    page.click("[data-testid=set-password-save]")
    page.wait_for_selector("#console-flash >> text=New password set for fresh-user")
    assert logs_in(server, "fresh-user", "fresh-password-2")

    # A manager's Users page offers no password buttons (the API answers them 403); their own
    # row links to the account page instead.
    page.context.clear_cookies()
    manager = server.make_user("manager")
    ui.login(manager, f"/console/users?after={manager.id - 1}")
    assert page.locator("[data-set-password]").count() == 0
    page.click("text=Change my password")
    page.wait_for_url("**/account")
