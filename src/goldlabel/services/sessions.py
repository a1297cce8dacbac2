"""Browser sessions: a signed cookie naming a server-side session record, and CSRF tokens bound
to it.

The cookie is ``base64url(json) "." base64url(hmac_sha256)``; it holds the user id, a random
session nonce and an expiry, nothing secret beyond the nonce. A forged or tampered cookie fails
the signature check and never reaches the database. A well-signed one must also name a live
record in the ``sessions`` table (keyed by sha256 of the nonce, never the nonce itself): one
statement per request reads that record and the user together, so a logout, a password change,
a suspension or ``DELETE /api/v1/users/{id}/sessions`` ends the session at once, for every copy
of the cookie.

CSRF tokens are ``hmac(csrf_key, nonce)``: the session nonce when logged in, or the pre-session
nonce cookie on the login form (login CSRF). Keys for the two uses are derived separately from
``settings.secret_key`` so a token can never be replayed as a cookie signature or vice versa.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from goldlabel.services import users as user_service
from goldlabel.services.access import Actor
from goldlabel.services.context import Context

SESSION_COOKIE = "gl_session"
PRESESSION_COOKIE = "gl_pre"
# Between a right password and the two-factor code: names the user, for a few minutes, and
# grants nothing else (its own key: it can never pass as a session cookie).
PENDING_COOKIE = "gl_2fa"
PENDING_TTL_S = 300
SESSION_TTL_S = 12 * 3600  # a working day; logout, password changes and admins end one earlier


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    user_id: int
    nonce: str
    expires_at: int  # seconds since the epoch


class SessionSigner:
    """Signs and verifies session cookies and CSRF tokens with keys derived from one secret."""

    def __init__(self, secret_key: str) -> None:
        # An empty key means "generate one": sessions then last as long as this process.
        secret = secret_key.encode() if secret_key else secrets.token_bytes(32)
        self._session_key = hmac.new(secret, b"goldlabel session cookie", hashlib.sha256).digest()
        self._csrf_key = hmac.new(secret, b"goldlabel csrf token", hashlib.sha256).digest()
        self._pending_key = hmac.new(secret, b"goldlabel second factor pending", hashlib.sha256).digest()

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._session_key, payload.encode(), hashlib.sha256).digest())

    def issue(self, user_id: int, now: float | None = None) -> tuple[str, Session]:
        """A new session (fresh nonce: no fixation) and its cookie value."""
        session = Session(user_id, secrets.token_urlsafe(16), int((now or time.time()) + SESSION_TTL_S))
        payload = _b64(json.dumps({"u": user_id, "n": session.nonce, "e": session.expires_at},
                                  separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}", session

    def verify(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session in a cookie, or None when it is missing, forged, malformed or expired."""
        if not cookie or cookie.count(".") != 1:
            return None
        payload, signature = cookie.split(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            data = json.loads(_unb64(payload))
            session = Session(int(data["u"]), str(data["n"]), int(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires_at <= (now or time.time()):
            return None
        return session

    def issue_pending(self, user_id: int, now: float | None = None) -> str:
        """The cookie of a login waiting for its second factor (after a right password)."""
        payload = _b64(json.dumps({"u": user_id, "e": int((now or time.time()) + PENDING_TTL_S)},
                                  separators=(",", ":")).encode())
        return f"{payload}.{_b64(hmac.new(self._pending_key, payload.encode(), hashlib.sha256).digest())}"

    def verify_pending(self, cookie: str | None, now: float | None = None) -> int | None:
        """The user id a pending-login cookie names, or None when missing, forged or expired."""
        if not cookie or cookie.count(".") != 1:
            return None
        payload, signature = cookie.split(".")
        expected = _b64(hmac.new(self._pending_key, payload.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(signature, expected):
            return None
        try:
            data = json.loads(_unb64(payload))
            user_id, expires = int(data["u"]), int(data["e"])
        except (ValueError, KeyError, TypeError):
            return None
        return user_id if expires > (now or time.time()) else None

    def csrf_token(self, nonce: str) -> str:
        return _b64(hmac.new(self._csrf_key, nonce.encode(), hashlib.sha256).digest())

    def check_csrf(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token:
            return False
        return hmac.compare_digest(token, self.csrf_token(nonce))


def start_session(ctx: Context, session: Session) -> None:
    """Record a session just issued by ``SessionSigner.issue`` (at login)."""
    user_service.start_session(ctx, session.user_id, session.nonce, session.expires_at * 1000)


def load_session_actor(ctx: Context, session: Session) -> Actor | None:
    """The user a verified cookie names, if its session record is live and the account active
    (read now: see ``users.session_actor``'s ``cached``)."""
    return user_service.session_actor(ctx, session.user_id, session.nonce, cached=False)


def end_session(ctx: Context, session: Session) -> None:
    """Revoke a session (at logout): its cookie, and every copy of it, stops working."""
    user_service.end_session(ctx, session.nonce)
