"""Webhooks: per-project subscriptions, delivered from the events outbox (Q9).

Every change that announces itself writes an ``events`` row in its own transaction, so a
rolled-back change has no event and a committed one has one. The worker (``WebhookWorker``, a
thread of each serving process) works in two steps, each its own transaction:

1. route: take the oldest events not yet routed (``delivered_at`` NULL: "handed to webhook
   delivery"), write one ``webhook_deliveries`` row per matching active subscription, and mark
   the events routed, all at once;
2. send: claim due deliveries (``claimed_until``; PostgreSQL ``FOR UPDATE SKIP LOCKED``, so the
   workers of several processes never claim the same one), POST each through the outbound
   guard, then record the outcome. A worker killed between the claim and the record leaves the
   claim to expire and another worker sends again: at least once, so receivers de-duplicate on
   the event id (``Goldlabel-Webhook-Id``).

Failures are retried with exponential back-off until ``webhook_retry_window_s`` has passed
since the delivery was created (or re-sent by a manager); then the delivery is ``failed``.
"""

from __future__ import annotations

import json
import logging
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from goldlabel import __version__
from goldlabel.domain import webhooks as rules
from goldlabel.domain.errors import FieldError, invalid, not_found
from goldlabel.domain.webhooks import OutboundRefused
from goldlabel.services import audit
from goldlabel.services.access import Actor, load_project
from goldlabel.services.background import BackgroundLoop
from goldlabel.services.context import Context
from goldlabel.services.outbound_guard import guarded_client
from goldlabel.storage import webhooks as store
from goldlabel.storage.engine import now_ms, read_tx, write_tx

log = logging.getLogger(__name__)

ROUTE_BATCH = 500
# Deliveries claimed and sent at once (in parallel): one slow receiver holds up at most one
# batch for one timeout, well inside the claim (``webhook_claim_s``).
SEND_BATCH = 8
PRUNE_EVERY_MS = 600_000
PRUNE_BATCH = 10_000

_SUBSCRIPTION_FIELDS = ("id", "project_id", "url", "event_types", "is_active", "description",
                        "created_by", "created_at")
_DELIVERY_FIELDS = ("id", "subscription_id", "event_id", "status", "attempts", "next_attempt_at",
                    "retry_until", "last_attempt_at", "response_status", "last_error", "created_at",
                    "delivered_at")


def public_subscription(row: dict) -> dict[str, Any]:
    return {k: row[k] for k in _SUBSCRIPTION_FIELDS}


def public_delivery(row: dict) -> dict[str, Any]:
    return {**{k: row[k] for k in _DELIVERY_FIELDS}, "event_type": row["kind"]}


def _check_url(ctx: Context, url: str) -> str:
    """Refuse at once what the guard would refuse at every send: a bad URL, an IP address in
    another spelling, an IP literal that is not public. A host name is resolved at send time."""
    try:
        _scheme, host, _port = rules.check_url(url)
        if host.replace(".", "").isdigit() or ":" in host:
            rules.check_address(host, rules.parse_allow_list(ctx.settings.webhook_allowed_networks))
    except OutboundRefused as exc:
        raise invalid([FieldError(("url",), exc.code, str(exc))]) from exc
    if len(url) > 2000:
        raise invalid([FieldError(("url",), "too_long", "at most 2000 characters")])
    return url


def create_subscription(ctx: Context, actor: Actor, project_id: int, url: str, event_types: list[str],
                        description: str = "") -> dict[str, Any]:
    """A new subscription, with its signing secret: the only time the secret is returned."""
    url = _check_url(ctx, url)
    types = rules.check_event_types(event_types)
    secret = "whsec_" + secrets.token_urlsafe(32)
    with write_tx(ctx.engine) as conn:
        load_project(conn, actor, project_id, "manage")
        row = store.insert_subscription(
            conn, project_id=project_id, url=url, event_types=types, secret=secret, is_active=True,
            description=description, created_by=actor.id, created_at=now_ms(),
        )
        audit.record(conn, actor, "webhook.create", project_id=project_id, target=("webhook", row["id"]),
                     detail={"url": url, "event_types": types})
    return {**public_subscription(row), "secret": secret}


def list_subscriptions(ctx: Context, actor: Actor, project_id: int) -> list[dict[str, Any]]:
    with read_tx(ctx.engine) as conn:
        load_project(conn, actor, project_id, "manage")
        return [public_subscription(r) for r in store.list_subscriptions(conn, project_id)]


def _load_subscription(conn, actor: Actor, project_id: int, subscription_id: int) -> dict:
    load_project(conn, actor, project_id, "manage")
    row = store.fetch_subscription(conn, project_id, subscription_id)
    if row is None:
        raise not_found("webhook subscription")
    return row


