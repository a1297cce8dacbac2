"""API fuzzing in CI (issue 17, item 12): schemathesis against the OpenAPI schema of a live
server on loopback (uvicorn, the real app, SQLite and PostgreSQL), as two identities, a manager
of one project and an annotator of another, then stateful sequences along the links schemathesis
infers (a created resource's id fed to the operations taking it). The only check is the one a
fuzzer is for: no 5xx, ever; every bad input is a 4xx.

Budget: a fixed number of generated cases per operation and identity, and a wall-clock cap per
phase, so the file stays well under two minutes on the CI machine.

Shared identities are not logged out by the fuzzing: before each operation both identities are
made active again with fresh tokens (an operation that revokes tokens, ends sessions or suspends
a user then costs only its own remaining cases), the operations that delete or revoke run last,
and the stateful phase leaves the token- and session-revoking operations out.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

import hypothesis
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from schemathesis import GenerationMode

from goldlabel.services import users as user_service
from goldlabel.services.access import Actor

CASES_PER_OPERATION = 8  # per identity
STATEFUL_SCENARIOS = 10
STATEFUL_BATCHES = 4
PHASE_BUDGET_S = 30.0
REVOKING = ("/tokens/{token_id}", "/sessions")
OPERATOR = Actor(0, "fuzz-operator", "admin")


def _free_socket():
    import socket

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def live(app):
    sock = _free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the fuzz server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


class World:
    """Two projects, each with its own manager and annotator; the fuzzing identities are the
    manager of one and the annotator of the other."""

    def __init__(self, factory: Any) -> None:
        self.factory = factory
        self.ctx = factory.ctx
        self.annotator_1 = factory.make_user()
        self.annotator_2 = factory.make_user()
        self.p1 = factory.make_project(annotators=[self.annotator_1], name="fuzz one")
        self.p2 = factory.make_project(annotators=[self.annotator_2], name="fuzz two")
        self.manager = self.p1["manager"]
        factory.add_items(self.p1, 5)
        factory.add_items(self.p2, 5)
        annotator_api = factory.api_as(self.annotator_2)
        lease = annotator_api.post(f"/api/v1/projects/{self.p2['id']}/next").json()
        answer = annotator_api.post(f"/api/v1/projects/{self.p2['id']}/answers",
                                    json={"lease_token": lease["token"], "value": {"sentiment": "positive"}})
        assert answer.status_code == 201, answer.text
        self.answer_id = answer.json()["answer"]["id"]
        self.item_ref = answer.json()["answer"]["item_id"]  # the annotator's reference to the item
        items = factory.api_as(self.manager).get(f"/api/v1/projects/{self.p1['id']}/items").json()["items"]
        self.item_ids = [i["id"] for i in items]
        self.identities = {"manager": self.manager, "annotator": self.annotator_2}
        self.own_project = {"manager": self.p1["id"], "annotator": self.p2["id"]}
        self.tokens: dict[str, str] = {}

    def refresh(self) -> None:
        """Both identities active again, each with a fresh token."""
        for name, actor in self.identities.items():
            user_service.update_user(self.ctx, OPERATOR, actor.id, {"is_active": True})
            self.tokens[name] = user_service.create_token(self.ctx, None, actor.id, "fuzz")["token"]

    def realistic(self, case: Any, who: str, rng: random.Random) -> None:
        """Most cases aim at ids that exist (the identity's project, its items, the other
        identity): random ids alone would mostly meet 404s before any validation."""
        params = case.path_parameters or {}
        if rng.random() < 0.25:
            return
        choices = {
            "project_id": [self.own_project[who]] * 3 + [self.p1["id"], self.p2["id"]],
            "user_id": [self.manager.id, self.annotator_1.id, self.annotator_2.id],
            "annotator_id": [self.annotator_1.id, self.annotator_2.id],
            "item_id": self.item_ids,
            "item_ref": [*map(str, self.item_ids), self.item_ref],
            "answer_id": [self.answer_id],
        }
        for name in list(params):
            if name in choices:
                params[name] = rng.choice(choices[name])


def _order(operation: Any) -> tuple[int, str]:
    """Reads and writes first; deletions, then revocations, last."""
    path = operation.path
    if any(path.endswith(r) for r in REVOKING):
        return (2, operation.label)
    return (1 if operation.method.upper() == "DELETE" else 0, operation.label)


def _server_error(res: Any) -> bool:
    return res.status_code >= 500


def fuzz_operation(operation: Any, who: str, world: World, rng: random.Random, live: str,
                   statuses: Counter, failures: list[str]) -> None:
    """CASES_PER_OPERATION cases of one operation as one identity: valid inputs and invalid
    ones (schemathesis' negative mode: wrong types, values out of range, missing fields)."""
    headers = {"Authorization": f"Bearer {world.tokens[who]}"}
    strategy = operation.as_strategy() | operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)

    @given(case=strategy)
    @hsettings(max_examples=CASES_PER_OPERATION, deadline=None, database=None, derandomize=True,
               phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        world.realistic(case, who, rng)
        res = case.call(base_url=live, headers=headers, timeout=30)
        statuses[res.status_code] += 1
        if _server_error(res):
            failures.append(f"{who}: {res.status_code} from {case.as_curl_command(headers)}\n  {res.text[:300]}")

    run()


def test_fuzz_the_api_as_two_identities_finds_no_500(live, factory, backend):
    world = World(factory)
    schema = schemathesis.openapi.from_url(f"{live}/api/v1/openapi.json")
    operations = sorted((r.ok() for r in schema.get_all_operations()), key=_order)
    assert len(operations) >= 40
    rng = random.Random(17)
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    started = time.monotonic()
    for operation in operations:
        world.refresh()
        for who in world.identities:
            if time.monotonic() - started > PHASE_BUDGET_S:
                break
            fuzz_operation(operation, who, world, rng, live, statuses, failures)
    # The stateful phase: sequences along the inferred links (create -> read / update / delete).
    stateful = schema.exclude(path_regex=r".*/(tokens/\{token_id\}|sessions)$")
    machine = stateful.as_state_machine()
    world.refresh()
    stateful_steps = Counter()

    class Machine(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": live, "headers": {"Authorization": f"Bearer {world.tokens['manager']}"},
                    "timeout": 30}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            stateful_steps[response.status_code] += 1
            if _server_error(response):
                failures.append(f"stateful: {response.status_code} from {case.method} {case.formatted_path}\n"
                                f"  {response.text[:300]}")

    # Responses decide which links can be followed, and the server's state carries over from one
    # scenario to the next, so hypothesis may find a replayed prefix choosing differently and
    # stop with FlakyStrategyDefinition: that ends one batch of scenarios, not the phase.
    stateful_started = time.monotonic()
    batches = 0
    while time.monotonic() - stateful_started < PHASE_BUDGET_S / 2 and batches < STATEFUL_BATCHES:
        batches += 1
        try:
            Machine.run(settings=hsettings(max_examples=STATEFUL_SCENARIOS, stateful_step_count=6,
                                           deadline=None, database=None,
                                           suppress_health_check=list(HealthCheck),
                                           phases=[Phase.explicit, Phase.generate]))
        except hypothesis.errors.FlakyStrategyDefinition:
            pass
    cases = sum(statuses.values())
    total = cases + sum(stateful_steps.values())
    print(f"fuzz ({backend}): {cases} cases over {len(operations)} operations x 2 identities, "
          f"{sum(stateful_steps.values())} stateful steps, {total} requests in "
          f"{time.monotonic() - started:.0f} s; statuses {dict(sorted((statuses + stateful_steps).items()))}; "
          f"5xx: {len(failures)}")
    assert not failures, f"{len(failures)} server errors:\n" + "\n".join(failures[:20])
    # The fuzzing reached past authentication and validation: some cases succeeded.
    assert statuses[200] + statuses[201] > 20, statuses
    assert sum(stateful_steps.values()) > 0, "the stateful phase ran no step"
