"""Workflow correctness (issue 12): a reviewed label is final and survives every later answer
and re-fit; exports say where each label came from. Each annotate step runs through the fast
lane (Bearer token) and through the cookie route (sync services), on both backends."""

from __future__ import annotations

import csv
import io
import re

import httpx
import orjson
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from goldlabel.client.transport import ASGIAppTransport

API = "/api/v1/projects"
PASSWORD = "amber lantern quietly 41"


class Annotator:
    """An annotator's HTTP client on one path: ``bearer`` (the fast lane) or ``cookie`` (a
    logged-in browser session: the routes and the sync services)."""

    def __init__(self, factory, path: str) -> None:
        self.user = factory.make_user(password=PASSWORD if path == "cookie" else None)
        self.path = path
        self._factory = factory
        self._client: httpx.Client | None = None
        self._transport: ASGIAppTransport | None = None

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            if self.path == "bearer":
                self._client = self._factory.api_as(self.user)
            else:
                self._transport = ASGIAppTransport(self._factory.app)
                c = httpx.Client(transport=self._transport, base_url="http://goldlabel.test")
                token = _csrf(c.get("/login").text)
                res = c.post("/login", data={"username": self.user.username, "password": PASSWORD,
                                             "csrf_token": token, "next": "/"})
                assert res.status_code == 303, res.text
                c.headers["X-CSRF-Token"] = _csrf(c.get("/").text)
                self._client = c
        return self._client

    def item_id(self, pid: int, ref: str) -> int:
        """The id behind an item reference this annotator was shown."""
        return self._factory.item_id(self.user, pid, ref)

    def lease(self, pid: int) -> dict:
        res = self.client.post(f"{API}/{pid}/next")
        assert res.status_code == 200, res.text
        return res.json()

    def submit(self, pid: int, lease: dict, label: str) -> dict:
        res = self.client.post(f"{API}/{pid}/answers",
                               json={"lease_token": lease["token"], "value": {"sentiment": label}})
        assert res.status_code == 201, res.text
        return res.json()

    def answer(self, pid: int, label: str) -> dict:
        return self.submit(pid, self.lease(pid), label)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._transport is not None:
            self._transport.close()


def _csrf(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]*)"', html).group(1)


@pytest.fixture(params=["bearer", "cookie"])
def annotators(request, factory):
    made: list[Annotator] = []

    def make(n: int) -> list[Annotator]:
        made.extend(Annotator(factory, request.param) for _ in range(n))
        return made[-n:]

    yield make
    for a in made:
        a.close()


def consensus_of(manager: httpx.Client, pid: int, item_id: int) -> dict:
    detail = manager.get(f"{API}/{pid}/items/{item_id}").json()
    return {c["question"]: c for c in detail["consensus"]}["sentiment"]


def export(manager: httpx.Client, pid: int, fmt: str) -> bytes:
    res = manager.get(f"{API}/{pid}/export", params={"format": fmt})
    assert res.status_code == 200, res.text
    return res.content


def test_a_fix_survives_later_answers_and_refits(factory, annotators):
    first, holder = annotators(2)
    reviewer = factory.make_user("reviewer")
    project = factory.make_project(annotators=[first.user, holder.user, reviewer], overlap_min=1, overlap_max=3)
    factory.add_items(project, 1)
    pid = project["id"]
    manager = factory.api_as(project["manager"])
    first.answer(pid, "positive")
    held = holder.lease(pid)  # holds the item while a reviewer fixes it
    item_id = holder.item_id(pid, held["item"]["id"])
    res = factory.api_as(reviewer).post(f"{API}/{pid}/items/{item_id}/reviews",
                                        json={"action": "fix", "value": {"sentiment": "negative"}})
    assert res.status_code == 201, res.text
    # The late answer counts, but the label stays the reviewer's.
    assert holder.submit(pid, held, "positive")["item_status"] == "final"
    fixed = consensus_of(manager, pid, item_id)
    assert (fixed["value"], fixed["confidence"], fixed["method"]) == ("negative", 1.0, "review")
    assert manager.post(f"{API}/{pid}/refit").status_code == 200
    after = consensus_of(manager, pid, item_id)
    assert {k: after[k] for k in ("value", "confidence", "method", "status", "source", "reviewer_id")} == {
        "value": "negative", "confidence": 1.0, "method": "review", "status": "final", "source": "review",
        "reviewer_id": reviewer.id}
    assert after["reviewed_at"] == res.json()["created_at"]
    assert manager.get(f"{API}/{pid}/items/{item_id}").json()["status"] == "final"