def get_subscription(ctx: Context, actor: Actor, project_id: int, subscription_id: int) -> dict[str, Any]:
    with read_tx(ctx.engine) as conn:
        return public_subscription(_load_subscription(conn, actor, project_id, subscription_id))


def update_subscription(ctx: Context, actor: Actor, project_id: int, subscription_id: int,
                        changes: dict[str, Any]) -> dict[str, Any]:
    """Change the URL, event types, description or is_active (the secret stays)."""
    if "url" in changes:
        changes["url"] = _check_url(ctx, changes["url"])
    if "event_types" in changes:
        changes["event_types"] = rules.check_event_types(changes["event_types"])
    with write_tx(ctx.engine) as conn:
        _load_subscription(conn, actor, project_id, subscription_id)
        if changes:
            store.update_subscription(conn, subscription_id, changes)
            audit.record(conn, actor, "webhook.update", project_id=project_id,
                         target=("webhook", subscription_id), detail=changes)
        return public_subscription(store.fetch_subscription(conn, project_id, subscription_id))


def delete_subscription(ctx: Context, actor: Actor, project_id: int, subscription_id: int) -> None:
    with write_tx(ctx.engine) as conn:
        row = _load_subscription(conn, actor, project_id, subscription_id)
        store.delete_subscription(conn, subscription_id)
        audit.record(conn, actor, "webhook.delete", project_id=project_id, target=("webhook", subscription_id),
                     detail={"url": row["url"]})


def list_deliveries(ctx: Context, actor: Actor, project_id: int, subscription_id: int, *,
                    before: int = 0, limit: int = 100, status: str | None = None) -> list[dict[str, Any]]:
    """The delivery log, newest first (``before``: a delivery id, for the next page)."""
    with read_tx(ctx.engine) as conn:
        _load_subscription(conn, actor, project_id, subscription_id)
        rows = store.list_deliveries(conn, subscription_id, before, limit, status)
        return [public_delivery(r) for r in rows]


def resend_delivery(ctx: Context, actor: Actor, project_id: int, subscription_id: int,
                    delivery_id: int) -> dict[str, Any]:
    """Send a delivery again as soon as a worker can, with a fresh retry window, whatever its
    status (the receiver sees the same event id again)."""
    with write_tx(ctx.engine) as conn:
        _load_subscription(conn, actor, project_id, subscription_id)
        if store.fetch_delivery(conn, subscription_id, delivery_id) is None:
            raise not_found("webhook delivery")
        now = now_ms()
        store.requeue_delivery(conn, delivery_id, now, now + int(ctx.settings.webhook_retry_window_s * 1000))
        return public_delivery(store.fetch_delivery(conn, subscription_id, delivery_id))


# ---- delivery --------------------------------------------------------------------------------


def route_events(ctx: Context, now: int | None = None) -> int:
    """Fan the next batch of outbox events out to their subscriptions; returns how many events
    it routed (fewer than ``ROUTE_BATCH``: the outbox is empty for now)."""
    now = now_ms() if now is None else now
    retry_window = int(ctx.settings.webhook_retry_window_s * 1000)
    with read_tx(ctx.engine) as conn:
        # No subscriber anywhere: leave the outbox alone, so a server without webhooks spends
        # one cheap read a poll (no write: on SQLite a write would wait for the annotate loop's
        # writers). A later subscription hears only of later events, so nothing is lost.
        if not store.has_active_subscriptions(conn):
            return 0
    with write_tx(ctx.engine) as conn:
        batch = store.claim_unrouted_events(conn, ROUTE_BATCH)
        if not batch:
            return 0
        project_ids = sorted({e["project_id"] for e in batch if e["project_id"] is not None})
        subs: dict[int, list[dict]] = {}
        for sub in store.list_active_subscriptions(conn, project_ids) if project_ids else []:
            subs.setdefault(sub["project_id"], []).append(sub)
        rows = [
            {"subscription_id": sub["id"], "event_id": e["id"], "project_id": e["project_id"],
             "status": "pending", "attempts": 0, "next_attempt_at": now, "retry_until": now + retry_window,
             "created_at": now}
            for e in batch
            for sub in subs.get(e["project_id"], ())
            # A subscription hears of what happened after it was made, not of older history.
            if sub["created_at"] <= e["created_at"] and rules.is_subscribed(sub["event_types"], e["kind"])
        ]
        store.insert_deliveries(conn, rows)
        store.mark_events_routed(conn, [e["id"] for e in batch], now)
        return len(batch)


