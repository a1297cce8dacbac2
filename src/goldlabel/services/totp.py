"""Two-factor login with time-based one-time passwords (TOTP, RFC 6238: HMAC-SHA1, 6 digits,
30-second steps), which any authenticator app computes from a shared secret.

Enrolment is two calls by the user themself: ``start_enrolment`` makes the secret and shows it
once (and its ``otpauth://`` URI, for a QR code); ``confirm_enrolment`` takes a first code, turns
two-factor login on and returns ten recovery codes, shown once and stored as sha256 hashes (each
carries 50 random bits: a fast hash is enough, as for API tokens). After that the secret is never
returned by any call. A code is accepted one step early or late (clock drift), and never twice:
``totp_last_step`` refuses a replay of a code already used, or of an older one.

Every code check is throttled like a password (services.login_guard: per client address and,
after failures in a row, per account), so six digits cannot be guessed by brute force.

The secret is stored sealed (services.secret_box: AES-256-GCM under a key kept outside the
database, bound to the user's row); ``seal_stored_secrets``, run at every server start, seals
secrets stored in plain before and re-seals those of an older key (rotation).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyotp

from goldlabel.domain.errors import GoldlabelError, conflict, forbidden, not_found, unauthorized
from goldlabel.services import audit
from goldlabel.services.access import Actor
from goldlabel.services.context import Context
from goldlabel.services.login_guard import LoginGuard, guard_of
from goldlabel.services.secret_box import box_of
from goldlabel.storage import users as user_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx
from goldlabel.storage.handles import Connection

STEP_S = 30
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _normalize(code: str) -> str:
    return "".join(code.split()).lower()


def _user(conn: Connection, actor: Actor, user_id: int, *, self_only: bool, lock: bool = True) -> dict:
    """The account: the user themself; an admin may read and turn off anyone's two-factor login
    (a lost phone), never enrol for them. 404 for everyone else (the account is not revealed)."""
    # Locked: two requests checking codes at once must not both spend the same recovery code.
    row = user_store.fetch_user(conn, user_id, for_update=lock)
    if row is None or (actor.id != user_id and not actor.is_admin):
        raise not_found("user")
    if self_only and actor.id != user_id:
        raise forbidden("only the user enrols in two-factor login, from their own account")
    return row


def status(ctx: Context, actor: Actor, user_id: int) -> dict[str, Any]:
    with read_tx(ctx.engine) as conn:
        row = _user(conn, actor, user_id, self_only=False, lock=False)
    return _status(ctx, row)


def _status(ctx: Context, row: dict) -> dict[str, Any]:
    return {
        "enabled": row["totp_enabled_at"] is not None,
        "pending": row["totp_enabled_at"] is None and row["totp_secret"] is not None,
        "enabled_at": row["totp_enabled_at"],
        "recovery_codes_left": len(row["totp_recovery"] or []) if row["totp_enabled_at"] else 0,
        "required": row["role"] in ctx.settings.totp_roles,
    }


def start_enrolment(ctx: Context, actor: Actor, user_id: int) -> dict[str, str]:
    """A new secret for the user's authenticator app, shown this once. Replaces an unconfirmed
    one; 409 ``totp_enabled`` when two-factor login is already on (turn it off first)."""
    secret = pyotp.random_base32(32)  # 160 bits, RFC 4226's recommended key length
    with write_tx(ctx.engine) as conn:
        row = _user(conn, actor, user_id, self_only=True)
        if row["totp_enabled_at"] is not None:
            raise conflict("two-factor login is already on; turn it off first to enrol a new device",
                           "totp_enabled")
        user_store.update_user(conn, user_id, totp_secret=box_of(ctx).seal(secret, _aad(user_id)),
                               totp_last_step=None, totp_recovery=None)
        audit.record(conn, actor, "totp.enrol", target=("user", user_id))
    uri = pyotp.TOTP(secret).provisioning_uri(name=row["username"], issuer_name=ctx.settings.totp_issuer)
    return {"secret": secret, "otpauth_uri": uri}


def confirm_enrolment(ctx: Context, actor: Actor, user_id: int, code: str, address: str) -> dict:
    """Turn two-factor login on with a first code from the app; the ten recovery codes are in
    the answer, once. 409 ``totp_not_started`` without an enrolment, 422 ``invalid_code``."""
    guard = guard_of(ctx)
    guard.admit(actor.username, address)
    codes = ["-".join("".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(5)) for _ in range(2))
             for _ in range(RECOVERY_CODES)]
    with _failures_counted(guard, actor.username), write_tx(ctx.engine) as conn:
        row = _user(conn, actor, user_id, self_only=True)
        if row["totp_enabled_at"] is not None:
            raise conflict("two-factor login is already on", "totp_enabled")
        if row["totp_secret"] is None:
            raise conflict("start the enrolment first (POST /users/{id}/totp)", "totp_not_started")
        step = _matching_step(ctx, row, code)
        if step is None:
            raise GoldlabelError("that code is wrong or has expired; type the one the app shows now",
                                 code="invalid_code", status=422)
        user_store.update_user(conn, user_id, totp_enabled_at=now_ms(), totp_last_step=step,
                               totp_recovery=[_hash(c) for c in codes])
        user_store.bump_auth_version(conn, user_id)  # a cached actor's must_enrol is over
        audit.record(conn, actor, "totp.enable", target=("user", user_id))
    guard.succeeded(actor.username)
    ctx.forget_actors()  # a cached token's must_enrol is over
    return {"recovery_codes": codes}


def disable(ctx: Context, actor: Actor, user_id: int, code: str | None, address: str) -> dict:
    """Turn two-factor login off. The user gives a current code or a recovery code (a stolen
    session alone cannot turn it off); an admin turning off another user's needs none."""
    guard = guard_of(ctx)
    needs_code = actor.id == user_id
    if needs_code:
        guard.admit(actor.username, address)
    with _failures_counted(guard, actor.username), write_tx(ctx.engine) as conn:
        row = _user(conn, actor, user_id, self_only=False)
        if row["totp_enabled_at"] is None and row["totp_secret"] is None:
            return _status(ctx, row)  # already off: nothing to do, nothing to log
        if needs_code and row["totp_enabled_at"] is not None and _check_code(ctx, conn, row, code or "") is None:
            raise GoldlabelError("that code is wrong or has expired", code="invalid_code", status=422)
        user_store.update_user(conn, user_id, totp_secret=None, totp_enabled_at=None,
                               totp_last_step=None, totp_recovery=None)
        user_store.bump_auth_version(conn, user_id)  # must_enrol may have changed
        audit.record(conn, actor, "totp.disable", target=("user", user_id),
                     detail={"by_admin": actor.id != user_id})
        row = user_store.fetch_user(conn, user_id)
    ctx.forget_actors()  # must_enrol may have changed
    return _status(ctx, row)


