"""What the app does when a server process starts it (its lifespan, driven by hand over ASGI)."""

from __future__ import annotations

import asyncio
import gc

import pytest

from goldlabel.app import create_app
from goldlabel.config import Settings


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def freeze_count_while_running(app) -> int:
    """Start the app's lifespan, read gc.get_freeze_count() while it runs, shut it down."""

    async def run() -> int:
        inbox: asyncio.Queue = asyncio.Queue()
        outbox: asyncio.Queue = asyncio.Queue()
        task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                                       inbox.get, outbox.put))
        await inbox.put({"type": "lifespan.startup"})
        assert (await outbox.get())["type"] == "lifespan.startup.complete"
        count = gc.get_freeze_count()
        await inbox.put({"type": "lifespan.shutdown"})
        assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
        await task
        return count

    return asyncio.run(run())


def test_a_server_process_freezes_its_startup_heap(tmp_path, unfrozen):
    """create_app(settings) owns its context, as `goldlabel serve` and uvicorn's factory do:
    after start-up the objects alive then are moved out of the cyclic collector's view."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'own.db'}", refit_interval_s=0)
    app = create_app(settings)
    assert gc.get_freeze_count() == 0
    assert freeze_count_while_running(app) > 1000


def test_an_app_on_a_given_context_leaves_the_collector_alone(ctx, unfrozen):
    """Tests and embedders pass their own context: nothing of theirs is frozen."""
    assert freeze_count_while_running(create_app(context=ctx, migrate=False)) == 0
