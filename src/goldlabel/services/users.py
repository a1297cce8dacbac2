"""Users, passwords (Argon2id: memory-hard), API tokens (random, stored as sha256) and browser
sessions (a random nonce in a signed cookie, stored as sha256 so a session can be revoked)."""

from __future__ import annotations

import functools
import hashlib
import secrets
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

from goldlabel.domain.errors import GoldlabelError, conflict, forbidden, not_found, unauthorized
from goldlabel.domain.json_limits import text_problem
from goldlabel.domain.vocabulary import ROLES
from goldlabel.services import audit
from goldlabel.services.access import Actor
from goldlabel.services.context import Context
from goldlabel.services.login_guard import guard_of
from goldlabel.storage import users as user_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx
from goldlabel.storage.handles import Connection

TOKEN_PREFIX = "gl_"  # nosec B105  # the public prefix of API tokens, not a secret
_hasher = PasswordHasher()  # argon2id, 64 MiB, t=3: OWASP's recommended parameters


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the username is unknown, so timing does not reveal which names
    exist. Made on first use: hashing costs ~0.5 s, too much for every CLI start."""
    return _hasher.hash("not a password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def public_user(row: dict) -> dict[str, Any]:
    return {k: row[k] for k in ("id", "username", "display_name", "role", "is_active", "created_at")}


def check_password_policy(ctx: Context, password: str, username: str = "") -> None:
    """At least ``password_min_length`` characters and hard to guess: zxcvbn (common passwords,
    dictionary words, names, keyboard patterns, the username) must score it at least
    ``password_min_strength`` of 4. 422 ``weak_password`` otherwise, saying why."""
    minimum = ctx.settings.password_min_length
    if len(password) < minimum:
        raise GoldlabelError(f"password must have at least {minimum} characters", code="weak_password", status=422)
    # The first 64 characters decide (zxcvbn's time grows with the length; longer is not weaker).
    verdict = zxcvbn(password[:64], user_inputs=[username, "goldlabel"] if username else ["goldlabel"])
    if verdict["score"] < ctx.settings.password_min_strength:
        hint = verdict["feedback"].get("warning") or "it is easy to guess"
        raise GoldlabelError(f"password too weak: {hint.rstrip('.')}; use a longer, less common one "
                             "(a few unrelated words work well)", code="weak_password", status=422)


def create_user(
    ctx: Context,
    actor: Actor | None,
    username: str,
    role: str,
    password: str | None = None,
    display_name: str = "",
) -> dict:
    """Create a user. ``actor=None`` is the local operator (CLI); managers may create
    annotators and reviewers, admins anyone."""
    if role not in ROLES:
        raise GoldlabelError(f"role must be one of {', '.join(ROLES)}", code="unknown_role", status=422)
    if actor is not None and not actor.is_admin and (
        actor.role != "manager" or role not in ("annotator", "reviewer")
    ):
        raise forbidden("only admins create managers and admins; managers create annotators and reviewers")
    pw_hash = None
    if password is not None:
        check_password_policy(ctx, password, username)
        with guard_of(ctx).hashing():
            pw_hash = hash_password(password)
    with write_tx(ctx.engine) as conn:
        if user_store.fetch_user_by_username(conn, username):
            raise conflict(f"username {username!r} is taken", "username_taken")
        row = user_store.insert_user(
            conn,
            username=username,
            display_name=display_name,
            role=role,
            password_hash=pw_hash,
            is_active=True,
            created_at=now_ms(),
        )
        audit.record(conn, actor, "user.create", target=("user", row["id"]), detail={"role": role})
    return public_user(row)


def authenticate_password(ctx: Context, username: str, password: str) -> Actor:
    row = None
    if text_problem(username) is None:  # no such name can exist (PostgreSQL refuses NUL: a 500)
        with read_tx(ctx.engine) as conn:
            row = user_store.fetch_user_by_username(conn, username)
    try:
        with guard_of(ctx).hashing():
            # The dummy hash too is made under the bound: made on first use, a burst of
            # logins for unknown names right after a start would otherwise all make it at once.
            stored = row["password_hash"] if row and row["password_hash"] else _dummy_hash()
            ok = _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or row is None or not row["password_hash"] or not row["is_active"]:
        raise unauthorized("wrong username or password")
    return actor_of(ctx, row)


def actor_of(ctx: Context, row: dict) -> Actor:
    must_enrol = row["role"] in ctx.settings.totp_roles and row["totp_enabled_at"] is None
    return Actor(row["id"], row["username"], row["role"], must_enrol=must_enrol, auth_version=row["auth_version"])


def cached_token_actor(ctx: Context, token: str, *, enrolment_only: bool = False) -> Actor | None:
    """The actor of a token verified less than ``ctx.token_cache_ttl_s`` ago, without I/O: for
    the annotate loop's use cases only, whose statements read the user's auth version and refuse
    the actor once it moved (services/access.py ``StaleCredentials``), so a revocation through
    any process is seen at once. A user who must enrol in two-factor login is None unless
    ``enrolment_only`` (see ``authenticate_token``)."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    actor = ctx.cached_actor(hash_token(token))
    if actor is not None and actor.must_enrol and not enrolment_only:  # type: ignore[attr-defined]
        return None
    return actor  # type: ignore[return-value]


