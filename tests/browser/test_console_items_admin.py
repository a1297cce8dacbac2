"""Issue 12 in the browser: the item browser's search, filters, bulk actions and delete with
undo; a project's delete and restore; a broken image reported from the workspace; and the
workflow fixes of items 1-4 as a manager sees them in the console (a reviewer's fix survives
the re-fit, rating gold suspends, an item nobody is left for goes to review, clear agreement is
final at once)."""

from __future__ import annotations

import json

from goldlabel.services import projects as project_service
from goldlabel.services import refit as quality_service
from goldlabel.services.item_refs import decode_item

SCHEMA = {"questions": [{"name": "sentiment", "kind": "choice", "title": "Sentiment",
                         "labels": ["positive", "negative", "neutral"]}]}
API = "/api/v1/projects"


def answer(server, annotator, pid: int, value: dict) -> dict:
    with server.api_as(annotator) as api:
        lease = api.post(f"{API}/{pid}/next")
        assert lease.status_code == 200, lease.text
        lease = lease.json()
        res = api.post(f"{API}/{pid}/answers", json={"lease_token": lease["token"], "value": value})
        assert res.status_code == 201, res.text
        # The lease shows the annotator an opaque reference: the console speaks item ids.
        return {**lease["item"], "id": decode_item(server.ctx, pid, annotator.id, lease["item"]["id"])}


def rows_shown(page) -> list[str]:
    return page.locator("[data-testid=items-table] tbody tr td:nth-child(3) a").all_inner_texts()


def test_search_filters_bulk_actions_and_delete_with_undo(page, server, ui):
    project = server.make_project(SCHEMA, name="Support tickets")
    pid = project["id"]
    texts = ["Where is my refund?", "Love the new app", "Refund took three weeks", "App crashes on start",
             "Great support, thanks", "Still no refund, cancelling"]
    server.add_items(project, [{"external_id": f"t-{i}", "data": {"text": t},
                                "meta": {"channel": "email" if i % 2 else "chat"}} for i, t in enumerate(texts)])
    ui.login(project["manager"], f"/console/projects/{pid}/items")
    page.fill("[data-testid=filter-q]", "refund")
    page.fill("[data-testid=filter-meta]", "channel=chat")
    page.click("[data-testid=item-filters] button[type=submit]")
    page.wait_for_url(lambda url: "q=refund" in url)
    shown = page.locator("[data-testid=items-table] tbody tr td:nth-child(3)").all_inner_texts()
    assert [s.strip() for s in shown] == ["t-0", "t-2"]
    ui.screenshot("console-items-filters")

    # Bulk over the filter (every match, not the page): priority 9 for both.
    page.select_option("[data-testid=bulk-scope]", "filter")
    page.select_option("[data-testid=bulk-action]", "priority")
    page.fill("[data-testid=bulk-priority]", "9")
    messages = []
    page.on("dialog", lambda d: (messages.append(d.message), d.accept()))
    page.click("[data-testid=bulk-apply]")
    page.wait_for_selector("#console-flash:not([hidden])")
    assert "2 items matched, 2 given the new priority" in page.inner_text("#console-flash")
    assert "every item matching the filter" in messages[-1]
    with server.api_as(project["manager"]) as api:
        prio = {i["external_id"]: i["priority"] for i in api.get(f"{API}/{pid}/items").json()["items"]}
    assert prio == {"t-0": 9, "t-1": 0, "t-2": 9, "t-3": 0, "t-4": 0, "t-5": 0}

    # Delete the ticked items, with a confirmation; the undo banner brings them back.
    page.goto(f"/console/projects/{pid}/items?q=app")
    assert [s.strip() for s in page.locator("[data-testid=items-table] tbody tr td:nth-child(3)").all_inner_texts()] \
        == ["t-1", "t-3"]
    page.check("[data-testid=select-all]")
    assert page.inner_text("[data-testid=bulk-selected]") == "2 selected"
    page.select_option("[data-testid=bulk-scope]", "selected")
    page.select_option("[data-testid=bulk-action]", "delete")
    page.click("[data-testid=bulk-apply]")
    page.wait_for_url(lambda url: "undo=" in url, timeout=30_000)
    assert "Delete 2 selected items?" in messages[-1] and "restored" in messages[-1]
    assert "Deleted 2 items" in page.inner_text("[data-testid=undo-banner]")
    assert page.locator("[data-testid=items-empty]").is_visible()
    ui.screenshot("console-items-undo")
    with server.api_as(project["manager"]) as api:
        assert [i["external_id"] for i in api.get(f"{API}/{pid}/items").json()["items"]] == ["t-0", "t-2", "t-4", "t-5"]
        export = api.get(f"{API}/{pid}/export", params={"format": "jsonl"}).text
        assert "t-1" not in export and "t-3" not in export
    page.click("[data-testid=undo-delete]")
    page.wait_for_selector("[data-testid=items-table]")
    page.wait_for_function("() => !document.querySelector('[data-testid=undo-banner]')")
    assert [s.strip() for s in page.locator("[data-testid=items-table] tbody tr td:nth-child(3)").all_inner_texts()] \
        == ["t-1", "t-3"]

    # One item from its page; restored from the Deleted view.
    page.goto(f"/console/projects/{pid}/items?q=t-4")
    page.click("[data-testid=items-table] tbody tr td:nth-child(3) a")
    # the item page's module scripts (its delete handler among them) load after the click
    page.wait_for_url(lambda url: "/items/" in url and "?" not in url)
    page.wait_for_load_state("load")
    page.click("[data-testid=delete-item]")
    page.wait_for_url(lambda url: "undo=" in url, timeout=30_000)
    assert "Deleted 1 item. It can be restored" in page.inner_text("[data-testid=undo-banner]")
    assert "Delete item t-4?" in messages[-1]
    page.goto(f"/console/projects/{pid}/items?status=deleted")
    page.check("[data-testid=select-all]")
    page.click("[data-testid=restore-selected]")
    page.wait_for_selector("#console-flash:not([hidden])")
    assert "1 item restored" in page.inner_text("#console-flash")


