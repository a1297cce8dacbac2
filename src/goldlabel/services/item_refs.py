"""Opaque item references: the item ids an annotator sees (issue 17).

Item ids are a sequence: shown as they are, they tell an annotator in which import (batch) an
item came, and two annotators comparing notes would see the same number for the same item, which
is how gold items (served to more annotators than any overlap) are spotted. So the annotate loop
(lease, submit, skip, release, one's own answers, the item report) speaks a reference instead:
the item id encrypted with the install's key, bound to the project and the annotator, by
AES-SIV (RFC 5297, deterministic authenticated encryption; the project and annotator ids are its
associated data). The same item has the same reference for the same annotator every time
(the workspace compares them), an unrelated one for anyone else, and the server decodes it without
storing anything. A reference that was altered, or made for another annotator or project, does
not decode: a 404 ``not_found``, as for an item that does not exist. Managers and reviewers keep
the real ids on the item routes.

The key is made once per install (``install_secrets``, ``item_ref_key``: 64 random bytes, as
AES-SIV with AES-256 takes) and kept in the database, so every process of a server agrees.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from goldlabel.domain.errors import not_found
from goldlabel.services.context import Context
from goldlabel.storage.secrets import install_secret

SECRET_NAME = "item_ref_key"  # nosec B105  # the name of the install secret, not a secret
KEY_BYTES = 64
# 8 bytes of item id + 16 of synthetic IV, in unpadded base64url.
REF_LENGTH = 32
_ID = struct.Struct(">q")
_CONTEXT = struct.Struct(">qq")


class ItemRefs:
    """Encode and decode one install's item references (thread-safe: AESSIV keeps no state
    between calls)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"an item reference key has {KEY_BYTES} bytes")
        self._siv = AESSIV(key)

    def encode(self, project_id: int, annotator_id: int, item_id: int) -> str:
        sealed = self._siv.encrypt(_ID.pack(item_id), [_CONTEXT.pack(project_id, annotator_id)])
        return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")

    def decode(self, project_id: int, annotator_id: int, ref: str) -> int | None:
        """The item id, or None when ``ref`` is not this annotator's reference in this project."""
        if len(ref) != REF_LENGTH or not ref.isascii():
            return None
        try:
            sealed = base64.urlsafe_b64decode(ref + "====")
            return int(_ID.unpack(self._siv.decrypt(sealed, [_CONTEXT.pack(project_id, annotator_id)]))[0])
        except (binascii.Error, InvalidTag, ValueError, struct.error):
            return None


def item_refs(ctx: Context) -> ItemRefs:
    """The install's references (the key read, or made, on first use; then kept by ``ctx``).
    Every use case that shows references calls this before it opens a transaction: a key made
    inside a SQLite write transaction would wait on that transaction's own lock."""
    refs = ctx.item_refs
    if refs is None:
        key = install_secret(ctx.engine, SECRET_NAME, lambda: secrets.token_hex(KEY_BYTES))
        refs = ctx.item_refs = ItemRefs(bytes.fromhex(key))
    return refs


def encode_item(ctx: Context, project_id: int, annotator_id: int, item_id: int) -> str:
    return item_refs(ctx).encode(project_id, annotator_id, item_id)


def decode_item(ctx: Context, project_id: int, annotator_id: int, ref: str) -> int:
    """The item id of the caller's reference, or 404 ``not_found`` (a reference altered, or
    made for someone else, is an item that does not exist for this caller)."""
    item_id = item_refs(ctx).decode(project_id, annotator_id, ref)
    if item_id is None:
        raise not_found("item")
    return item_id
