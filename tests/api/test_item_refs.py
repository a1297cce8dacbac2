"""Opaque item references (issue 17, item 2), on SQLite and PostgreSQL: the item ids an annotator
sees reveal nothing of the import order and cannot be matched between annotators; altered or
foreign references are a clean 404."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from goldlabel.services.item_refs import KEY_BYTES, REF_LENGTH, ItemRefs, item_refs
from goldlabel.storage.tables import install_secrets, items

POS = {"sentiment": "positive"}


def test_a_reference_decodes_only_for_its_project_and_annotator():
    refs = ItemRefs(os.urandom(KEY_BYTES))
    ref = refs.encode(3, 7, 42)
    assert len(ref) == REF_LENGTH and ref.isascii() and not ref.isdigit()
    assert refs.encode(3, 7, 42) == ref  # stable
    assert refs.decode(3, 7, ref) == 42
    assert refs.decode(3, 8, ref) is None and refs.decode(4, 7, ref) is None
    assert refs.encode(3, 8, 42) != ref and refs.encode(3, 7, 43) != ref
    assert ItemRefs(os.urandom(KEY_BYTES)).decode(3, 7, ref) is None  # another install's key
    # Every altered character, and garbage of every shape, is refused without an exception.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i in range(REF_LENGTH):
        other = alphabet[(alphabet.index(ref[i]) + 1) % 64]
        assert refs.decode(3, 7, ref[:i] + other + ref[i + 1:]) is None
    for bad in ("", "42", ref[:-1], ref + "A", "é" * REF_LENGTH, "=" * REF_LENGTH, "\x00" * REF_LENGTH,
                "+/" * (REF_LENGTH // 2)):
        assert refs.decode(3, 7, bad) is None
    with pytest.raises(ValueError, match="bytes"):
        ItemRefs(b"short")


def test_consecutive_items_get_unrelated_references():
    refs = ItemRefs(os.urandom(KEY_BYTES))
    shown = [refs.encode(1, 1, i) for i in range(1, 201)]
    assert len(set(shown)) == 200
    # Not in import order: sorting the references does not sort the ids.
    assert sorted(shown) != shown and sorted(shown) != shown[::-1]


def test_the_key_is_made_once_per_install_and_kept(ctx):
    first = item_refs(ctx)
    with ctx.engine.connect() as conn:
        [(value,)] = conn.execute(sa.select(install_secrets.c.value).where(
            install_secrets.c.name == "item_ref_key")).all()
    assert len(bytes.fromhex(value)) == KEY_BYTES
    ref = first.encode(1, 2, 3)
    ctx.item_refs = None  # another process: reads the same key
    assert item_refs(ctx).decode(1, 2, ref) == 3


def _lease(api, pid):
    res = api.post(f"/api/v1/projects/{pid}/next")
    assert res.status_code == 200, res.text
    return res.json()


def test_annotators_see_their_own_references_and_managers_the_ids(factory):
    anns = [factory.make_user(), factory.make_user()]
    reviewer = factory.make_user("reviewer")
    project = factory.make_project(annotators=[*anns, reviewer], overlap_min=2, overlap_max=2)
    pid = project["id"]
    factory.add_items(project, 3)
    with factory.ctx.engine.connect() as conn:
        ids = list(conn.scalars(sa.select(items.c.id).where(items.c.project_id == pid).order_by(items.c.id)))
    a, b = (factory.api_as(x) for x in anns)
    la, lb = _lease(a, pid), _lease(b, pid)
    # The same item (the queue's head), two unrelated references, neither the id.
    assert factory.item_id(anns[0], pid, la["item"]["id"]) == factory.item_id(anns[1], pid, lb["item"]["id"]) == ids[0]
    assert la["item"]["id"] != lb["item"]["id"]
    assert str(ids[0]) not in (la["item"]["id"], lb["item"]["id"])
    # Stable for one annotator: released and leased again, the same reference.
    assert a.post(f"/api/v1/projects/{pid}/release", json={"lease_token": la["token"]}).status_code == 204
    again = _lease(a, pid)
    assert again["item"]["id"] == la["item"]["id"]
    done = a.post(f"/api/v1/projects/{pid}/answers", json={"lease_token": again["token"], "value": POS})
    assert done.status_code == 201 and done.json()["answer"]["item_id"] == la["item"]["id"]
    [mine] = a.get(f"/api/v1/projects/{pid}/my-answers").json()["items"]
    assert mine["item_id"] == mine["item"]["id"] == la["item"]["id"]
    edited = a.put(f"/api/v1/projects/{pid}/my-answers/{mine['id']}", json={"value": POS})
    assert edited.status_code == 200 and edited.json()["item_id"] == la["item"]["id"]
    # Managers and reviewers browse items by id.
    manager = factory.api_as(project["manager"])
    assert [x["item_id"] for x in manager.get(f"/api/v1/projects/{pid}/answers").json()["items"]] == [ids[0]]
    assert manager.get(f"/api/v1/projects/{pid}/items/{ids[0]}").status_code == 200


def test_report_takes_the_annotators_reference_and_refuses_any_other(factory):
    anns = [factory.make_user(), factory.make_user()]
    reviewer = factory.make_user("reviewer")
    project = factory.make_project(annotators=[*anns, reviewer], overlap_min=2, overlap_max=2)
    pid = project["id"]
    factory.add_items(project, 2)
    a, b = (factory.api_as(x) for x in anns)
    la, lb = _lease(a, pid), _lease(b, pid)
    real = factory.item_id(anns[0], pid, la["item"]["id"])
    ref = la["item"]["id"]
    flipped = ref[:5] + ("A" if ref[5] != "A" else "B") + ref[6:]

    def report(api, item, token):
        return api.post(f"/api/v1/projects/{pid}/items/{item}/report", json={"lease_token": token})

    # Another annotator's reference, an altered one, a made-up one, the real id, another
    # project's: 404 not_found, never 500, nothing flagged.
    for item, api, token in ((lb["item"]["id"], a, la["token"]), (flipped, a, la["token"]),
                             ("x" * REF_LENGTH, a, la["token"]), (str(real), a, la["token"]),
                             (ref, b, lb["token"]), ("%C3%A9" * 3, a, la["token"])):
        res = report(api, item, token)
        assert res.status_code == 404 and res.json()["code"] == "not_found", (item, res.text)
    other = factory.make_project(annotators=[anns[0]])
    res = a.post(f"/api/v1/projects/{other['id']}/items/{ref}/report", json={"lease_token": la["token"]})
    assert res.status_code == 404 and res.json()["code"] == "not_found"
    assert factory.api_as(project["manager"]).get(f"/api/v1/projects/{pid}/items?flag=media_broken").json()[
        "items"] == []
    # The annotator's own reference with their lease: flagged, and answered as named.
    res = report(a, ref, la["token"])
    assert res.status_code == 200, res.text
    assert res.json() == {"item_id": ref, "flag": "media_broken", "status": "needs_review"}
    # A reviewer may name an item by id, or by a reference of their own.
    other_id = next(i for i in (real + 1, real - 1) if i > 0)
    res = factory.api_as(reviewer).post(f"/api/v1/projects/{pid}/items/{other_id}/report", json={})
    assert res.status_code == 200 and res.json()["item_id"] == str(other_id)
