"""SDK fixtures: ``connect(actor)`` -> a ``Client`` on the real app in process (no server, no mocks)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from goldlabel.client import Client
from goldlabel.client.transport import ASGIAppTransport
from goldlabel.services.access import Actor

BASE_URL = "http://goldlabel.test"


@pytest.fixture
def make_user(factory) -> Callable[..., Actor]:
    """Users without a password: Argon2 costs ~1 s a hash here, and the SDK signs in with tokens."""

    def make(role: str = "annotator") -> Actor:
        return factory.make_user(role, password=None)

    return make


@pytest.fixture
def connect(factory, app) -> Iterator[Callable[..., Client]]:
    clients: list[Client] = []

    def connect_(actor: Actor | None = None, *, token: str | None = None, transport=None) -> Client:
        if actor is not None:
            token = factory.token_for(actor)
        client = Client(BASE_URL, token, transport=transport or ASGIAppTransport(app))
        clients.append(client)
        return client

    yield connect_
    for client in clients:
        client.close()