@contextmanager
def _failures_counted(guard: LoginGuard, username: str) -> Iterator[None]:
    """A wrong code (422 ``invalid_code``) raised inside counts as a failed attempt, once the
    transaction it was raised in has ended (the throttle writes in a transaction of its own)."""
    try:
        yield
    except GoldlabelError as exc:
        if exc.code == "invalid_code":
            guard.failed(username)
        raise


def fetch_login_name(ctx: Context, user_id: int) -> str:
    """The username a pending login names (the throttle's key); "" when it is gone."""
    with read_tx(ctx.engine) as conn:
        row = user_store.fetch_user(conn, user_id)
    return row["username"] if row else ""


def login_needs_code(ctx: Context, user_id: int) -> bool:
    with read_tx(ctx.engine) as conn:
        row = user_store.fetch_user(conn, user_id)
    return bool(row and row["totp_enabled_at"] is not None)


def verify_login_code(ctx: Context, user_id: int, code: str, address: str) -> Actor:
    """The second step of a login: the user's current code or an unused recovery code. Throttled
    by the caller (``guard.admit``) like the password. 401 when wrong; logged either way."""
    with write_tx(ctx.engine) as conn:
        row = user_store.fetch_user(conn, user_id, for_update=True)
        if row is None or not row["is_active"] or row["totp_enabled_at"] is None:
            raise unauthorized("wrong code")
        actor = Actor(row["id"], row["username"], row["role"])
        used = _check_code(ctx, conn, row, code)
        if used is None:
            raise unauthorized("wrong code")
        if used == "recovery":
            audit.record(conn, actor, "totp.recovery_used", target=("user", user_id), address=address,
                         detail={"recovery_codes_left": len(row["totp_recovery"]) - 1})
        audit.record(conn, actor, "login.success", target=("user", user_id), address=address,
                     detail={"second_factor": used})
    return actor


def _aad(user_id: int) -> str:
    """What a sealed secret is bound to: its user's row."""
    return f"user:{user_id}"


def _matching_step(ctx: Context, row: dict, code: str) -> int | None:
    """The time step whose code ``code`` is (now, one before, one after), if later than the last
    one used; None otherwise."""
    code = _normalize(code)
    if len(code) != 6 or not code.isdigit() or row["totp_secret"] is None:
        return None
    totp = pyotp.TOTP(box_of(ctx).open(row["totp_secret"], _aad(row["id"])))
    now_step = int(time.time()) // STEP_S
    last = row["totp_last_step"] if row["totp_last_step"] is not None else -1
    for step in (now_step - 1, now_step, now_step + 1):
        if step > last and hmac.compare_digest(totp.at(step * STEP_S), code):
            return step
    return None


def _check_code(ctx: Context, conn: Connection, row: dict, code: str) -> str | None:
    """``"totp"`` or ``"recovery"`` after using up the code (the step, or the recovery code),
    None when it is neither."""
    step = _matching_step(ctx, row, code)
    if step is not None:
        return "totp" if user_store.claim_totp_step(conn, row["id"], step) else None
    hashed = _hash(_normalize(code))
    remaining = list(row["totp_recovery"] or [])
    if hashed in remaining:
        remaining.remove(hashed)
        user_store.update_user(conn, row["id"], totp_recovery=remaining)
        return "recovery"
    return None


def seal_stored_secrets(ctx: Context) -> int:
    """Seal every stored secret not sealed with the current key: plain ones from before secrets
    were sealed, and those of an older key after a rotation (docs/security.md). Run at every
    server start; each row is rewritten only if unchanged since it was read (another process may
    be doing the same). Returns how many were rewritten."""
    with read_tx(ctx.engine) as conn:
        stored = user_store.list_totp_secrets(conn)
    if not stored:
        return 0  # no key is read (or made) for an install without two-factor logins
    box = box_of(ctx)
    stale = [(r["id"], r["totp_secret"]) for r in stored if not box.is_current(r["totp_secret"])]
    done = 0
    for user_id, was in stale:
        sealed = box.seal(box.open(was, _aad(user_id)), _aad(user_id))
        with write_tx(ctx.engine) as conn:
            done += user_store.replace_totp_secret(conn, user_id, was, sealed)
    return done
