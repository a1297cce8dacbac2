"""The project model as one more annotator in the live consensus, on SQLite and PostgreSQL: its
skill is learned by the re-fit where humans answered; one human plus an agreeing confident model
finalizes an item that one human alone does not; a disagreeing model does not; the model alone
never does. The "model" here is a fixed predictor whose predictions are stored as the model
worker stores them (the worker's training is tested in test_model_worker.py)."""

from __future__ import annotations

import json

import sqlalchemy as sa

from goldlabel.services import models as model_service
from goldlabel.services.models.settings import ensure_state
from goldlabel.services.queue import lease as lease_service
from goldlabel.services.queue import submit as submit_service
from goldlabel.services.refit import refit_project
from goldlabel.storage import models as model_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx
from goldlabel.storage.tables import consensus, items

SCHEMA = {"questions": [{"name": "label", "kind": "choice", "labels": ["yes", "no"]}]}
N_TRAIN = 80
OTHER = {"yes": "no", "no": "yes"}


def _setup(factory):
    trainers = [factory.make_user() for _ in range(3)]
    human = factory.make_user()
    project = factory.make_project(schema=SCHEMA, annotators=[*trainers, human], overlap_min=1, overlap_max=3,
                                   settings={"target_confidence": 0.95})
    pid = project["id"]
    rows = [{"external_id": f"t{i}", "data": {"text": f"train {i}"}, "priority": 1} for i in range(N_TRAIN)]
    rows += [{"external_id": name, "data": {"text": name}} for name in ("agree", "disagree", "control", "alone")]
    res = factory.api_as(project["manager"]).post(f"/api/v1/projects/{pid}/items", json=rows)
    assert res.status_code in (200, 201), res.text
    with read_tx(factory.ctx.engine) as conn:
        ids = dict(conn.execute(sa.select(items.c.external_id, items.c.id).where(items.c.project_id == pid)).all())
    truth = {ids[f"t{i}"]: ("yes" if i % 3 else "no") for i in range(N_TRAIN)}
    # a ready model version and its predictions, as services/models/ writes them
    now = now_ms()
    with write_tx(factory.ctx.engine) as conn:
        ensure_state(conn, pid, now)
        model_store.insert_version(conn, project_id=pid, question="label", version="v1", embedder="test",
                                   status="ready", labels=N_TRAIN, created_at=now)
        votes = {**{i: t for i, t in truth.items()}, ids["agree"]: "yes", ids["disagree"]: "no", ids["alone"]: "yes"}
        model_store.replace_model_predictions(conn, pid, [
            {"item_id": i, "model_version": model_store.MODEL_PREFIX + "v1", "value": {"label": v}, "score": 0.995,
             "created_at": now} for i, v in votes.items()])
    # three annotators answer every training item, each wrong on a different fifth of them
    for k, trainer in enumerate(trainers):
        for _ in range(N_TRAIN):
            lease = lease_service.lease_next(factory.ctx, trainer, pid)
            item_id = factory.item_id(trainer, pid, lease["item"]["id"])
            index = int(next(e for e, i in ids.items() if i == item_id)[1:])
            value = truth[item_id] if (index + k) % 5 else OTHER[truth[item_id]]
            submit_service.submit_answer(factory.ctx, trainer, pid, lease["token"], {"label": value})
    return project, human, ids


def _answer(factory, human, pid: int, expect_item: int, label: str) -> str:
    api = factory.api_as(human)
    lease = api.post(f"/api/v1/projects/{pid}/next").json()
    assert factory.item_id(human, pid, lease["item"]["id"]) == expect_item
    res = api.post(f"/api/v1/projects/{pid}/answers", json={"lease_token": lease["token"], "value": {"label": label}})
    assert res.status_code == 201, res.text
    return res.json()["item_status"]


def _status(factory, item_id: int) -> str:
    with read_tx(factory.ctx.engine) as conn:
        return conn.execute(sa.select(items.c.status).where(items.c.id == item_id)).scalar_one()


def test_model_annotator_finalizes_with_one_agreeing_human_never_alone(factory, ctx):
    project, human, ids = _setup(factory)
    pid, manager = project["id"], project["manager"]
    assert model_service.status(ctx, manager, pid)["settings"]["model_annotator"] is True  # the default
    refit_project(ctx, None, pid)
    view = model_service.status(ctx, manager, pid)["annotator"]
    assert view is not None and view["question"] == "label"
    top = view["bands"][-1]  # scores 0.995: the 0.99 band, learned on the 80 items humans answered
    assert top["from"] == 0.99 and top["n_answers"] == N_TRAIN and top["accuracy"] > 0.95

    assert _answer(factory, human, pid, ids["agree"], "yes") == "final"
    assert _answer(factory, human, pid, ids["disagree"], "yes") == "open"
    assert _answer(factory, human, pid, ids["control"], "yes") == "open"  # the same human, no model vote
    with read_tx(ctx.engine) as conn:
        rows = {r.item_id: r for r in conn.execute(sa.select(consensus).where(consensus.c.project_id == pid))}
    assert rows[ids["agree"]].contributions["model"] == "yes"
    assert rows[ids["agree"]].method == "posterior+model" and rows[ids["agree"]].confidence >= 0.95
    assert rows[ids["control"]].method == "posterior" and rows[ids["control"]].confidence < 0.95
    assert ids["alone"] not in rows  # a prediction and no human answer: no consensus at all

    # the re-fit keeps it so: the model alone never finalizes, nor does it overrule a human
    refit_project(ctx, None, pid)
    assert _status(factory, ids["alone"]) == "open"
    assert _status(factory, ids["agree"]) == "final"
    assert _status(factory, ids["disagree"]) == "open"

    # the export names the model's part in the label
    res = factory.api_as(manager).get(f"/api/v1/projects/{pid}/export", params={"format": "jsonl"})
    assert res.status_code == 200, res.text
    records = {r["id"]: r for r in map(json.loads, res.text.splitlines())}
    assert records[ids["agree"]]["source"]["label"] == "consensus+model"
    assert records[ids["control"]]["source"]["label"] == "consensus"


def test_model_annotator_setting_off_forgets_its_skill(factory, ctx):
    project, human, ids = _setup(factory)
    pid, manager = project["id"], project["manager"]
    res = factory.api_as(manager).patch(f"/api/v1/projects/{pid}/models/settings", json={"model_annotator": False})
    assert res.status_code == 200, res.text
    refit_project(ctx, None, pid)
    assert model_service.status(ctx, manager, pid)["annotator"] is None
    with read_tx(ctx.engine) as conn:
        assert model_store.fetch_model_vote(conn, pid, ids["agree"]) is None
    # one human alone, as without a model
    assert _answer(factory, human, pid, ids["agree"], "yes") == "open"