def test_accept_is_final_and_exports_say_who_reviewed_it(factory, annotators):
    a, b = annotators(2)
    reviewer = factory.make_user("reviewer")
    project = factory.make_project(annotators=[a.user, b.user, reviewer], overlap_min=1, overlap_max=2)
    factory.add_items(project, 2)
    pid = project["id"]
    manager = factory.api_as(project["manager"])
    # Item one: the two disagree (review); item two: they agree.
    disputed = a.item_id(pid, a.answer(pid, "positive")["answer"]["item_id"])
    b_first = b.lease(pid)
    assert b.item_id(pid, b_first["item"]["id"]) == disputed  # the queue completes started items first
    assert b.submit(pid, b_first, "negative")["item_status"] == "needs_review"
    a.answer(pid, "positive")
    b.answer(pid, "positive")
    before = consensus_of(manager, pid, disputed)
    res = factory.api_as(reviewer).post(f"{API}/{pid}/items/{disputed}/reviews", json={"action": "accept"})
    assert res.status_code == 201, res.text
    reviewed_at = res.json()["created_at"]
    refit = manager.post(f"{API}/{pid}/refit")
    assert refit.status_code == 200, refit.text
    method = refit.json()["questions"]["sentiment"]["method"]
    assert method != before["method"]
    # The re-fit rewrote the other item's consensus, not the accepted one.
    accepted = consensus_of(manager, pid, disputed)
    assert (accepted["value"], accepted["method"], accepted["confidence"]) == (
        before["value"], before["method"], before["confidence"])
    other = next(i for i in manager.get(f"{API}/{pid}/items").json()["items"] if i["id"] != disputed)["id"]
    assert consensus_of(manager, pid, other)["method"] == method

    docs = {d["id"]: d for d in map(orjson.loads, export(manager, pid, "jsonl").splitlines())}
    reviewed, plain = docs[disputed], docs[other]
    assert reviewed["source"] == {"sentiment": "review"}
    assert reviewed["reviewed_at"] == {"sentiment": reviewed_at}
    assert re.fullmatch(r"a_[0-9a-f]{16}", reviewed["reviewer"]["sentiment"])
    assert plain["source"] == {"sentiment": "consensus"} and plain["reviewer"] == {} == plain["reviewed_at"]
    named = manager.get(f"{API}/{pid}/export", params={"format": "jsonl", "pseudonymous": "false"})
    by_id = {d["id"]: d for d in map(orjson.loads, named.content.splitlines())}
    assert by_id[disputed]["reviewer"] == {"sentiment": reviewer.username}

    rows = {int(r["id"]): r for r in csv.DictReader(io.StringIO(export(manager, pid, "csv").decode()))}
    assert (rows[disputed]["source.sentiment"], rows[disputed]["reviewer.sentiment"],
            rows[disputed]["reviewed_at.sentiment"]) == ("review", reviewed["reviewer"]["sentiment"], str(reviewed_at))
    assert (rows[other]["source.sentiment"], rows[other]["reviewer.sentiment"]) == ("consensus", "")

    table = pq.read_table(io.BytesIO(export(manager, pid, "parquet"))).to_pylist()
    prow = {r["id"]: r for r in table}
    assert (prow[disputed]["source.sentiment"], prow[disputed]["reviewed_at.sentiment"]) == ("review", reviewed_at)
    assert prow[other]["source.sentiment"] == "consensus" and prow[other]["reviewer.sentiment"] is None