def test_delete_a_project_then_restore_it(page, server, ui):
    project = server.make_project(SCHEMA, name="Scratch project")
    server.add_items(project, [{"external_id": "a", "data": {"text": "x"}}])
    ui.login(project["manager"], f"/console/projects/{project['id']}/settings")
    page.on("dialog", lambda d: d.accept("Scratch project") if d.type == "prompt" else d.accept())
    page.click("[data-testid=delete-project]")
    page.wait_for_url(lambda url: url.endswith("/console"))
    assert "Scratch project" in page.inner_text("[data-testid=deleted-projects]")
    assert "Scratch project" not in page.inner_text(".projects-table") if page.locator(".projects-table").count() \
        else True
    ui.screenshot("console-projects-deleted")
    page.click("[data-testid=restore-project]")
    page.wait_for_url(lambda url: url.endswith(f"/console/projects/{project['id']}"))
    assert "Scratch project" in page.inner_text(".project-title")


def test_a_broken_image_is_reported_and_shows_in_the_review_queue(page, server, ui):
    annotator = server.make_user()
    schema = {"questions": [{"name": "objects", "kind": "boxes", "labels": ["car"], "title": "Box every car"}]}
    project = server.make_project(schema, annotators=[annotator], name="Street photos")
    missing = f"/api/v1/projects/{project['id']}/media/{'0' * 64}.png"
    page.allowed_problems = (missing, "status of 404")
    server.add_items(project, [{"external_id": "broken-photo", "data": {"image": missing}}])
    ui.open_workspace(project, annotator)
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=media-failed]:not([hidden])")
    page.click("[data-testid=report-media]")
    page.wait_for_selector("#ws-message:not([hidden])")  # no work left for this annotator
    assert server.answers_of(project, annotator) == []
    page.context.clear_cookies()
    ui.login(project["manager"], f"/console/projects/{project['id']}/review")
    row = page.locator("[data-testid=review-table] tbody tr")
    assert "broken-photo" in row.inner_text() and "media broken" in row.inner_text()
    ui.screenshot("console-review-reported")
    row.locator("a.button").click()
    flag = page.inner_text("[data-testid=item-flag]")
    assert annotator.username in flag and "could not be loaded" in flag


