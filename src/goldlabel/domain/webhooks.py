"""Webhook rules with no I/O: event types, the signature, back-off, and which outbound
addresses are allowed (the outbound guard's policy; ``services.outbound_guard`` applies it)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from urllib.parse import urlsplit

from goldlabel.domain.errors import FieldError, invalid

# The event kinds written to the outbox (``storage.consensus_events.insert_event``) that a subscription
# may name; ``<prefix>.*`` names every kind with that prefix, ``*`` every kind.
EVENT_TYPES = (
    "answer.created",  # an answer was submitted
    "item.final",  # an item reached a final label
    "item.needs_review",  # an item was routed to review
    "item.open",  # an item went back to the queue (review rejected it)
    "item.reviewed",  # a reviewer accepted, rejected or fixed an item
    "import.completed",
    "export.snapshot_created",  # an export snapshot is ready
    "annotator.suspended",
    "annotator.active",
    "annotator.qualifying",
    "model.trained",  # a project model version was trained (metrics, auto-label threshold)
    "model.failed",  # the embedder or a model failed; the items stay with the humans
    "model.auto_label_off",  # audits bounded the auto-labels' accuracy below target: switched off
    "model.settings_changed",
)
# Prefixes a subscription may take with ``.*``: "model" is reserved for the model loop's events.
EVENT_PREFIXES = ("answer", "item", "import", "export", "annotator", "model")

SIGNATURE_VERSION = "v1"
# Headers of every delivery (documented in docs/webhooks.md).
HEADER_ID = "Goldlabel-Webhook-Id"
HEADER_TIMESTAMP = "Goldlabel-Webhook-Timestamp"
HEADER_SIGNATURE = "Goldlabel-Webhook-Signature"


def check_event_types(types: list[str]) -> list[str]:
    """The subscription's event types, de-duplicated in order; unknown ones are a 422."""
    errors = []
    for i, name in enumerate(types):
        if name == "*" or name in EVENT_TYPES:
            continue
        if name.endswith(".*") and name[:-2] in EVENT_PREFIXES:
            continue
        errors.append(FieldError(("event_types", i), "unknown_event_type",
                                 f"unknown event type {name!r}; expected one of {', '.join(EVENT_TYPES)}, "
                                 f"a prefix such as 'item.*', or '*'"))
    if not types:
        errors.append(FieldError(("event_types",), "empty", "name at least one event type"))
    if errors:
        raise invalid(errors)
    return list(dict.fromkeys(types))


def is_subscribed(types: list[str], kind: str) -> bool:
    prefix = kind.split(".", 1)[0]
    return "*" in types or kind in types or f"{prefix}.*" in types


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``: the timestamp is signed with
    the body, so a receiver that refuses old timestamps refuses replays."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def backoff_ms(attempts: int, base_s: float, cap_s: float = 3600.0) -> int:
    """Wait before the next try after ``attempts`` failed ones: base, 2 base, 4 base, ... capped."""
    return int(min(base_s * 2 ** max(attempts - 1, 0), cap_s) * 1000)


# ---- the outbound guard's policy -------------------------------------------------------------

# Not covered by ``is_global`` = False everywhere: cloud metadata services by name.
_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})
_DOTTED_QUAD = re.compile(r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$")
# What inet_aton (and so getaddrinfo) reads as an IPv4 address besides a dotted quad: decimal
# (2130706433), hex (0x7f000001), octal parts (0177.0.0.1), short forms (127.1).
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.IGNORECASE)


class OutboundRefused(Exception):
    """An outbound URL or address the guard refuses; ``code`` is stable."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def parse_allow_list(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``"127.0.0.1, 10.0.0.0/8"`` -> networks; a bad entry raises ValueError naming it."""
    nets = []
    for entry in (e.strip() for e in text.split(",")):
        if entry:
            try:
                nets.append(ipaddress.ip_network(entry, strict=False))
            except ValueError as exc:
                raise ValueError(f"webhook_allowed_networks: {entry!r} is not an IP network") from exc
    return tuple(nets)


def check_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an outbound URL, or OutboundRefused: http(s) only, no user info,
    and no IP address in another spelling than the canonical one (decimal, octal, hex, short)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise OutboundRefused(f"not a valid URL: {exc}", "invalid_url") from exc
    if parts.scheme not in ("http", "https"):
        raise OutboundRefused("only http and https URLs are allowed", "invalid_url")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise OutboundRefused("the URL has no host", "invalid_url")
    if parts.username is not None or parts.password is not None:
        raise OutboundRefused("credentials in the URL are not allowed", "invalid_url")
    if ":" in host:  # an IPv6 literal
        try:
            ip6 = ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise OutboundRefused(f"{host!r} is not a valid IPv6 address", "invalid_url") from exc
        if ip6.ipv4_mapped is not None or ip6.sixtofour is not None or ip6.teredo is not None:
            raise OutboundRefused(f"{host!r} spells an IPv4 address as IPv6", "ip_spelling")
    elif _NUMERIC_HOST.match(host) and not _DOTTED_QUAD.match(host):
        raise OutboundRefused(f"{host!r} is an IP address in a non-canonical spelling", "ip_spelling")
    if host in _METADATA_HOSTS:
        raise OutboundRefused(f"{host!r} is a metadata service", "address_refused")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


def check_address(address: str, allowed: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()) -> None:
    """Refuse any address that is not public unicast (loopback, private, link-local, metadata,
    multicast, reserved, unspecified, shared, documentation, and IPv4-mapped/6to4/NAT64 forms of
    them), unless an allow-listed network holds it."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if any(ip.version == net.version and ip in net for net in allowed):
        return
    inner = ip
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv6 spelling of an IPv4 address reaches that IPv4 address: judge that one.
        if ip.ipv4_mapped is not None:
            inner = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            inner = ip.sixtofour
        elif ip.teredo is not None:
            inner = ip.teredo[1]
        elif ip in ipaddress.ip_network("64:ff9b::/96"):
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not ip and any(inner.version == n.version and inner in n for n in allowed):
            return
    if not inner.is_global or inner.is_multicast:
        raise OutboundRefused(f"{address} is not a public address", "address_refused")