def test_reject_hands_the_label_back_to_the_answers(factory, annotators):
    a, b, c = annotators(3)
    reviewer = factory.make_user("reviewer")
    project = factory.make_project(annotators=[a.user, b.user, c.user, reviewer], overlap_min=1, overlap_max=2)
    factory.add_items(project, 1)
    pid = project["id"]
    manager = factory.api_as(project["manager"])
    a.answer(pid, "positive")
    item_id = b.item_id(pid, b.answer(pid, "negative")["answer"]["item_id"])
    review = factory.api_as(reviewer)
    assert review.post(f"{API}/{pid}/items/{item_id}/reviews", json={"action": "accept"}).status_code == 201
    assert review.post(f"{API}/{pid}/items/{item_id}/reviews", json={"action": "reject"}).status_code == 201
    c.answer(pid, "negative")
    row = consensus_of(manager, pid, item_id)
    assert (row["value"], row["method"]) == ("negative", "posterior")
    docs = list(map(orjson.loads, export(manager, pid, "jsonl").splitlines()))
    assert docs[0]["source"] == {"sentiment": "consensus"} and docs[0]["reviewer"] == {}


# ---------------------------------------------------------------- cold start (issue 12, item 4)


def test_clear_agreement_finalizes_before_any_refit(factory, annotators):
    """Max overlap 3, a two-label question, three annotators who always agree: at the server's
    default accuracy (0.7) every item went to review at P = 0.927 until a re-fit. With the
    project's pooled agreement, items finalize at once as the evidence builds up."""
    anns = annotators(3)
    project = factory.make_project(annotators=[a.user for a in anns], overlap_min=1, overlap_max=3)
    factory.add_items(project, 8)
    pid = project["id"]
    busy = True
    while busy:  # round-robin until nobody gets work
        busy = False
        for a in anns:
            lease = a.client.post(f"{API}/{pid}/next")
            if lease.status_code == 200:
                a.submit(pid, lease.json(), "positive")
                busy = True
    manager = factory.api_as(project["manager"])
    counts = manager.get(f"{API}/{pid}").json()["counts"]
    # At the default accuracy all eight went to review. Now only the first item may (p = (2 + 14)
    # / 22 gives P = 0.9499 at its third answer); the rest finalize, without a re-fit.
    assert counts.get("open", 0) == 0 and counts.get("needs_review", 0) <= 1 and counts["final"] >= 7, counts


TEXT_SCHEMA = {"questions": [{"name": "summary", "kind": "text"}]}


def test_identical_text_answers_finalize_once_the_project_agrees(factory, annotators):
    a, b = annotators(2)
    project = factory.make_project(schema=TEXT_SCHEMA, annotators=[a.user, b.user], overlap_min=1, overlap_max=2)
    factory.add_items(project, 14)
    pid = project["id"]
    statuses = []
    for n in range(14):
        for ann in (a, b):
            lease = ann.lease(pid)
            res = ann.client.post(f"{API}/{pid}/answers", json={"lease_token": lease["token"],
                                                                 "value": {"summary": f"Summary {n}."}})
            assert res.status_code == 201, res.text
        statuses.append(res.json()["item_status"])
    # Two identical answers, p = (k + 14) / (k + 20) after k agreeing items, P = p^2 / (p^2 + (1-p)^2):
    # below 0.95 up to k = 11, above from k = 12.
    assert statuses == ["needs_review"] * 12 + ["final"] * 2


# ---------------------------------------------------------------- stalled items (issue 12, item 3)


@pytest.mark.parametrize("policy", ["review", "final"])
def test_an_item_every_annotator_answered_moves_on(factory, annotators, policy):
    """Max overlap 3 and two annotators: a disagreed item waited forever for a third answer."""
    a, b = annotators(2)
    project = factory.make_project(annotators=[a.user, b.user], overlap_min=1, overlap_max=3,
                                   settings={"no_annotator_left": policy})
    factory.add_items(project, 1)
    pid = project["id"]
    assert a.answer(pid, "positive")["item_status"] == "open"
    expected = "final" if policy == "final" else "needs_review"
    assert b.answer(pid, "negative")["item_status"] == expected
    manager = factory.api_as(project["manager"])
    item = manager.get(f"{API}/{pid}/items").json()["items"][0]
    assert item["status"] == expected
    assert consensus_of(manager, pid, item["id"])["status"] == expected