def enrolment_required() -> GoldlabelError:
    return GoldlabelError("your role requires two-factor login: enrol first (your account page, or "
                          "POST /api/v1/users/{id}/totp)", code="totp_enrolment_required", status=403)


def authenticate_token(ctx: Context, token: str, *, enrolment_only: bool = False, cached: bool = True) -> Actor:
    """The token's actor. A user whose role requires two-factor login and who has not enrolled
    is refused (403 ``totp_enrolment_required``) unless ``enrolment_only``: then the caller lets
    them reach only the enrolment (api.deps). The annotate loop's fast lane, which takes the
    default, so hands their requests to the app, where api.deps refuses them. ``cached=False``
    (the app's routes, whose services do not all read the auth version): always read, so that
    a revocation is seen at once; the read still refreshes the cache."""
    if not token.startswith(TOKEN_PREFIX):
        raise unauthorized("malformed API token")
    token_hash = hash_token(token)
    actor = ctx.cached_actor(token_hash) if cached else None
    if actor is not None:
        if actor.must_enrol and not enrolment_only:  # type: ignore[attr-defined]
            raise enrolment_required()
        return actor  # type: ignore[return-value]
    with read_tx(ctx.engine) as conn:
        row = user_store.fetch_user_by_token_hash(conn, token_hash)
    if row is None or not row["is_active"]:
        raise unauthorized("invalid or revoked API token")
    actor = actor_of(ctx, row)
    ctx.cache_actor(token_hash, actor)
    if actor.must_enrol and not enrolment_only:
        raise enrolment_required()
    return actor


