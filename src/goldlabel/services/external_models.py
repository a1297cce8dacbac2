"""Calling an external model (docs/models.md, "External models"): an HTTP endpoint a project
names by URL, or a Python entry point the operator registered (setting ``external_models``,
``name=module:callable``) and a project names by name. Both speak the protocol of
``goldlabel.models.external``: a batch request in, predictions with scores out.

HTTP goes through the one outbound guard (services/outbound_guard.py: no loopback, private,
link-local or metadata address unless ``external_model_allowed_networks`` lets it through; no
redirects, no proxies), with ``external_model_timeout_s`` per call and
``external_model_retries`` retries of a timeout, a network error, an HTTP 5xx or 429 (0.5 s,
doubling). A Python entry point runs on a worker thread and is given up after the same timeout.
Whatever fails raises :class:`ExternalModelError` with what happened; the caller records it and
leaves the items with the humans.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import httpx

from goldlabel.domain.webhooks import OutboundRefused, check_url
from goldlabel.services.context import Context
from goldlabel.services.outbound_guard import guarded_client

#: an answer is cut here (the guard reads at most this much): about 10,000 predictions
MAX_ANSWER_BYTES = 1024 * 1024
RETRY_BASE_S = 0.5

_lock = threading.Lock()
_pool = ThreadPoolExecutor(4, thread_name_prefix="goldlabel-external-model")


class ExternalModelError(Exception):
    """The external model could not be asked, or did not answer by the protocol."""


def is_url(target: str) -> bool:
    return target.startswith(("http://", "https://"))


def registered(ctx: Context) -> dict[str, str]:
    """The operator's entry points: name -> ``module:callable``."""
    out = {}
    for entry in filter(None, (e.strip() for e in ctx.settings.external_models.split(","))):
        name, _, spec = entry.partition("=")
        out[name.strip()] = spec.strip()
    return out


def check_target(ctx: Context, target: str) -> str | None:
    """Why a project cannot name ``target`` as its external model, or None."""
    if is_url(target):
        try:
            check_url(target)
        except OutboundRefused as exc:
            return f"the URL is refused: {exc}"
        return None
    if target not in registered(ctx):
        names = ", ".join(sorted(registered(ctx))) or "none are registered (setting external_models)"
        return f"not an http(s) URL nor a registered entry point ({names})"
    return None


def ask(ctx: Context, target: str, request: dict[str, Any]) -> Any:
    """The external model's answer (decoded JSON) to ``request``, retried as the settings say."""
    s = ctx.settings
    attempts = 1 + s.external_model_retries
    last = ""
    for attempt in range(attempts):
        if attempt:
            time.sleep(RETRY_BASE_S * 2 ** (attempt - 1))
        try:
            return _http(ctx, target, request) if is_url(target) else _python(ctx, target, request)
        except _Retry as exc:
            last = str(exc)
    raise ExternalModelError(f"{last} (after {attempts} attempts)")


class _Retry(Exception):
    """A failure worth another attempt (a timeout, a network error, a 5xx or 429)."""


def _client(ctx: Context) -> httpx.Client:
    with _lock:
        client = ctx.__dict__.get("_external_model_client")
        if client is None:
            s = ctx.settings
            client = guarded_client(s.external_model_allowed_networks, timeout=s.external_model_timeout_s,
                                    max_response_bytes=MAX_ANSWER_BYTES)
            ctx.__dict__["_external_model_client"] = client
        return client


def _http(ctx: Context, url: str, request: dict[str, Any]) -> Any:
    try:
        check_url(url)
        response = _client(ctx).post(url, content=json.dumps(request).encode(),
                                     headers={"Content-Type": "application/json"})
    except OutboundRefused as exc:
        raise ExternalModelError(f"refused by the outbound guard: {exc}") from exc
    except httpx.TimeoutException as exc:
        raise _Retry(f"timed out after {ctx.settings.external_model_timeout_s} s") from exc
    except httpx.HTTPError as exc:
        raise _Retry(f"{type(exc).__name__}: {exc}"[:300]) from exc
    if response.status_code >= 500 or response.status_code == 429:
        raise _Retry(f"HTTP {response.status_code}")
    if response.status_code != 200:
        raise ExternalModelError(f"HTTP {response.status_code}: {response.text[:200]}")
    try:
        return response.json()
    except ValueError as exc:
        raise ExternalModelError(f"the answer is not JSON: {response.text[:100]!r}") from exc


def _python(ctx: Context, name: str, request: dict[str, Any]) -> Any:
    from goldlabel.models.external import load_entry_point

    spec = registered(ctx).get(name)
    if spec is None:
        raise ExternalModelError(f"no entry point {name!r} is registered (setting external_models)")
    try:
        fn = load_entry_point(spec)
    except Exception as exc:
        raise ExternalModelError(f"entry point {spec!r} cannot be loaded: {exc}") from exc
    future = _pool.submit(fn, json.loads(json.dumps(request)))  # a copy it may keep or change
    try:
        answer = future.result(timeout=ctx.settings.external_model_timeout_s)
    except FutureTimeout as exc:
        raise _Retry(f"timed out after {ctx.settings.external_model_timeout_s} s") from exc
    except Exception as exc:
        raise ExternalModelError(f"{type(exc).__name__}: {exc}"[:300]) from exc
    try:
        return json.loads(json.dumps(answer))  # what it would have sent as JSON
    except (TypeError, ValueError) as exc:
        raise ExternalModelError(f"the answer is not JSON-able: {exc}") from exc
