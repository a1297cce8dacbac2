"""Lease tokens: how one is made and stored (its hash), who may hold one, whose a lease is."""

from __future__ import annotations

import hashlib
import secrets

from goldlabel.domain.errors import not_found
from goldlabel.services.access import NEED_RANK, ROLE_RANK, Actor

LEASE_TOKEN_PREFIX = "lt_"  # nosec B105  # a token's prefix, not a password
# Member roles that may annotate (access.py): what the lease statement checks in SQL.
ANNOTATE_ROLES = [role for role, rank in ROLE_RANK.items() if rank >= NEED_RANK["annotate"]]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_lease_token() -> str:
    return LEASE_TOKEN_PREFIX + secrets.token_urlsafe(24)


def check_own_lease(lease: dict | None, actor: Actor, project_id: int) -> None:
    if lease is None or lease["annotator_id"] != actor.id or lease["project_id"] != project_id:
        raise not_found("lease")
