"""The outbound guard: a canary HTTP server on loopback must see zero hits from goldlabel
without an allow-list, whatever the spelling of its address and through redirects."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from pydantic import ValidationError

from goldlabel.config import Settings
from goldlabel.domain.webhooks import OutboundRefused, check_address, check_url, parse_allow_list
from goldlabel.services.context import Context
from goldlabel.services.outbound_guard import MAX_RESPONSE_BYTES, guarded_client
from goldlabel.services.webhooks import WebhookWorker
from goldlabel.storage import consensus_events
from goldlabel.storage.engine import now_ms, write_tx


class Server:
    """Counts requests; answers 200, or 302 to ``redirect_to`` when set."""

    def __init__(self, host: str = "127.0.0.1", redirect_to: str | None = None, port: int = 0) -> None:
        self.hits = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                server.hits += 1
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self.send_response(302 if redirect_to else 200)
                if redirect_to:
                    self.send_header("Location", redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _answer

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer((host, port), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def canary() -> Iterator[Server]:
    s = Server("127.0.0.1")
    yield s
    s.close()


def spellings(port: int) -> list[str]:
    """127.0.0.1 every way a URL can say it."""
    return [
        f"http://127.0.0.1:{port}/",
        f"http://localhost:{port}/",
        f"http://LOCALHOST.:{port}/",
        f"http://2130706433:{port}/",  # decimal
        f"http://0177.0.0.1:{port}/",  # octal
        f"http://0x7f000001:{port}/",  # hex
        f"http://0x7f.0.0.1:{port}/",
        f"http://127.1:{port}/",  # short
        f"http://127.0.1:{port}/",
        f"http://017700000001:{port}/",
        f"http://[::ffff:127.0.0.1]:{port}/",  # IPv4-mapped IPv6
        f"http://[::ffff:7f00:1]:{port}/",
        f"http://[0:0:0:0:0:ffff:127.0.0.1]:{port}/",
        f"http://[::1]:{port}/",
        f"http://0.0.0.0:{port}/",
        f"https://127.0.0.1:{port}/",
    ]


def attempt(client: httpx.Client, url: str) -> str:
    try:
        check_url(url)
        return str(client.post(url, content=b"{}").status_code)
    except OutboundRefused as exc:
        return exc.code
    except httpx.HTTPError as exc:
        return type(exc).__name__


def test_canary_on_loopback_sees_zero_hits_without_allow_list(canary):
    with guarded_client("", timeout=2) as client:
        outcomes = {url: attempt(client, url) for url in spellings(canary.port)}
    assert canary.hits == 0, outcomes
    # Refused by the guard (or, for "LOCALHOST.", not resolved at all): no request was made.
    assert set(outcomes.values()) <= {"address_refused", "ip_spelling", "NetworkError"}, outcomes
    assert list(outcomes.values()).count("NetworkError") <= 1, outcomes
    # The control: allow-listed, the plain spelling reaches it (so the canary can be hit) and the
    # other spellings are still refused.
    with guarded_client("127.0.0.1/32", timeout=2) as client:
        assert attempt(client, f"http://127.0.0.1:{canary.port}/") == "200"
        assert attempt(client, f"http://2130706433:{canary.port}/") == "ip_spelling"
        assert attempt(client, f"http://[::ffff:127.0.0.1]:{canary.port}/") == "ip_spelling"
    assert canary.hits == 1


def test_redirects_to_the_canary_are_not_followed():
    # The canary on 127.0.0.2, outside an allow-list that holds only the redirector (127.0.0.1).
    canary = Server("127.0.0.2")
    targets = [f"http://127.0.0.2:{canary.port}/", f"http://2130706434:{canary.port}/",
               f"http://[::ffff:127.0.0.2]:{canary.port}/"]
    redirectors = [Server("127.0.0.1", redirect_to=t) for t in targets]
    try:
        with guarded_client("127.0.0.1/32", timeout=2) as client:
            for r in redirectors:
                assert attempt(client, f"http://127.0.0.1:{r.port}/") == "302"
        assert [r.hits for r in redirectors] == [1, 1, 1]
        assert canary.hits == 0
    finally:
        for s in (canary, *redirectors):
            s.close()


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.255.255.254", "::1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
    "fd00:ec2::254", "fe80::1", "fc00::1", "100.64.0.1", "0.0.0.0", "::", "224.0.0.1", "ff02::1",
    "240.0.0.1", "255.255.255.255", "192.0.2.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
    "2002:a9fe:a9fe::1", "64:ff9b::a9fe:a9fe", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
])
def test_non_public_addresses_are_refused(address):
    with pytest.raises(OutboundRefused):
        check_address(address)


def test_public_addresses_and_allow_list():
    check_address("93.184.216.34")
    check_address("2606:2800:220:1:248:1893:25c8:1946")
    nets = parse_allow_list("10.0.0.0/8, 127.0.0.1")
    check_address("10.1.2.3", nets)
    check_address("127.0.0.1", nets)
    with pytest.raises(OutboundRefused):
        check_address("127.0.0.2", nets)
    with pytest.raises(ValueError, match="not an IP network"):
        parse_allow_list("10.0.0.0/8, intranet")


@pytest.mark.parametrize("url", ["http://metadata.google.internal/computeMetadata/v1/",
                                 "http://user:pw@example.com/", "gopher://example.com/", "http:///x"])
def test_urls_refused_before_any_lookup(url):
    with pytest.raises(OutboundRefused):
        check_url(url)


def test_a_webhook_to_loopback_reaches_nothing_without_allow_list(factory, settings, canary):
    """End to end: a subscription by host name (accepted: names are checked at each send) to a
    loopback canary; the worker, with no allow-list, refuses it and logs why."""
    project = factory.make_project()
    api = factory.api_as(project["manager"])
    url = f"http://localhost:{canary.port}/hook"
    hook = api.post(f"/api/v1/projects/{project['id']}/webhooks", json={"url": url, "event_types": ["*"]})
    assert hook.status_code == 201, hook.text
    with write_tx(factory.ctx.engine) as conn:
        consensus_events.insert_event(conn, project["id"], "item.final", {"item_id": 1}, now_ms())
    ctx = Context.from_settings(settings.model_copy(update={"webhook_retry_base_s": 0.01}))
    worker = WebhookWorker(ctx)
    try:
        assert worker.run_once() == 1
    finally:
        worker.close()
        ctx.close()
    assert canary.hits == 0
    [d] = api.get(f"/api/v1/projects/{project['id']}/webhooks/{hook.json()['id']}/deliveries").json()
    assert d["status"] == "pending" and d["response_status"] is None
    assert d["last_error"].startswith("refused by the outbound guard: 127.0.0.1 is not a public address")


def test_a_receiver_cannot_fill_our_memory():
    big = 8 * 1024 * 1024

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(big))
            self.end_headers()
            try:
                self.wfile.write(b"x" * big)
            except OSError:
                pass  # we hung up after the first 64 KiB

        def log_message(self, *args) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with guarded_client("127.0.0.1/32", timeout=5) as client:
            res = client.post(f"http://127.0.0.1:{httpd.server_address[1]}/", content=b"{}")
        assert res.status_code == 200 and len(res.content) == MAX_RESPONSE_BYTES
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_webhook_settings_are_checked():
    with pytest.raises(ValidationError, match="not an IP network"):
        Settings(webhook_allowed_networks="10.0.0.0/8, intranet")
    with pytest.raises(ValidationError, match="longer than webhook_timeout_s"):
        Settings(webhook_claim_s=5, webhook_timeout_s=10)


def test_the_connection_goes_to_the_address_that_was_checked(monkeypatch):
    """DNS rebinding: a name that answers an allowed address at the check and a refused one
    afterwards. The guard looks the name up once and connects to the address it checked, so
    the canary (same port, the refused address) is never reached. (A resolver stands in for
    DNS here: this machine has none to rebind.)"""
    legit = Server("127.0.0.1")
    canary = Server("127.0.0.2", port=legit.port)
    answers = iter(["127.0.0.1"])
    real = socket.getaddrinfo

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.test":
            return real(next(answers, "127.0.0.2"), port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    try:
        with guarded_client("127.0.0.1/32", timeout=2) as client:
            assert client.post(f"http://rebind.test:{legit.port}/", content=b"{}").status_code == 200
    finally:
        legit.close()
        canary.close()
    assert legit.hits == 1 and canary.hits == 0
