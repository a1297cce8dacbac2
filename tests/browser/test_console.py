"""The manager console in Chromium: schema editor with live preview, import with a bad line,
export, the review queue, dashboard, items, users; XSS payloads never run; security headers."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from goldlabel.services import review as review_service
from goldlabel.services.item_refs import decode_item
from goldlabel.storage.tables import answers, events

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=window.__xss=1>"
SCHEMA = {"questions": [{"name": "sentiment", "kind": "choice", "title": "Sentiment",
                         "labels": ["positive", "negative", "neutral"]}]}


def jsonl(rows) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode()


def upload(page, name: str, body: bytes) -> None:
    page.set_input_files("[data-testid=import-file]", files=[{"name": name, "mimeType": "application/x-ndjson",
                                                               "buffer": body}])
    page.click("[data-testid=import-submit]")
    page.wait_for_selector("[data-testid=import-result]:not([hidden])")


def answer(server, project, annotator, labels, duration_ms=2000):
    api = server.api_as(annotator)
    for label in labels:
        lease = api.post(f"/api/v1/projects/{project['id']}/next")
        if lease.status_code == 204:
            break
        res = api.post(f"/api/v1/projects/{project['id']}/answers",
                       json={"lease_token": lease.json()["token"], "value": {"sentiment": label},
                             "duration_ms": duration_ms})
        assert res.status_code == 201, res.text
    api.close()


def test_manager_creates_project_imports_and_exports(page, server, ui, tmp_path):
    manager = server.make_user("manager")
    ui.login(manager, "/console")
    page.click("[data-testid=new-project]")
    page.fill("[data-testid=project-name]", "Product reviews")
    page.fill("[data-testid=instructions]", "Read the **whole** review.\n\n- positive: the buyer is happy")
    # The example schema is previewed with the workspace's own widgets.
    page.wait_for_selector("#preview .question[data-question=sentiment] button.opt")
    # Add a question with the small form: the JSON and the preview follow.
    page.fill("[data-testid=q-name]", "topics")
    page.select_option("[data-testid=q-kind]", "multi_choice")
    page.fill("[data-testid=q-title]", "Which topics?")
    page.fill("[data-testid=q-labels]", "battery, camera, price")
    page.click("[data-testid=q-add]")
    page.wait_for_selector("#preview .question[data-question=topics]")
    assert "camera" in page.inner_text("#preview .question[data-question=topics]")
    schema = json.loads(page.input_value("[data-testid=schema-json]"))
    assert [q["name"] for q in schema["questions"]] == ["sentiment", "topics"]
    # Editing the JSON directly updates the preview live; broken JSON is reported, not applied.
    page.fill("[data-testid=schema-json]", "{\"questions\": [")
    page.wait_for_selector("#schema-errors:not([hidden])")
    schema["questions"][1]["labels"].append("shipping")
    page.fill("[data-testid=schema-json]", json.dumps(schema, indent=2))
    page.wait_for_selector("#preview .question[data-question=topics] >> text=shipping")
    assert page.is_hidden("#schema-errors")
    assert "whole" in page.inner_text("#instructions-preview strong")
    page.fill("input[name=overlap_max]", "2")
    page.evaluate("() => { document.activeElement.blur(); window.scrollTo(0, 0); }")
    ui.screenshot("console-new-project")
    page.click("[data-testid=save-project]")
    page.wait_for_url("**/import")
    project_id = int(page.url.split("/")[-2])

    # A file with one bad line: nothing is imported, the report names the line and the code.
    page.allowed_problems = ("422",)
    good = [{"external_id": f"r{i}", "data": {"text": f"Review {i}"}} for i in range(5)]
    bad = good[:2] + [{"external_id": "r2", "data": "not an object"}] + good[3:]
    upload(page, "reviews.jsonl", jsonl(bad))
    assert page.inner_text("#import-title") == "Nothing was imported"
    row = page.locator("[data-testid=import-errors] tbody tr").first
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == "3" and cells[2] != "", cells
    assert page.get_attribute("[data-testid=import-progress]", "value") == "100"
    ui.screenshot("console-import-errors")
    # Fixed, the same file imports.
    upload(page, "reviews.jsonl", jsonl(good))
    assert page.inner_text("#import-title") == "Imported"
    assert "5" in page.inner_text("#import-summary")
    ui.screenshot("console-import")

    # Export: choose the format and a status filter; the download streams.
    page.click("text=Export")
    page.wait_for_selector("[data-testid=export-submit]")
    ui.screenshot("console-export")
    with page.expect_download() as info:
        page.click("[data-testid=export-submit]")
    path = tmp_path / "export.jsonl"
    info.value.save_as(path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted(r["external_id"] for r in rows) == [f"r{i}" for i in range(5)]
    page.select_option("[data-testid=export-status]", "final")
    page.check("[data-testid=format-csv]")
    with page.expect_download() as info:
        page.click("[data-testid=export-submit]")
    assert "format=csv" in info.value.url and "status=final" in info.value.url
    assert info.value.suggested_filename.endswith(".csv")
    info.value.path()
    assert project_id > 0


def test_reviewer_fixes_an_answer_in_the_review_queue(page, server, ui):
    a1, a2 = server.make_user(), server.make_user()
    reviewer = server.make_user("reviewer")
    project = server.make_project(SCHEMA, annotators=[a1, a2], name="Tweets", overlap_min=2, overlap_max=2)
    from goldlabel.services import projects as project_service

    project_service.set_member(server.ctx, project["manager"], project["id"], reviewer.id, "reviewer")
    server.add_items(project, [{"external_id": f"t{i}", "data": {"text": f"Tweet number {i}, meh."}} for i in range(3)])
    answer(server, project, a1, ["positive"] * 3)
    answer(server, project, a2, ["negative"] * 3)

    ui.login(reviewer, f"/console/projects/{project['id']}/review")
    assert page.locator("[data-testid=review-table] tbody tr").count() == 3
    ui.screenshot("console-review")
    page.click("[data-testid=start-review]")
    page.wait_for_selector("[data-testid=review-panel]")
    item_id = int(page.url.split("/items/")[1].split("?")[0])
    answers_text = page.inner_text("[data-testid=answers]")
    assert a1.username in answers_text and a2.username in answers_text
    page.click("[data-testid=review-fix-open]")
    page.click("#fix-questions .question[data-question=sentiment] button.opt >> text=neutral")
    page.fill("#review-comment", "sarcastic: neither")
    ui.screenshot("console-review-fix")
    page.click("[data-testid=review-fix-save]")
    page.wait_for_selector("[data-testid=review-done]:not([hidden])")
    assert "final" in page.inner_text("[data-testid=review-done]")
    reviews = review_service.list_reviews(server.ctx, reviewer, project["id"], item_id)
    assert [(r["action"], r["value"], r["reviewer_id"]) for r in reviews] == [
        ("fix", {"sentiment": "neutral"}, reviewer.id)]
    # The next item in the queue, then a reject sends it back for one more answer.
    page.click("[data-testid=review-next]")
    page.wait_for_selector("[data-testid=review-panel]")
    assert int(page.url.split("/items/")[1].split("?")[0]) != item_id
    page.click("[data-testid=review-reject]")
    page.wait_for_selector("[data-testid=review-done]:not([hidden])")
    assert "open" in page.inner_text("[data-testid=review-done]")
    page.goto(f"/console/projects/{project['id']}/items/{item_id}")
    history = page.inner_text("[data-testid=review-history]")
    assert reviewer.username in history and "fixed" in history and "neutral" in history
    ui.screenshot("console-item")


def _spread_over_days(server, project_id: int, days: int = 9) -> None:
    """Back-date the answers and events over the last days, so the charts have a history."""
    import time

    now = int(time.time() * 1000)
    with server.ctx.engine.begin() as conn:
        for table in (answers, events):
            ids = [r[0] for r in conn.execute(sa.select(table.c.id).where(table.c.project_id == project_id)
                                              .order_by(table.c.id))]
            for k, row_id in enumerate(ids):
                at = now - int((len(ids) - k) / len(ids) * days * 86_400_000)
                conn.execute(table.update().where(table.c.id == row_id).values(created_at=at))


def test_dashboard_items_annotator_and_users(page, server, ui):
    team = [server.make_user() for _ in range(4)]
    project = server.make_project(SCHEMA, annotators=team, name="Support tickets", overlap_min=2, overlap_max=3,
                                  settings={"target_confidence": 0.8})
    server.add_items(project, [{"external_id": f"s{i}", "data": {"text": f"Ticket {i}: the app crashes"}}
                               for i in range(40)])
    labels = ["positive", "negative", "neutral"]
    answer(server, project, team[0], [labels[i % 3] for i in range(30)], 1800)
    answer(server, project, team[1], [labels[i % 3] for i in range(30)], 2600)
    answer(server, project, team[2], [labels[(i * 7) % 3] for i in range(25)], 4100)
    answer(server, project, team[3], [labels[i % 2] for i in range(20)], 900)
    _spread_over_days(server, project["id"])
    manager = project["manager"]
    ui.login(manager, "/console")
    assert "Support tickets" in page.inner_text(".projects-table")
    ui.screenshot("console-projects")
    page.click("text=Support tickets")
    page.wait_for_selector("[data-testid=annotators]")
    for chart in ("progress", "share", "hourly", "confidence"):
        assert page.locator(f"[data-testid=chart-{chart}] svg").count() >= 1
    with page.expect_navigation():
        page.click("[data-testid=refit]")
    page.wait_for_selector("[data-testid=annotators]")
    assert page.locator("[data-testid=annotators] tbody tr").count() == 4
    ui.screenshot("console-dashboard")
    # Suspend an annotator from the table.
    page.click(f"tr[data-annotator='{team[3].id}'] button[data-status=suspended]")
    page.wait_for_selector(f"tr[data-annotator='{team[3].id}'] .status-suspended")
    page.click(f"text={team[2].username}")
    page.wait_for_selector("[data-testid=confusion-sentiment] svg.confusion")
    ui.screenshot("console-annotator")

    page.click("text=Items")
    page.wait_for_selector("[data-testid=items-table]")
    assert page.locator("[data-testid=items-table] tbody tr").count() == 40
    page.select_option("select[name=status]", "needs_review")
    page.click("text=Filter")
    page.wait_for_url("**status=needs_review**")
    statuses = page.locator("[data-testid=items-table] .badge").all_inner_texts() if page.locator(
        "[data-testid=items-table]").count() else []
    assert all(s == "needs review" for s in statuses)
    page.goto(f"/console/projects/{project['id']}/items?label=neutral")
    ui.screenshot("console-items")

    page.click("[data-testid=nav-users]")
    page.fill("[data-testid=new-username]", "newbie")
    page.fill("[data-testid=new-password]", "plum-otter-canvas-44")
    page.select_option("[data-testid=new-role]", "reviewer")
    page.click("[data-testid=create-user]")
    page.wait_for_selector("tr >> text=newbie")
    page.fill("[data-testid=token-name]", "pipeline")
    page.click("[data-testid=create-token]")
    secret = page.inner_text("[data-testid=token-secret]")
    assert secret.startswith("gl_")
    ui.screenshot("console-users")
    with server.api_as(manager) as client:
        res = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {secret}"})
    assert res.json()["username"] == manager.username
    page.reload()
    page.click("[data-testid=suspend-newbie]")
    page.wait_for_selector("tr[data-user] >> text=suspended")


def test_xss_payloads_never_run_in_the_console(page, server, ui):
    annotator = server.make_user()
    project = server.make_project(
        {"questions": [{"name": "q", "kind": "choice", "title": XSS, "labels": ["a", XSS]}]},
        annotators=[annotator], name=f"Project {XSS}", instructions=f"Read {XSS} <script>window.__xss=2</script>",
        overlap_min=1,
    )
    server.add_items(project, [{"external_id": f"id{XSS}", "data": {"text": f"text {XSS}", XSS: XSS},
                                "predictions": [{"value": {"q": XSS}, "score": 0.5, "model_version": XSS}]}])
    api = server.api_as(annotator)
    lease = api.post(f"/api/v1/projects/{project['id']}/next").json()
    api.post(f"/api/v1/projects/{project['id']}/answers", json={"lease_token": lease["token"], "value": {"q": XSS}})
    api.close()
    item_id = decode_item(server.ctx, project["id"], annotator.id, lease["item"]["id"])
    manager = project["manager"]
    ui.login(manager, "/console")
    pid = project["id"]
    paths = ["/console", f"/console/projects/{pid}", f"/console/projects/{pid}/items",
             f"/console/projects/{pid}/items/{item_id}?review=1", f"/console/projects/{pid}/review",
             f"/console/projects/{pid}/annotators/{annotator.id}", f"/console/projects/{pid}/settings",
             f"/console/projects/{pid}/export", "/console/users", f"/console/projects/{pid}/import", "/account"]
    for path in paths:
        response = page.goto(path)
        assert response.status == 200, path
        headers = response.headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert page.evaluate("() => window.__xss") is None, path
    # The schema editor's live preview renders the payload labels and instructions as text.
    page.goto(f"/console/projects/{pid}/settings")
    page.wait_for_selector("#preview .question")
    assert XSS in page.inner_text("#preview")
    # A file whose NAME is a payload: shown as text in the progress line and the report.
    page.goto(f"/console/projects/{pid}/import")
    page.allowed_problems = ("422",)
    upload(page, f"{XSS}.jsonl", jsonl([{"external_id": XSS, "data": {"text": XSS}}, "{not json " + XSS]))
    assert XSS in page.inner_text("[data-testid=import-file-name]")
    assert page.locator("[data-testid=import-errors] tbody tr").count() >= 1
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("img[src=x]").count() == 0


def test_gold_thresholds_schema_edits_and_gold_evidence_in_the_console(page, server, ui):
    """The settings page sets a gold threshold and shows why a schema edit is refused; the
    dashboard and annotator page render once gold is answered (they answered 500 before)."""
    good, bad = server.make_user(), server.make_user()
    project = server.make_project(SCHEMA, annotators=[good, bad], overlap_min=1, overlap_max=2,
                                  settings={"qualification_gold": 1})
    pid = project["id"]
    server.add_items(project, [{"external_id": "g", "data": {"text": "gold"}, "gold": {"sentiment": "neutral"}},
                               {"external_id": "n", "data": {"text": "normal"}}])
    answer(server, project, good, ["neutral"])
    answer(server, project, bad, ["positive"])
    ui.login(project["manager"], f"/console/projects/{pid}/settings")
    page.click("[data-testid=gold-thresholds] summary")
    page.fill("input[name=gold_text_min_similarity]", "0.9")
    page.fill("input[name=gold_keypoints_min_oks]", "0.75")
    page.click("[data-testid=save-project]")
    page.wait_for_selector("text=Saved.")
    with server.api_as(project["manager"]) as api:
        got = api.get(f"/api/v1/projects/{pid}").json()
    assert got["settings"]["gold_text_min_similarity"] == 0.9 and got["settings"]["gold_rating_tolerance"] is None
    assert got["settings"]["gold_keypoints_min_oks"] == 0.75 and got["settings"]["gold_polygons_min_iou"] == 0.5
    assert got["schema_version"] == 1  # the same schema saved again is no new version
    # Removing "neutral", which answers and the gold use, is refused with the counts.
    schema = json.loads(page.input_value("[data-testid=schema-json]"))
    schema["questions"][0]["labels"] = ["positive", "negative"]
    page.fill("[data-testid=schema-json]", json.dumps(schema))
    page.allowed_problems = ("409",)
    page.click("[data-testid=save-project]")
    page.wait_for_selector("#form-errors:not([hidden])")
    message = page.inner_text("#form-errors")
    assert "label 'neutral' of 'sentiment' removed: used by 1 answers, 1 gold" in message, message
    # The dashboard shows both annotators' gold and the failed qualification.
    page.goto(f"/console/projects/{pid}")
    row = page.locator(f"tr[data-annotator='{bad.id}']")
    assert "0/1" in row.inner_text() and "qualification failed" in row.inner_text()
    assert "1/1" in page.locator(f"tr[data-annotator='{good.id}']").inner_text()
    page.goto(f"/console/projects/{pid}/annotators/{good.id}")
    assert "1 correct of 1" in page.inner_text(".evidence")
