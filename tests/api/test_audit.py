"""The audit log (issue 17, item 15): every audited action leaves one entry, in the action's
transaction; the table refuses UPDATE and DELETE; admins read everything, managers their
projects' entries, others nothing; filters, keyset pages and the CSV / JSONL export."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest
import sqlalchemy as sa

from goldlabel.services import audit
from goldlabel.services.access import Actor
from goldlabel.storage.engine import write_tx
from goldlabel.storage.tables import audit_log

PASSWORD = "amber lantern quietly 41"
SCHEMA = {"questions": [{"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"]}]}


def entries(api, **params) -> list[dict]:
    res = api.get("/api/v1/audit", params=params)
    assert res.status_code == 200, res.text
    return res.json()["items"]


def test_admin_actions_are_each_recorded(factory):
    admin = factory.make_user("admin")
    api = factory.api_as(admin)
    user = api.post("/api/v1/users", json={"username": "newbie", "role": "annotator"}).json()
    api.patch(f"/api/v1/users/{user['id']}", json={"role": "reviewer"})
    api.patch(f"/api/v1/users/{user['id']}", json={"is_active": False})
    api.patch(f"/api/v1/users/{user['id']}", json={"is_active": True})
    token = api.post(f"/api/v1/users/{admin.id}/tokens", json={"name": "ci"}).json()
    api.delete(f"/api/v1/users/{admin.id}/tokens/{token['id']}")
    api.delete(f"/api/v1/users/{user['id']}/sessions")
    project = api.post("/api/v1/projects", json={"name": "audited", "label_schema": SCHEMA}).json()
    pid = project["id"]
    assert api.put(f"/api/v1/projects/{pid}/members",
                   json={"user_id": user["id"], "role": "reviewer"}).status_code == 200
    api.delete(f"/api/v1/projects/{pid}/members/{user['id']}")
    new_schema = {"questions": [{**SCHEMA["questions"][0], "labels": ["positive", "negative", "mixed"]}]}
    assert api.patch(f"/api/v1/projects/{pid}", json={"label_schema": new_schema}).status_code == 200
    assert api.patch(f"/api/v1/projects/{pid}", json={"settings": {"gold_rate": 0.2}}).status_code == 200
    assert api.patch(f"/api/v1/projects/{pid}", json={"name": "renamed"}).status_code == 200
    hook = api.post(f"/api/v1/projects/{pid}/webhooks",
                    json={"url": "https://hooks.example.com/x", "event_types": ["*"]}).json()
    api.patch(f"/api/v1/projects/{pid}/webhooks/{hook['id']}", json={"is_active": False})
    api.delete(f"/api/v1/projects/{pid}/webhooks/{hook['id']}")
    api.post(f"/api/v1/projects/{pid}/items", json=[{"external_id": "a", "data": {"text": "t"}}])
    item_id = api.get(f"/api/v1/projects/{pid}/items").json()["items"][0]["id"]
    assert api.get(f"/api/v1/projects/{pid}/export", params={"format": "csv"}).status_code == 200
    snap = api.post(f"/api/v1/projects/{pid}/snapshots", json={"name": "v1"}).json()
    assert api.get(f"/api/v1/projects/{pid}/snapshots/{snap['id']}/download").status_code == 200
    assert api.delete(f"/api/v1/projects/{pid}/items/{item_id}").status_code == 204
    assert api.delete(f"/api/v1/projects/{pid}").status_code == 204

    log = entries(api, actor_id=admin.id)
    assert all(e["actor_name"] == admin.username for e in log)
    assert [e["action"] for e in reversed(log)] == [
        "user.create", "user.role", "user.suspend", "user.reactivate", "token.issue", "token.revoke",
        "user.sessions_end", "project.create", "member.set", "member.remove", "project.schema",
        "project.settings", "project.update", "webhook.create", "webhook.update", "webhook.delete",
        "export.download", "snapshot.create", "snapshot.download",
        "item.delete", "project.delete",
    ]
    by_action = {e["action"]: e for e in log}
    assert by_action["user.role"]["detail"] == {"from": "annotator", "to": "reviewer"}
    assert by_action["project.schema"]["detail"] == {"from_version": 1, "to_version": 2}
    assert by_action["project.settings"]["detail"] == {"gold_rate": {"from": 0.0, "to": 0.2}}
    assert by_action["export.download"]["detail"]["format"] == "csv"
    assert by_action["item.delete"]["target_id"] == str(item_id)
    assert by_action["token.issue"]["detail"]["prefix"] == token["prefix"]
    assert token["token"] not in json.dumps(log)  # the secrets themselves are never logged
    assert hook["secret"] not in json.dumps(log)
    assert by_action["webhook.update"]["detail"] == {"is_active": False}
    # The project is gone; its entries stay.
    assert {e["project_id"] for e in log if e["action"].startswith(("project.", "member."))} == {pid}


def test_logins_are_recorded_with_the_address(factory, app):
    import httpx

    from goldlabel.client.transport import ASGIAppTransport

    user = factory.make_user(password=PASSWORD)
    admin = factory.make_user("admin")
    with httpx.Client(transport=ASGIAppTransport(app, client=("203.0.113.9", 5000)),
                      base_url="http://goldlabel.test") as browser:
        token = browser.get("/login").text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        browser.post("/login", data={"username": user.username, "password": "wrong wrong wrong 1",
                                     "csrf_token": token})
        browser.post("/login", data={"username": "=HYPERLINK(1)", "password": "x", "csrf_token": token})
        browser.post("/login", data={"username": user.username, "password": PASSWORD, "csrf_token": token})
    api = factory.api_as(admin)
    [ok] = entries(api, action="login.success")
    assert ok["actor_id"] == user.id and ok["address"] == "203.0.113.9"
    failed = entries(api, action="login.failure")
    assert [(e["actor_id"], e["actor_name"]) for e in failed] == [(None, "=HYPERLINK(1)"), (None, user.username)]
    # The CSV export defuses a formula in a typed username.
    text = api.get("/api/v1/audit/export", params={"format": "csv", "action": "login.failure"}).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["actor_name"] for r in rows] == [user.username, "'=HYPERLINK(1)"]


def test_entry_commits_with_its_action_or_not_at_all(factory, ctx):
    admin = factory.make_user("admin")
    with pytest.raises(RuntimeError), write_tx(ctx.engine) as conn:
        audit.record(conn, Actor(admin.id, admin.username, "admin"), "project.delete", project_id=1)
        raise RuntimeError("the action failed after its entry was written")
    assert entries(factory.api_as(admin), action="project.delete") == []
    # A refused action leaves no entry either.
    manager = factory.make_user("manager")
    api = factory.api_as(manager)
    assert api.post("/api/v1/users", json={"username": "boss", "role": "admin"}).status_code == 403
    assert entries(factory.api_as(admin), action="user.create", actor_id=manager.id) == []
    with pytest.raises(ValueError, match="unknown audit action"), write_tx(ctx.engine) as conn:
        audit.record(conn, None, "project.deleted")


def test_the_table_is_append_only(factory, ctx):
    admin = factory.make_user("admin")
    factory.api_as(admin).post("/api/v1/users", json={"username": "someone", "role": "annotator"})
    before = entries(factory.api_as(admin))
    for statement in (audit_log.update().values(action="user.role"), audit_log.delete()):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), ctx.engine.begin() as conn:
            conn.execute(statement)
    assert entries(factory.api_as(admin)) == before


def test_filters_and_keyset_pages(factory):
    admin = factory.make_user("admin")
    api = factory.api_as(admin)
    start = int(time.time() * 1000)
    for i in range(5):
        api.post("/api/v1/users", json={"username": f"u{i}", "role": "annotator"})
    p1 = factory.make_project(admin, name="one")
    seen, before = [], None
    while True:
        query = {"limit": 2, "actor_id": admin.id, **({"before": before} if before else {})}
        res = api.get("/api/v1/audit", params=query).json()
        seen += [e["id"] for e in res["items"]]
        before = res["next_before"]
        if before is None:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) == 6
    assert [e["target_id"] for e in entries(api, action="project.create")] == [str(p1["id"])]
    assert len(entries(api, project_id=p1["id"])) == 1
    assert len(entries(api, since=start, action="user.create", actor_id=admin.id)) == 5
    assert entries(api, until=start, actor_id=admin.id) == []
    res = api.get("/api/v1/audit", params={"action": "user.nuke"})
    assert res.status_code == 422 and res.json()["code"] == "unknown_action"
    assert api.get("/api/v1/audit", params={"before": 2**63}).status_code == 422


def test_who_reads_the_log(factory):
    admin = factory.make_user("admin")
    manager = factory.make_user("manager")
    mine = factory.make_project(manager, name="mine")
    theirs = factory.make_project(factory.make_user("manager"), name="theirs")
    factory.api_as(admin).post("/api/v1/users", json={"username": "acct", "role": "annotator"})
    assert factory.api_as(admin).get("/api/v1/audit/export").text.count("\n") > 2
    # A manager: their projects' entries only; no account-wide ones (users, logins, tokens).
    got = entries(factory.api_as(manager))
    assert {e["project_id"] for e in got} == {mine["id"]}
    assert entries(factory.api_as(manager), project_id=theirs["id"]) == []
    lines = factory.api_as(manager).get("/api/v1/audit/export").text.splitlines()
    assert {json.loads(line)["project_id"] for line in lines} == {mine["id"]}
    for role in ("annotator", "reviewer"):
        api = factory.api_as(factory.make_user(role))
        assert api.get("/api/v1/audit").status_code == 403
        assert api.get("/api/v1/audit/export").status_code == 403


def test_export_formats(factory):
    admin = factory.make_user("admin")
    api = factory.api_as(admin)
    for i in range(3):
        api.post("/api/v1/users", json={"username": f"x{i}", "role": "annotator"})
    lines = api.get("/api/v1/audit/export", params={"format": "jsonl", "actor_id": admin.id}).text.splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["detail"]["role"] for r in rows] == ["annotator"] * 3
    assert rows[0]["id"] < rows[1]["id"] < rows[2]["id"] and rows[0]["time"].endswith("Z")
    res = api.get("/api/v1/audit/export", params={"format": "csv", "actor_id": admin.id})
    assert res.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(res.text)))
    assert [json.loads(r["detail"]) for r in table] == [r["detail"] for r in rows]
    assert api.get("/api/v1/audit/export", params={"format": "xml"}).status_code == 422


def test_media_downloads_by_reviewers_and_up(factory):
    from PIL import Image

    annotator = factory.make_user("annotator")
    project = factory.make_project(annotators=[annotator])
    manager_api = factory.api_as(project["manager"])
    buf = io.BytesIO()
    Image.new("RGB", (40, 20), (10, 120, 200)).save(buf, format="PNG")
    res = manager_api.post(f"/api/v1/projects/{project['id']}/media",
                           files=[("file", ("cat.png", buf.getvalue(), "image/png"))])
    assert res.status_code == 201, res.text
    [item] = manager_api.get(f"/api/v1/projects/{project['id']}/items").json()["items"]
    url = item["data"]["image"]
    name = url.rsplit("/", 1)[1]
    # Logged: the whole file to a manager. Not logged: a thumbnail, a later byte range, and an
    # annotator's reads (their work).
    assert manager_api.get(url).status_code == 200
    assert manager_api.get(url, params={"thumb": 128}).status_code == 200
    assert manager_api.get(url, headers={"Range": "bytes=10-20"}).status_code == 206
    assert factory.api_as(annotator).get(url).status_code == 200
    admin_api = factory.api_as(factory.make_user("admin"))
    logged = entries(admin_api, action="media.download")
    assert [(e["actor_id"], e["project_id"], e["target_id"]) for e in logged] == [
        (project["manager"].id, project["id"], name)]


def test_the_retention_sweep_alone_deletes_and_is_audited(factory, ctx, settings):
    """audit_retention_days: the sweep deletes what is older, keeps the rest, records itself in
    the same transaction; nothing else can delete (recent rows, or old rows outside the sweep)."""
    from goldlabel.services.context import Context

    admin = factory.make_user("admin")
    now = int(time.time() * 1000)
    day = audit.DAY_MS
    with write_tx(ctx.engine) as conn:
        for age_days in (40, 31, 29, 1):
            conn.execute(audit_log.insert().values(at=now - age_days * day, actor_id=admin.id, actor_name="x",
                                                   action="token.issue", detail={"age": age_days}))
    # Kept forever by default: the sweep deletes nothing.
    assert settings.audit_retention_days == 0 and audit.sweep_expired(ctx) == 0
    # Outside the sweep, old rows cannot be deleted either.
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), ctx.engine.begin() as conn:
        conn.execute(audit_log.delete().where(audit_log.c.at < now - 30 * day))
    kept = Context.from_settings(settings.model_copy(update={"audit_retention_days": 30}))
    try:
        assert audit.sweep_expired(kept, now=now) == 2
        assert audit.sweep_expired(kept, now=now) == 0  # nothing more to go, nothing recorded
    finally:
        kept.close()
    with ctx.engine.connect() as conn:
        ages = sorted(r.detail["age"] for r in conn.execute(sa.select(audit_log.c.detail)
                                                              .where(audit_log.c.action == "token.issue")))
        sweeps = conn.execute(sa.select(audit_log).where(audit_log.c.action == "audit.sweep")).mappings().all()
    assert ages == [1, 29]
    assert len(sweeps) == 1 and sweeps[0]["detail"]["deleted"] == 2 and sweeps[0]["actor_name"] == "retention-sweep"
    # The gate is closed again: a recent row still cannot go.
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), ctx.engine.begin() as conn:
        conn.execute(audit_log.delete())
    # Admins see the sweep in the log.
    assert [e["detail"]["deleted"] for e in entries(factory.api_as(admin), action="audit.sweep")] == [2]
