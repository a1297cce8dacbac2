"""Secrets the server must read back (TOTP secrets), sealed at rest with AES-256-GCM
(``cryptography``) under a key that is never in the database: the ``totp_key`` setting, or a key
file made once per install (``totp_key_file``; by default ``totp.key`` in the install's folder,
mode 0600). A copy of the database alone (a backup, a stolen dump) does not reveal them.

A sealed value is ``v1:<key id>:<base64url(nonce | ciphertext | tag)>``: the key id (the first 8
hex digits of the key's sha256) names the key that sealed it, so several keys can be configured
at once: the first seals, every one opens (rotation: docs/security.md). The value is bound to
its row (``context``, e.g. ``user:42``, as associated data): a sealed secret copied onto another
user's row does not open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
import threading
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from goldlabel.config import Settings

PREFIX = "v1:"
KEY_FILE_NAME = "totp.key"
log = logging.getLogger("goldlabel.security")


class SecretKeyError(RuntimeError):
    """The configured keys cannot open a sealed value, or a key is malformed (a deployment
    error: the key file or setting of another install, or a key dropped before rotation ended)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_key() -> str:
    """A fresh key, as the setting and the key file hold it."""
    return _b64(secrets.token_bytes(32))


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


class SecretBox:
    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise SecretKeyError("no key to seal secrets with")
        for key in keys:
            if len(key) != 32:
                raise SecretKeyError("a TOTP key must be 32 bytes, base64url-encoded (goldlabel makes one: "
                                     "see docs/security.md)")
        self._keys = {key_id(k): AESGCM(k) for k in keys}
        self.current = key_id(keys[0])

    def seal(self, plain: str, context: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._keys[self.current].encrypt(nonce, plain.encode(), context.encode())
        return f"{PREFIX}{self.current}:{_b64(nonce + sealed)}"

    def open(self, value: str, context: str) -> str:
        """The plain secret. A value without the prefix is a plain one stored before secrets were
        sealed (``is_current`` says it is not: the start-up sweep seals it)."""
        if not value.startswith(PREFIX):
            return value
        try:
            kid, body = value[len(PREFIX):].split(":", 1)
            raw = _unb64(body)
        except (ValueError, binascii.Error) as exc:
            raise SecretKeyError("a sealed secret is malformed") from exc
        aead = self._keys.get(kid)
        if aead is None:
            raise SecretKeyError(f"a secret was sealed with key {kid}, which is not configured "
                                 "(totp_key / totp_key_file: docs/security.md)")
        try:
            return aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag as exc:
            raise SecretKeyError(f"a secret sealed with key {kid} does not open (altered, or moved to "
                                 "another row)") from exc

    def is_current(self, value: str) -> bool:
        """Whether ``value`` is sealed with the first (sealing) key."""
        return value.startswith(f"{PREFIX}{self.current}:")


def key_file(settings: Settings) -> Path:
    return Path(settings.totp_key_file) if settings.totp_key_file else settings.data_root() / KEY_FILE_NAME


def _read_or_make_key_file(path: Path) -> list[str]:
    """The keys of ``path``, one a line; the file is made first, with one new key and mode 0600,
    when it does not exist (atomically: a concurrent process reads the same key)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, (new_key() + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails when another process made it first: theirs is kept
            log.warning("made the TOTP secrets' key file %s (mode 0600): back it up apart from the database",
                        path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    mode = path.stat().st_mode & 0o077
    if mode:
        log.warning("the TOTP key file %s is readable by other users (mode %o): chmod 600 it", path,
                    path.stat().st_mode & 0o777)
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def load_box(settings: Settings) -> SecretBox:
    texts = [k.strip() for k in settings.totp_key.split(",") if k.strip()]
    if not texts:
        texts = _read_or_make_key_file(key_file(settings))
    try:
        keys = [_unb64(t) for t in texts]
    except (ValueError, binascii.Error) as exc:
        raise SecretKeyError("a TOTP key is not base64url") from exc
    return SecretBox(keys)


_boxes_lock = threading.Lock()


def box_of(ctx: Any) -> SecretBox:
    """The SecretBox of a Context (made on first use, keys read once per process)."""
    box = getattr(ctx, "_secret_box", None)
    if box is None:
        with _boxes_lock:
            box = getattr(ctx, "_secret_box", None)
            if box is None:
                box = load_box(ctx.settings)
                ctx._secret_box = box
    return box