def create_token(ctx: Context, actor: Actor | None, user_id: int, name: str = "") -> dict:
    """A new API token. The plain token is in the result once and never stored.

    Users issue their own, admins anyone's. Not managers: a token answers in its user's name,
    and annotator answers are what the quality estimates stand on."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with write_tx(ctx.engine) as conn:
        if actor is not None:
            _token_owner(conn, actor, user_id, "issues")
        elif user_store.fetch_user(conn, user_id) is None:
            raise not_found("user")
        row = user_store.insert_token(
            conn,
            user_id=user_id,
            name=name,
            token_hash=hash_token(token),
            prefix=token[:10],
            created_at=now_ms(),
        )
        audit.record(conn, actor, "token.issue", target=("token", row["id"]),
                     detail={"user_id": user_id, "name": name, "prefix": row["prefix"]})
    return {**row, "token": token}


def list_tokens(ctx: Context, actor: Actor, user_id: int) -> list[dict]:
    with read_tx(ctx.engine) as conn:
        _token_owner(conn, actor, user_id, "lists")
        return user_store.list_tokens(conn, user_id)


def revoke_token(ctx: Context, actor: Actor, user_id: int, token_id: int) -> None:
    with write_tx(ctx.engine) as conn:
        _token_owner(conn, actor, user_id, "revokes")
        if not user_store.revoke_token(conn, user_id, token_id, now_ms()):
            raise not_found("token")
        user_store.bump_auth_version(conn, user_id)
        audit.record(conn, actor, "token.revoke", target=("token", token_id), detail={"user_id": user_id})
    ctx.forget_actors()


def start_session(ctx: Context, user_id: int, nonce: str, expires_at_ms: int) -> None:
    """Record a browser session (its nonce hashed, never in plain). Sessions past their expiry
    are deleted here too, so the table holds only live sessions and those of the last logins."""
    now = now_ms()
    with write_tx(ctx.engine) as conn:
        user_store.delete_expired_sessions(conn, now)
        user_store.insert_session(conn, hash_token(nonce), user_id, now, expires_at_ms)


def _session_key(nonce: str) -> str:
    # Sessions and tokens share the Context's actor cache, keyed apart.
    return "session:" + hash_token(nonce)


def cached_session_actor(ctx: Context, user_id: int, nonce: str) -> Actor | None:
    """The user of a session verified less than ``ctx.token_cache_ttl_s`` ago, without I/O:
    the same cache, and the same revocation rule, as API tokens (``cached_token_actor``)."""
    actor = ctx.cached_actor(_session_key(nonce))
    return actor if actor is not None and actor.id == user_id else None  # type: ignore[attr-defined,return-value]


def session_actor(ctx: Context, user_id: int, nonce: str, *, cached: bool = True) -> Actor | None:
    """The user of a live session, if the account is active; None when the session was ended,
    has expired or never existed. One statement, then kept in the actor cache as a verified
    token is (see ``cached_session_actor``); ``cached=False`` always reads (as for
    ``authenticate_token``)."""
    actor = cached_session_actor(ctx, user_id, nonce) if cached else None
    if actor is not None:
        return actor
    with read_tx(ctx.engine) as conn:
        row = user_store.fetch_user_by_session(conn, hash_token(nonce), user_id, now_ms())
    if row is None or not row["is_active"]:
        return None
    actor = actor_of(ctx, row)
    ctx.cache_actor(_session_key(nonce), actor)
    return actor


def end_session(ctx: Context, nonce: str) -> None:
    """Log out: the session's record is deleted, so a copy of its cookie stops working, in every
    server process at once (the user's auth version moves on, as for a revoked token)."""
    with write_tx(ctx.engine) as conn:
        user_id = user_store.delete_session(conn, hash_token(nonce))
        if user_id is not None:
            user_store.bump_auth_version(conn, user_id)
    ctx.forget_actors()


def end_sessions(ctx: Context, actor: Actor, user_id: int) -> int:
    """End every browser session of a user (their API tokens stay; revoke those one by one).
    The user themself and admins may; managers for annotators and reviewers (as they may
    suspend them). Returns how many sessions ended."""
    with write_tx(ctx.engine) as conn:
        _managed_user(conn, actor, user_id, "end the sessions of")
        ended = user_store.delete_user_sessions(conn, user_id)
        user_store.bump_auth_version(conn, user_id)
        audit.record(conn, actor, "user.sessions_end", target=("user", user_id), detail={"ended": ended})
    ctx.forget_actors()
    return ended


def _managed_user(conn: Connection, actor: Actor, user_id: int, action: str) -> dict:
    """The user ``actor`` acts on: themself, anyone for an admin, for a manager an annotator or
    reviewer of a project the manager manages, or of no project yet (issue 17, item 10: any
    manager could suspend or log out anyone's annotators). 404 for everyone else (no hint the user exists), 403 for a
    manager aiming higher or outside their projects."""
    target = user_store.fetch_user(conn, user_id)
    if target is None or (actor.id != user_id and actor.role not in ("admin", "manager")):
        raise not_found("user")
    if not actor.is_admin and actor.id != user_id:
        if target["role"] not in ("annotator", "reviewer"):
            raise forbidden(f"managers may only {action} annotators and reviewers")
        if not user_store.manages_member(conn, actor.id, user_id):
            raise forbidden(f"managers may only {action} members of projects they manage")
    return target


def _token_owner(conn: Connection, actor: Actor, user_id: int, verb: str) -> None:
    """Tokens are their user's (an admin's too): 404 for whom the user is invisible, 403 with the
    way to get one for a manager, who sees the account (a 404 read as "no such user")."""
    if actor.id == user_id or actor.is_admin:
        return
    if actor.role == "manager" and user_store.fetch_user(conn, user_id) is not None:
        raise forbidden(f"only the user (or an admin) {verb} their API tokens; the user signs in "
                        "to issue one, or the operator runs `goldlabel users token USERNAME`")
    raise not_found("user")


def get_user(ctx: Context, actor: Actor, user_id: int) -> dict:
    if actor.id != user_id and actor.role not in ("admin", "manager"):
        raise not_found("user")
    with read_tx(ctx.engine) as conn:
        row = user_store.fetch_user(conn, user_id)
    if row is None:
        raise not_found("user")
    return public_user(row)


def find_user(ctx: Context, actor: Actor, username: str) -> dict:
    """The user named ``username`` (admins and managers), one index lookup."""
    if actor.role not in ("admin", "manager"):
        raise forbidden("only admins and managers look up users")
    if text_problem(username) is not None:
        raise not_found("user")
    with read_tx(ctx.engine) as conn:
        row = user_store.fetch_user_by_username(conn, username)
    if row is None:
        raise not_found(f"user {username!r}")
    return public_user(row)


def list_users(ctx: Context, actor: Actor, after: int, limit: int) -> list[dict]:
    if actor.role not in ("admin", "manager"):
        raise forbidden("only admins and managers list users")
    with read_tx(ctx.engine) as conn:
        return [public_user(r) for r in user_store.list_users(conn, after, limit)]


def update_user(
    ctx: Context, actor: Actor, user_id: int, changes: dict[str, Any], current_session: str | None = None
) -> dict:
    """Change display name, password, role or active flag. Admins change anyone; users their
    own display name and password; managers the display name and active flag (suspend) of
    annotators and reviewers.

    A new password ends the user's browser sessions, all but ``current_session`` (the nonce of
    the session making this request, if it is the user's own): whoever changes their password
    stays logged in where they did it, and everywhere else is logged out. Deactivating a user
    ends all of their sessions."""
    with write_tx(ctx.engine) as conn:
        target = _managed_user(conn, actor, user_id, "change")
        if not actor.is_admin:
            allowed = {"display_name", "password"} if actor.id == user_id else {"display_name", "is_active"}
            extra = set(changes) - allowed
            if extra:
                raise forbidden(f"you may not change {', '.join(sorted(extra))}")
        values = {k: v for k, v in changes.items() if k != "password"}
        if "role" in values and values["role"] not in ROLES:
            raise GoldlabelError(f"role must be one of {', '.join(ROLES)}", code="unknown_role", status=422)
        if changes.get("password") is not None:
            check_password_policy(ctx, changes["password"], target["username"])
            with guard_of(ctx).hashing():
                values["password_hash"] = hash_password(changes["password"])
        row = user_store.update_user(conn, user_id, **values) if values else target
        if "password_hash" in values:
            keep = hash_token(current_session) if current_session and actor.id == user_id else None
            user_store.delete_user_sessions(conn, user_id, keep=keep)
        if values.get("is_active") is False:
            user_store.delete_user_sessions(conn, user_id)
        if any(k in values for k in ("role", "is_active", "password_hash")):
            user_store.bump_auth_version(conn, user_id)
        for action, detail in _audited_changes(target, values):
            audit.record(conn, actor, action, target=("user", user_id), detail=detail)
    ctx.forget_actors()  # the role or the active flag may have changed
    return public_user(row)


def _audited_changes(before: dict, values: dict[str, Any]) -> list[tuple[str, dict]]:
    """The audit entries of a user update: role, suspension, password (display names are not
    audited)."""
    out: list[tuple[str, dict]] = []
    if "role" in values and values["role"] != before["role"]:
        out.append(("user.role", {"from": before["role"], "to": values["role"]}))
    if "is_active" in values and values["is_active"] != before["is_active"]:
        out.append(("user.reactivate" if values["is_active"] else "user.suspend", {}))
    if "password_hash" in values:
        out.append(("user.password", {}))
    return out
