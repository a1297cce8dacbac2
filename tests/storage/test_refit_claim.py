"""The re-fit lease (storage.quality.claim_refit): one process re-fits a project at a time."""

from __future__ import annotations

import threading
import time

import pytest

from goldlabel.storage.engine import write_tx
from goldlabel.storage.quality import claim_refit

HOLD_MS = 60_000


def test_claim_is_refused_while_held_and_taken_again_once_expired(ctx, factory):
    pid = factory.make_project()["id"]
    now = 1_000_000
    with write_tx(ctx.engine) as conn:
        assert claim_refit(conn, pid, now, HOLD_MS)  # first claim: inserts the row
    with write_tx(ctx.engine) as conn:
        assert not claim_refit(conn, pid, now + 1, HOLD_MS)
    with write_tx(ctx.engine) as conn:
        assert claim_refit(conn, pid, now + HOLD_MS + 1, HOLD_MS)  # the holder's lease ran out


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_two_first_claims_at_once_one_wins_and_none_fails(ctx, factory):
    # Two server workers' schedulers claim a project that has no re-fit row yet. The second
    # INSERT meets the first's uncommitted key: it must wait and be refused, not raise a unique
    # violation (seen in the server log under load before the fix).
    pid = factory.make_project()["id"]
    now = 1_000_000
    outcome: dict[str, object] = {}
    with ctx.engine.connect() as first:
        tx = first.begin()
        assert claim_refit(first, pid, now, HOLD_MS)

        def second() -> None:
            try:
                with write_tx(ctx.engine) as conn:
                    outcome["claimed"] = claim_refit(conn, pid, now, HOLD_MS)
            except Exception as exc:  # noqa: BLE001 - the test reports it
                outcome["error"] = exc

        worker = threading.Thread(target=second)
        worker.start()
        time.sleep(0.3)
        assert worker.is_alive(), "the second claim should wait for the first one's COMMIT"
        tx.commit()
        worker.join(10)
    assert outcome == {"claimed": False}