def test_a_reviewers_fix_survives_the_refit_in_the_item_page_and_export(page, server, ui):
    a1, a2 = server.make_user(), server.make_user()
    reviewer = server.make_user("reviewer")
    project = server.make_project(SCHEMA, annotators=[a1, a2], name="Fix then refit", overlap_min=2, overlap_max=2)
    pid = project["id"]
    project_service.set_member(server.ctx, project["manager"], pid, reviewer.id, "reviewer")
    server.add_items(project, [{"external_id": "sarcasm", "data": {"text": "Oh great, it broke again."}}])
    answer(server, a1, pid, {"sentiment": "positive"})
    item = answer(server, a2, pid, {"sentiment": "negative"})
    ui.login(reviewer, f"/console/projects/{pid}/items/{item['id']}?review=1")
    page.click("[data-testid=review-fix-open]")
    page.wait_for_selector("#fix-questions .question.active")
    page.keyboard.press("3")
    page.click("[data-testid=review-fix-save]")
    page.wait_for_selector("[data-testid=review-done]:not([hidden])")
    # More answers elsewhere, then the re-fit the server runs in the background.
    server.add_items(project, [{"external_id": f"more{i}", "data": {"text": "fine"}} for i in range(3)])
    for _ in range(3):
        answer(server, a1, pid, {"sentiment": "positive"})
        answer(server, a2, pid, {"sentiment": "positive"})
    quality_service.refit_project(server.ctx, None, pid)
    page.reload()
    consensus = page.inner_text("[data-testid=consensus]")
    assert "neutral" in consensus and "final" in consensus
    with server.api_as(project["manager"]) as api:
        rows = [json.loads(line) for line in api.get(f"{API}/{pid}/export",
                                                     params={"format": "jsonl"}).text.splitlines()]
    row = next(r for r in rows if r["external_id"] == "sarcasm")
    text = json.dumps(row)
    assert '"neutral"' in text and '"review"' in text


def test_rating_gold_suspends_a_failing_annotator_in_the_console(page, server, ui):
    good, bad = server.make_user(), server.make_user()
    schema = {"questions": [{"name": "stars", "kind": "rating", "min": 1, "max": 5, "title": "Stars"}]}
    project = server.make_project(schema, annotators=[good, bad], name="Rating gold", overlap_min=1, overlap_max=2,
                                  settings={"qualification_gold": 1})
    pid = project["id"]
    server.add_items(project, [{"external_id": "g1", "data": {"text": "Five stars, flawless."}, "gold": {"stars": 5}},
                               {"external_id": "n1", "data": {"text": "ok"}}])
    answer(server, bad, pid, {"stars": 1})
    answer(server, good, pid, {"stars": 5})
    ui.login(project["manager"], f"/console/projects/{pid}")
    bad_row = page.locator(f"[data-testid=annotators] tr[data-annotator='{bad.id}']")
    good_row = page.locator(f"[data-testid=annotators] tr[data-annotator='{good.id}']")
    assert "suspended" in bad_row.inner_text()
    assert "Reinstate" in bad_row.inner_text()
    assert "suspended" not in good_row.inner_text()


def test_an_item_with_no_annotator_left_goes_to_the_review_queue(page, server, ui):
    a1, a2 = server.make_user(), server.make_user()
    project = server.make_project(SCHEMA, annotators=[a1, a2], name="Two of three", overlap_min=2, overlap_max=3)
    pid = project["id"]
    server.add_items(project, [{"external_id": "split-vote", "data": {"text": "Meh."}}])
    answer(server, a1, pid, {"sentiment": "positive"})
    answer(server, a2, pid, {"sentiment": "negative"})
    ui.login(project["manager"], f"/console/projects/{pid}/review")
    assert "split-vote" in page.inner_text("[data-testid=review-table]")


def test_clear_agreement_is_final_at_once_on_the_dashboard(page, server, ui):
    anns = [server.make_user() for _ in range(3)]
    project = server.make_project(SCHEMA, annotators=anns, name="Clear agreement", overlap_min=2, overlap_max=3)
    pid = project["id"]
    server.add_items(project, [{"external_id": "happy", "data": {"text": "I love it!"}}])
    for a in anns:
        with server.api_as(a) as api:
            lease = api.post(f"{API}/{pid}/next")
            if lease.status_code == 204:
                break
            res = api.post(f"{API}/{pid}/answers", json={"lease_token": lease.json()["token"],
                                                           "value": {"sentiment": "positive"}})
            assert res.status_code == 201
    ui.login(project["manager"], f"/console/projects/{pid}/items")
    assert "final" in page.inner_text("[data-testid=items-table] tbody tr")
    page.goto(f"/console/projects/{pid}")
    assert page.locator("[data-testid=count-final]").inner_text().strip() == "1"