def webhook_body(delivery: dict) -> bytes:
    """The JSON every receiver gets (docs/webhooks.md)."""
    return json.dumps(
        {"id": delivery["event_id"], "type": delivery["kind"], "project_id": delivery["project_id"],
         "created_at": delivery["event_created_at"], "data": delivery["payload"]},
        separators=(",", ":"), sort_keys=True,
    ).encode()


def _send(client: httpx.Client, delivery: dict, timestamp: int) -> tuple[int | None, str | None]:
    """POST one delivery: (HTTP status or None, error or None). Only a 2xx is a success; a
    redirect is not followed (the guard would have to trust where it points)."""
    body = webhook_body(delivery)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"goldlabel-webhooks/{__version__}",
        rules.HEADER_ID: str(delivery["event_id"]),
        rules.HEADER_TIMESTAMP: str(timestamp),
        rules.HEADER_SIGNATURE: rules.sign(delivery["secret"], timestamp, body),
    }
    try:
        rules.check_url(delivery["url"])
        response = client.post(delivery["url"], content=body, headers=headers)
    except OutboundRefused as exc:
        return None, f"refused by the outbound guard: {exc}"
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}"


class WebhookWorker(BackgroundLoop):
    """Routes outbox events and sends due deliveries every ``poll_interval_s``; one per
    serving process (``goldlabel.app`` starts it), any number of them on one database."""

    thread_name = "goldlabel-webhooks"
    failure = "webhook delivery round failed"
    jitter = 0.0  # one worker per process, and each round claims its deliveries: no herd to spread

    def __init__(self, ctx: Context, poll_interval_s: float | None = None) -> None:
        s = ctx.settings
        super().__init__(s.webhook_poll_interval_s if poll_interval_s is None else poll_interval_s)
        self.ctx = ctx
        self.join_timeout_s = s.webhook_timeout_s + 5  # a send in flight ends within its timeout
        self._client = guarded_client(s.webhook_allowed_networks, timeout=s.webhook_timeout_s)
        self._pool = ThreadPoolExecutor(SEND_BATCH, thread_name_prefix="goldlabel-webhook-send")
        self._next_prune_at = 0

    def stop(self) -> None:
        super().stop()
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()

    def run_once(self, now: int | None = None) -> int:
        """Route every waiting event, then send every due delivery; returns how many were sent
        (successfully or not). ``now``: the clock, for tests of expiry and back-off."""
        while route_events(self.ctx, now) == ROUTE_BATCH and not self.stopping:
            pass
        self.prune_log(now)
        sent = 0
        while not self.stopping:
            done = self.send_due(now)
            sent += done
            if done < SEND_BATCH:
                break
        return sent

    def prune_log(self, now: int | None = None) -> int:
        """At most once every PRUNE_EVERY_MS per worker: drop finished deliveries older than
        ``webhook_log_retention_s`` (a batch at a time, so no one statement runs long)."""
        now = now_ms() if now is None else now
        if now < self._next_prune_at:
            return 0
        self._next_prune_at = now + PRUNE_EVERY_MS
        before = now - int(self.ctx.settings.webhook_log_retention_s * 1000)
        with write_tx(self.ctx.engine) as conn:
            return store.delete_old_deliveries(conn, before, PRUNE_BATCH)

    def send_due(self, now: int | None = None) -> int:
        """Claim up to SEND_BATCH due deliveries, send them in parallel, record the outcomes."""
        s = self.ctx.settings
        now = now_ms() if now is None else now
        claim_until = now + int(s.webhook_claim_s * 1000)
        with write_tx(self.ctx.engine) as conn:
            batch = store.claim_due_deliveries(conn, now, SEND_BATCH, claim_until)
        if not batch:
            return 0
        timestamp = now_ms() // 1000  # the real clock: receivers compare it with theirs
        outcomes = list(self._pool.map(lambda d: _send(self._client, d, timestamp), batch))
        done_at = max(now, now_ms())
        with write_tx(self.ctx.engine) as conn:
            for delivery, (status, error) in zip(batch, outcomes, strict=True):
                attempts = delivery["attempts"] + 1
                changes: dict[str, Any] = {"attempts": attempts, "last_attempt_at": done_at,
                                           "response_status": status, "last_error": error}
                if error is None:
                    changes.update(status="delivered", delivered_at=done_at)
                else:
                    wait = rules.backoff_ms(attempts, s.webhook_retry_base_s)
                    if now + wait > delivery["retry_until"]:
                        changes["status"] = "failed"
                    else:
                        changes["next_attempt_at"] = now + wait
                if not store.record_attempt(conn, delivery["id"], claim_until, changes):
                    log.warning("webhook delivery %s: claim lost while sending", delivery["id"])
        return len(batch)
