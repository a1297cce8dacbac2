"""The one way goldlabel makes an HTTP request to a URL a user gave it (webhooks, and the fetch of
objects items reference in place: services.media_in_place.open_reference).

``guarded_client(allowed)`` is an httpx client whose connections go through ``GuardedBackend``:
the host is resolved once, every address it resolves to is checked
(``domain.webhooks.check_address``: no loopback, private, link-local, metadata, multicast,
reserved addresses, nor IPv6 spellings of them) and the socket connects to the address that was
checked, so a DNS answer that changes between the check and the connection (DNS rebinding)
cannot slip through. URLs with an IP address in another spelling (``2130706433``,
``0177.0.0.1``, ``[::ffff:127.0.0.1]``) are refused before any lookup. Redirects are never
followed (a 3xx is an answer like any other), proxies from the environment are not used (they
would connect on our behalf, unchecked). The allow-list (setting ``webhook_allowed_networks``)
lets named networks through, e.g. a receiver on the same private network.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator

import httpcore
import httpx

from goldlabel.domain.webhooks import OutboundRefused, check_address, check_url, parse_allow_list

__all__ = ["GuardedBackend", "GuardedTransport", "OutboundRefused", "guarded_client"]

MAX_RESPONSE_BYTES = 64 * 1024


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's socket backend, connecting only to checked addresses."""

    def __init__(self, allowed: tuple = ()) -> None:
        self.allowed = allowed

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable | None = None) -> httpcore.NetworkStream:
        host = host.strip("[]")
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from exc
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        # Every address must pass: a name that resolves to a public and a private address
        # would otherwise reach the private one whenever the public one does not answer.
        for address in addresses:
            check_address(address, self.allowed)
        last: Exception | None = None
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        raise last or httpcore.ConnectError(f"{host!r} resolved to no address")


class _CappedStream(httpx.SyncByteStream):
    """The body of an httpcore response, cut after ``limit`` bytes; closing it closes the response."""

    def __init__(self, response: httpcore.Response, limit: int, request: httpx.Request) -> None:
        self._response = response
        self._limit = limit
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        left = self._limit
        try:
            for chunk in self._response.stream:
                if left <= 0:
                    break
                if chunk:
                    yield chunk[:left]
                    left -= min(len(chunk), left)
        except httpcore.TimeoutException as exc:
            raise httpx.TimeoutException(str(exc), request=self._request) from exc
        except httpcore.NetworkError as exc:
            raise httpx.NetworkError(str(exc), request=self._request) from exc
        except httpcore.ProtocolError as exc:
            raise httpx.RemoteProtocolError(str(exc), request=self._request) from exc
        finally:
            self.close()

    def close(self) -> None:
        self._response.close()


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport over an httpcore pool that uses ``GuardedBackend``."""

    def __init__(self, allowed: tuple = (), max_response_bytes: int = MAX_RESPONSE_BYTES) -> None:
        self._pool = httpcore.ConnectionPool(
            network_backend=GuardedBackend(allowed), max_connections=20, keepalive_expiry=5.0
        )
        self.max_response_bytes = max_response_bytes

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        check_url(str(request.url))
        req = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=request.url.raw_scheme, host=request.url.raw_host,
                             port=request.url.port, target=request.url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            resp = self._pool.handle_request(req)
        except httpcore.TimeoutException as exc:
            raise httpx.TimeoutException(str(exc), request=request) from exc
        except httpcore.NetworkError as exc:
            raise httpx.NetworkError(str(exc), request=request) from exc
        except httpcore.ProtocolError as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        # Keep at most max_response_bytes of the answer: a receiver cannot fill our memory. The
        # body is streamed (client.stream reads it chunk by chunk), cut at the limit either way.
        return httpx.Response(status_code=resp.status, headers=resp.headers,
                              stream=_CappedStream(resp, self.max_response_bytes, request), extensions=resp.extensions)

    def close(self) -> None:
        self._pool.close()


def guarded_client(allowed: str | tuple = (), timeout: float = 10.0,
                   max_response_bytes: int = MAX_RESPONSE_BYTES) -> httpx.Client:
    """An httpx client for user-given URLs: checked addresses only, no redirects, no proxies.
    ``allowed``: the allow-list, as networks or as the setting's comma-separated text; a
    response body is cut at ``max_response_bytes`` (``client.stream`` reads it in chunks)."""
    nets = parse_allow_list(allowed) if isinstance(allowed, str) else tuple(allowed)
    return httpx.Client(transport=GuardedTransport(nets, max_response_bytes), follow_redirects=False,
                        trust_env=False, timeout=timeout)