def test_skips_suspensions_and_removals_move_stalled_items_on(factory, annotators):
    a, b, c = annotators(3)
    project = factory.make_project(annotators=[a.user, b.user, c.user], overlap_min=1, overlap_max=3)
    factory.add_items(project, 3)
    pid = project["id"]
    manager = factory.api_as(project["manager"])

    def statuses() -> list[str]:
        return [i["status"] for i in manager.get(f"{API}/{pid}/items").json()["items"]]

    # x0: a and b disagree, c skips it: nobody is left.
    first = a.item_id(pid, a.answer(pid, "positive")["answer"]["item_id"])
    lease = b.lease(pid)
    assert b.item_id(pid, lease["item"]["id"]) == first
    assert b.submit(pid, lease, "negative")["item_status"] == "open"
    skipped = c.lease(pid)
    assert c.item_id(pid, skipped["item"]["id"]) == first
    res = c.client.post(f"{API}/{pid}/skip", json={"lease_token": skipped["token"]})
    assert res.status_code in (200, 204), res.text
    assert statuses()[0] == "needs_review"
    # x1: a and b disagree; c is suspended.
    a.answer(pid, "positive")
    b.answer(pid, "negative")
    assert statuses()[1] == "open"
    res = manager.patch(f"{API}/{pid}/annotators/{c.user.id}", json={"status": "suspended"})
    assert res.status_code == 200, res.text
    assert statuses()[1] == "needs_review"
    # x2: only a answered; b leaves the project, so c (suspended) and b are gone.
    a.answer(pid, "positive")
    assert statuses()[2] == "open"
    assert manager.delete(f"{API}/{pid}/members/{b.user.id}").status_code in (200, 204)
    assert statuses()[2] == "needs_review"


def test_the_refit_sweeps_items_left_without_annotators(factory, ctx):
    a, b, c = factory.make_user(), factory.make_user(), factory.make_user()
    project = factory.make_project(annotators=[a, b, c], overlap_min=1, overlap_max=3)
    factory.add_items(project, 1)
    pid = project["id"]
    for ann, label in ((a, "positive"), (b, "negative")):
        api = factory.api_as(ann)
        lease = api.post(f"{API}/{pid}/next").json()
        api.post(f"{API}/{pid}/answers", json={"lease_token": lease["token"], "value": {"sentiment": label}})
    manager = factory.api_as(project["manager"])
    assert manager.get(f"{API}/{pid}/items").json()["items"][0]["status"] == "open"  # waits for c
    # c leaves by a way this process does not see (another process, or SQL): the re-fit sweeps.
    with ctx.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM project_members WHERE user_id = :u"), {"u": c.id})
    assert manager.post(f"{API}/{pid}/refit").status_code == 200
    assert manager.get(f"{API}/{pid}/items").json()["items"][0]["status"] == "needs_review"


@pytest.mark.parametrize("policy", ["review", "final"])
def test_single_answer_is_an_explicit_setting(factory, annotators, policy):
    (a,) = annotators(1)
    project = factory.make_project(annotators=[a.user], overlap_min=1, overlap_max=1,
                                   settings={"single_answer": policy})
    factory.add_items(project, 2)
    pid = project["id"]
    expected = "final" if policy == "final" else "needs_review"
    assert [a.answer(pid, "positive")["item_status"] for _ in range(2)] == [expected, expected]


def test_gold_answers_inform_the_cold_start(factory, annotators):
    """Ten qualification gold items answered right by both annotators: before any re-fit, two
    agreeing answers on the first real item are enough (p = (20 + 1 + 14) / (20 + 1 + 20))."""
    a, b = annotators(2)
    project = factory.make_project(annotators=[a.user, b.user], overlap_min=1, overlap_max=2,
                                   settings={"qualification_gold": 10})
    factory.add_items(project, 10, gold={"sentiment": "positive"})
    factory.add_items(project, 1, start=10)
    pid = project["id"]
    for ann in (a, b):
        for _ in range(10):
            lease = ann.lease(pid)
            assert lease["item"]["data"]["text"] != "item 10"  # qualification first
            ann.submit(pid, lease, "positive")
    a.answer(pid, "negative")
    assert b.answer(pid, "negative")["item_status"] == "final"
