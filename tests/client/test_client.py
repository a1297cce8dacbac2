"""The SDK against the real app in process, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest

from goldlabel.client import (
    ApiError,
    Client,
    Conflict,
    Forbidden,
    ImportFailed,
    Lease,
    NotFound,
    ServerError,
    Unauthorized,
    ValidationFailed,
)
from goldlabel.schemas import ItemDetail, ProjectPublic

SCHEMA = {
    "questions": [{"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"]}]
}
POSITIVE = {"sentiment": "positive"}


def rows(n: int, start: int = 0, **fields) -> list[dict]:
    return [
        {"external_id": f"x{start + i}", "data": {"text": f"item {start + i}"}, **fields}
        for i in range(n)
    ]


def test_users_and_tokens(make_user, connect):
    admin, manager, annotator = make_user("admin"), make_user("manager"), make_user("annotator")
    gl = connect(admin)
    assert gl.me().id == admin.id

    created = gl.create_user("rev1", "reviewer", display_name="Rev One")
    assert (created.username, created.role, created.is_active) == ("rev1", "reviewer", True)
    assert gl.get_user(created.id) == created
    assert gl.update_user(created.id, display_name="R1").display_name == "R1"
    assert gl.update_user(created.id, is_active=False).is_active is False

    everyone = list(gl.list_users(page_size=2))  # 4 users: follows next_after over 2 pages
    assert [u.id for u in everyone] == sorted({admin.id, manager.id, annotator.id, created.id})

    with pytest.raises(Conflict) as exc:
        gl.create_user("rev1")
    assert exc.value.code == "username_taken"
    with pytest.raises(ValidationFailed) as exc:
        gl.create_user("has space")
    assert exc.value.errors[0]["loc"][-1] == "username"

    # Tokens: the secret is shown once, works, is listed by prefix only, and dies on revoke.
    mine = connect(annotator)
    token = mine.create_token(annotator.id, "laptop")
    assert token.token and token.token.startswith(token.prefix)
    laptop = connect(token=token.token)
    assert laptop.me().username == annotator.username
    listed = {t.id: t for t in mine.list_tokens(annotator.id)}
    assert listed[token.id].name == "laptop" and listed[token.id].token is None
    mine.revoke_token(annotator.id, token.id)
    with pytest.raises(Unauthorized):
        laptop.me()
    assert {t.id: t for t in mine.list_tokens(annotator.id)}[token.id].revoked_at is not None

    # Another user's account is invisible to an annotator (404, not 403).
    with pytest.raises(NotFound):
        mine.get_user(manager.id)
    with pytest.raises(NotFound):
        mine.list_tokens(manager.id)
    with pytest.raises(Forbidden):
        mine.list_users()


def test_a_manager_renames_and_suspends_but_gets_no_tokens_of_others(make_user, connect):
    # Issue 12.8: docs/sdk.md's manager got 403 from update_user(display_name=...) and 404 "user not
    # found" from create_token / list_tokens for the user it had just created.
    gl = connect(make_user("manager"))
    bob = gl.create_user("bob", "reviewer", password="a long passphrase")
    assert gl.update_user(bob.id, display_name="Robert").display_name == "Robert"
    assert gl.update_user(bob.id, is_active=False).is_active is False
    for call in (lambda: gl.create_token(bob.id, "ci"), lambda: gl.list_tokens(bob.id)):
        with pytest.raises(Forbidden) as exc:
            call()
        assert "goldlabel users token" in exc.value.detail
    with pytest.raises(Forbidden):
        gl.update_user(bob.id, password="another long passphrase")
    me = gl.me()
    token = gl.create_token(me.id, "ci")
    assert token.id in [t.id for t in gl.list_tokens(me.id)]


def test_projects_and_members(make_user, connect):
    manager, annotator, reviewer = make_user("manager"), make_user(), make_user("reviewer")
    gl = connect(manager)
    project = gl.create_project("reviews", SCHEMA, overlap_min=2, settings={"gold_rate": 0.1})
    assert isinstance(project, ProjectPublic)
    assert (project.role, project.overlap_max, project.settings["gold_rate"]) == ("manager", 2, 0.1)

    updated = gl.update_project(project.id, name="reviews v2", settings={"show_predictions": True})
    assert updated.name == "reviews v2"
    assert (
        updated.settings["gold_rate"] == 0.1 and updated.settings["show_predictions"] is True
    )  # merged
    assert gl.get_project(project.id).counts is not None  # managers see item counts

    others = [gl.create_project(f"p{i}", SCHEMA) for i in range(2)]
    assert [p.id for p in gl.list_projects(page_size=1)] == [project.id] + [p.id for p in others]

    assert gl.set_member(project.id, annotator.id).role == "annotator"
    gl.set_member(project.id, reviewer.id, "reviewer")
    members = {m.user_id: m.role for m in gl.list_members(project.id)}
    assert members == {manager.id: "manager", annotator.id: "annotator", reviewer.id: "reviewer"}

    ann = connect(annotator)
    assert [p.id for p in ann.list_projects()] == [project.id]
    assert ann.get_project(project.id).counts is None
    with pytest.raises(Forbidden):
        ann.update_project(project.id, name="mine now")

    gl.remove_member(project.id, annotator.id)
    with pytest.raises(NotFound):
        ann.get_project(project.id)
    with pytest.raises(NotFound):
        gl.remove_member(project.id, annotator.id)

    gl.delete_project(project.id)
    with pytest.raises(NotFound):
        gl.get_project(project.id)


def test_items(make_user, connect):
    manager, reviewer = make_user("manager"), make_user("reviewer")
    gl = connect(manager)
    project = gl.create_project("items", SCHEMA)
    gl.set_member(project.id, reviewer.id, "reviewer")

    report = gl.add_items(
        project.id, rows(4) + [{"external_id": "g", "data": {"text": "gold"}, "gold": POSITIVE}]
    )
    assert (report.ok, report.created, report.skipped) == (True, 5, 0)
    again = gl.add_items(project.id, rows(2, meta={"v": 2}), on_conflict="update")
    assert (again.created, again.updated) == (0, 2)

    items = list(gl.list_items(project.id, page_size=2))
    assert [i.external_id for i in items] == ["x0", "x1", "x2", "x3", "g"]
    assert items[0].meta == {"v": 2}
    assert [i.external_id for i in gl.list_items(project.id, is_gold=True)] == ["g"]
    assert list(gl.list_items(project.id, status="final")) == []

    gold_item = items[-1]
    detail = gl.get_item(project.id, gold_item.id)
    assert isinstance(detail, ItemDetail) and detail.gold == POSITIVE
    assert connect(reviewer).get_item(project.id, gold_item.id).gold is None  # managers only

    # All or nothing: one bad row rejects the batch and the report says which row and why.
    with pytest.raises(ImportFailed) as exc:
        gl.add_items(project.id, rows(1, start=10) + [{"external_id": "bad"}])
    assert exc.value.status == 422 and exc.value.code == "import_failed"
    report = exc.value.report
    assert report is not None and report.error_count == 1
    assert (report.errors[0]["line"], report.errors[0]["code"]) == (2, "bad_data")
    partial = gl.add_items(project.id, rows(1, start=10) + [{"external_id": "bad"}], partial=True)
    assert (partial.created, partial.error_count) == (1, 1)

    gl.delete_item(project.id, items[0].id)
    with pytest.raises(NotFound):
        gl.get_item(project.id, items[0].id)
    with pytest.raises(NotFound):
        gl.delete_item(project.id, items[0].id)


def test_annotate_loop(factory, make_user, connect):
    manager, ann1, ann2 = make_user("manager"), make_user(), make_user()
    project = factory.make_project(manager, annotators=[ann1, ann2], overlap_min=2, overlap_max=2)
    pid = project["id"]
    gl, a1, a2 = connect(manager), connect(ann1), connect(ann2)
    gl.add_items(pid, rows(3))

    lease = a1.lease_next(pid)
    assert isinstance(lease, Lease) and lease.item.data["text"] == "item 0"
    first = a1.submit_answer(pid, lease.token, POSITIVE, duration_ms=1200, idempotency_key="k1")
    assert (first.item_status, first.answer.duration_ms) == ("open", 1200)
    # Retrying the same submit (lost response) returns the same answer, never a second one.
    assert a1.submit_answer(pid, lease.token, POSITIVE) == first

    held = a1.lease_next(pid)
    with pytest.raises(ValidationFailed) as exc:
        a1.submit_answer(pid, held.token, {"sentiment": "meh"})
    assert exc.value.code == "validation_failed" and exc.value.errors[0]["loc"][-1] == "sentiment"
    a1.release_item(pid, held.token)
    with pytest.raises(NotFound):
        a1.release_item(pid, held.token)  # a released lease is gone
    with pytest.raises(NotFound):
        a1.submit_answer(pid, "lt_not-a-lease", POSITIVE)

    skipped = a1.lease_next(pid)
    a1.skip_item(pid, skipped.token)
    with pytest.raises(Conflict) as exc:
        a1.submit_answer(pid, skipped.token, POSITIVE)
    assert exc.value.code == "lease_skipped"

    # ann2 gives item 0 its last answer (overlap_max 2): it leaves the queue, final or for review.
    lease2 = a2.lease_next(pid)
    # closest to completion first; each annotator sees the item under a reference of their own
    assert lease2.item.id != lease.item.id
    assert factory.item_id(ann2, pid, lease2.item.id) == factory.item_id(ann1, pid, lease.item.id)
    done = a2.submit_answer(pid, lease2.token, {"sentiment": "positive"})
    assert done.item_status in ("final", "needs_review")
    with pytest.raises(Conflict) as exc:
        a1.edit_answer(pid, first.answer.id, {"sentiment": "negative"})
    assert exc.value.code == "item_closed"

    lease3 = a2.lease_next(pid)
    open_answer = a2.submit_answer(pid, lease3.token, POSITIVE).answer
    assert a2.edit_answer(pid, open_answer.id, {"sentiment": "negative"}).value == {
        "sentiment": "negative"
    }
    with pytest.raises(NotFound):
        a1.edit_answer(pid, open_answer.id, POSITIVE)  # not yours

    mine = list(a2.list_my_answers(pid, page_size=1))  # newest first, one per page
    assert [m.id for m in mine] == [open_answer.id, done.answer.id]
    assert mine[0].item.id == lease3.item.id and mine[1].item_status == done.item_status

    assert [a.id for a in gl.list_answers(pid, page_size=2)] == sorted(
        [first.answer.id, done.answer.id, open_answer.id]
    )
    kinds = [e.kind for e in gl.list_events(pid)]
    assert kinds.count("answer.created") == 3 and f"item.{done.item_status}" in kinds
    with pytest.raises(Forbidden):
        a1.list_events(pid)

    # Drain: ann1 answered one item and skipped one; one is left for them, then nothing.
    while (lease := a1.lease_next(pid)) is not None:
        a1.submit_answer(pid, lease.token, POSITIVE)
    assert a1.lease_next(pid) is None


def test_errors_carry_the_problem(make_user, connect):
    annotator = make_user()
    with pytest.raises(Unauthorized) as exc:
        connect().me()
    assert (exc.value.status, exc.value.code) == (401, "unauthorized")
    with pytest.raises(Unauthorized):
        connect(token="gl_nope").me()
    with pytest.raises(NotFound) as exc:
        connect(annotator).get_project(999_999)
    err = exc.value
    assert isinstance(err, ApiError)
    assert (err.status, err.code, err.detail) == (404, "not_found", "project not found")
    assert err.body["type"].endswith("/not_found") and err.errors == []
    with pytest.raises(NotFound):  # lists fetch their first page eagerly
        connect(annotator).list_items(999_999)


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (409, {"code": "duplicate_answer", "detail": "again"}, Conflict, "duplicate_answer"),
        (
            422,
            {"code": "import_failed", "detail": "x", "report": None},
            ImportFailed,
            "import_failed",
        ),
        (502, "<html>bad gateway</html>", ServerError, "http_error"),
        (418, {"detail": "teapot"}, ApiError, "http_error"),
    ],
)
def test_error_classes_from_responses(status, body, kind, code):
    response = (
        httpx.Response(status, json=body)
        if isinstance(body, dict)
        else httpx.Response(status, text=body)
    )
    err = ApiError.from_response(response)
    assert type(err) is kind and (err.status, err.code) == (status, code)
    assert str(status) in str(err)


def test_base_url_and_context_manager():
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(
            200,
            json={
                "id": 1,
                "username": "u",
                "display_name": "",
                "role": "admin",
                "is_active": True,
                "created_at": 0,
            },
        )

    for base in (
        "http://h:8000",
        "http://h:8000/",
        "http://h:8000/api/v1",
        "http://h:8000/api/v1/",
    ):
        with Client(base, "gl_x", transport=httpx.MockTransport(handler)) as gl:
            assert repr(gl) == "Client('http://h:8000')"
            gl.me()
    assert seen == ["http://h:8000/api/v1/users/me"] * 4
