"""Settings: every knob, its default and its environment variable (GOLDLABEL_*).

Settings are built once (``Settings.from_env()`` in the CLI, ``Settings(...)`` in tests) and
passed down explicitly; nothing reads the environment at import time.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ENV_PREFIX = "GOLDLABEL_"


def default_database_url() -> str:
    return f"sqlite:///{Path.cwd() / 'goldlabel.db'}"


class Settings(BaseModel):
    """Every setting goldlabel reads. Each field maps to ``GOLDLABEL_<NAME>`` in the environment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: str = Field(
        default_factory=default_database_url,
        description="SQLAlchemy URL: sqlite:///path.db (default, in the working directory) "
        "or postgresql+psycopg://user@host/db.",
    )
    secret_key: str = Field(
        default="",
        description="Key signing session cookies and CSRF tokens; generated per process when empty "
        "(sessions then do not survive a restart or span several processes).",
    )
    default_lease_ttl_s: int = Field(
        default=600, ge=5, description="Lease time-to-live for new projects, in seconds."
    )
    import_batch_size: int = Field(
        default=5000, ge=1, description="Rows per INSERT batch during imports."
    )
    import_max_errors: int = Field(
        default=100, ge=1, description="Errors reported per import before it stops collecting."
    )
    max_upload_bytes: int = Field(
        default=2 * 1024**3, ge=1, description="Largest accepted import upload."
    )
    max_request_bytes: int = Field(
        default=1024**2, ge=1024,
        description="Largest request body of any route but the imports (an answer, a project, a form); "
        "larger: 413 before the body is read (docs/security.md).",
    )
    max_json_import_bytes: int = Field(
        default=64 * 1024**2, ge=1024,
        description="Largest body of POST /projects/{id}/items (parsed in memory; also at most "
        "max_upload_bytes): larger imports go through the streamed /imports upload.",
    )
    max_item_bytes: int = Field(
        default=8 * 1024**2, ge=1024,
        description="Largest item data (and, apart, meta) an import accepts, in bytes of JSON.",
    )
    max_import_rows: int = Field(
        default=10_000_000, ge=1, description="Most rows a Parquet import may hold.",
    )
    parquet_max_expansion: float = Field(
        default=50.0, gt=0,
        description="A Parquet import may decode to at most this many times its file size "
        "(and at least parquet_min_decoded_bytes): refuses compression bombs.",
    )
    parquet_min_decoded_bytes: int = Field(
        default=64 * 1024**2, ge=0, description="Decoded bytes any Parquet import may reach, whatever its size.",
    )
    password_min_length: int = Field(default=10, ge=8, description="Shortest password accepted.")
    password_min_strength: int = Field(
        default=3, ge=0, le=4,
        description="Least zxcvbn score (0-4) a new password needs: refuses common passwords, words, "
        "keyboard patterns and the username.",
    )
    password_hash_concurrency: int = Field(
        default=2, ge=1,
        description="Argon2 password hashes computed at once per process (64 MiB each); more waiting: 429.",
    )
    login_attempts_per_minute: int = Field(
        default=10, ge=1, description="Login attempts per client address per minute (across every server "
        "process: the state is in the database).",
    )
    login_max_failures: int = Field(
        default=5, ge=1, description="Failed logins in a row after which an account is locked.",
    )
    login_lockout_s: float = Field(
        default=30.0, gt=0, description="First lockout; doubled with each further failure.",
    )
    login_lockout_max_s: float = Field(default=900.0, gt=0, description="Longest lockout.")
    token_cache_s: float = Field(
        default=2.0, ge=0,
        description="How long the annotate loop's fast lane trusts a verified API token or session before "
        "reading it again. Revocation does not wait for it: the loop's own statements re-check the user's "
        "auth version, so a revoked token or a suspended user is refused at once in every process.",
    )
    page_size_max: int = Field(default=1000, ge=1, description="Largest page a list endpoint returns.")
    sqlite_busy_timeout_ms: int = Field(
        default=30000, ge=0, description="SQLite busy_timeout: how long a writer waits for the lock."
    )
    pg_pool_size: int = Field(default=10, ge=1, description="PostgreSQL connection pool size.")
    pseudonym_salt: str = Field(
        default="",
        description="Salt for pseudonymous annotator ids in exports; empty: a random salt made once per "
        "install and kept in the database (a known salt lets anyone reverse pseudonyms to user ids).",
    )
    refit_interval_s: float = Field(
        default=60.0,
        ge=0,
        description="Seconds between background re-fits of projects with new answers; 0 turns them off.",
    )
    model_interval_s: float = Field(
        default=10.0,
        ge=0,
        description="Seconds between the model worker's passes (embed new items, retrain when due, "
        "pre-label, auto-label); 0 turns the worker off in this process.",
    )
    external_models: str = Field(
        default="",
        description="Python models a project may name as its external model: comma-separated "
        "name=module:callable entry points, each called with a batch request and answering predictions "
        "(docs/models.md, External models). Only the operator registers code; projects name it.",
    )
    external_model_timeout_s: float = Field(
        default=10.0, gt=0, le=300,
        description="Timeout of one call to an external model (an HTTP request or a Python entry point).",
    )
    external_model_retries: int = Field(
        default=2, ge=0, le=10,
        description="Retries of a failed external-model call (a timeout, a network error, an HTTP 5xx or 429), "
        "waiting 0.5 s and doubling; then the items stay with the humans until the next pass.",
    )
    external_model_allowed_networks: str = Field(
        default="",
        description="Comma-separated IP networks external model URLs may reach although they are not public "
        "(loopback, private, link-local), e.g. 10.0.0.0/8; empty: public addresses only.",
    )
    default_annotator_accuracy: float = Field(
        default=0.7, gt=0, lt=1, description="Accuracy assumed for an annotator nothing is known about yet."
    )
    skill_prior_answers: float = Field(
        default=20.0,
        ge=0,
        description="Weight, in answers, of the default annotator in every learned skill used per answer: "
        "a skill learned from n answers counts n / (n + this). Keeps final-label confidence honest "
        "when skills rest on few answers; 0 trusts learned skills fully.",
    )
    media_store: str = Field(
        default="local", pattern="^(local|s3)$",
        description="Where media files live: local (a directory, media_dir) or s3 (media_s3_bucket).",
    )
    media_dir: str = Field(
        default="",
        description="Local media store directory; empty: a 'media' folder beside the SQLite database "
        "(or in the working directory for PostgreSQL).",
    )
    media_s3_bucket: str = Field(default="", description="S3 bucket of the media store (media_store=s3).")
    media_s3_prefix: str = Field(default="", description="Key prefix inside the media bucket.")
    media_s3_endpoint_url: str = Field(
        default="", description="S3-compatible endpoint (MinIO, Ceph, ...); empty: AWS. Credentials come "
        "from boto3's usual sources (AWS_ACCESS_KEY_ID, ~/.aws, an instance role).",
    )
    media_s3_region: str = Field(default="", description="S3 region of the media bucket.")
    media_serve: str = Field(
        default="proxy", pattern="^(proxy|redirect)$",
        description="How media in S3 reach the browser: proxy (through the server, same-origin) or "
        "redirect (to a short-lived signed URL; the bucket's host must be allowed by the CSP).",
    )
    media_url_ttl_s: int = Field(default=300, ge=10, le=7 * 24 * 3600,
                                 description="Lifetime of a signed media URL (media_serve=redirect).")
    max_media_bytes: int = Field(default=512 * 1024**2, ge=1,
                                 description="Largest media file an import or upload accepts.")
    log_level: str = Field(default="warning", description="uvicorn / goldlabel log level.")
    webhook_poll_interval_s: float = Field(
        default=1.0, ge=0,
        description="Seconds between the webhook worker's looks at the outbox; 0 turns delivery off "
        "in this process (events wait for a process that delivers).",
    )
    webhook_timeout_s: float = Field(default=10.0, gt=0, description="Timeout of one webhook request.")
    webhook_retry_base_s: float = Field(
        default=30.0, gt=0,
        description="First wait before retrying a failed webhook delivery; doubles each try (at most an hour).",
    )
    webhook_retry_window_s: float = Field(
        default=86400.0, gt=0,
        description="How long a webhook delivery is retried before it is marked failed (24 h).",
    )
    webhook_claim_s: float = Field(
        default=120.0, gt=0,
        description="How long a worker's claim on a webhook delivery holds: a worker that dies while "
        "sending leaves the delivery to another after this long (longer than webhook_timeout_s).",
    )
    webhook_log_retention_s: float = Field(
        default=30 * 86400.0, gt=0,
        description="How long delivered and failed webhook deliveries stay in the delivery log (30 days).",
    )
    webhook_allowed_networks: str = Field(
        default="",
        description="Comma-separated IP networks webhooks may reach although they are not public "
        "(loopback, private, link-local), e.g. 10.0.0.0/8; empty: public addresses only.",
    )

    delete_undo_s: int = Field(
        default=600, ge=0,
        description="How long a deleted item or project can be restored (undo) before the purge sweep "
        "removes it for good (10 minutes).",
    )
    purge_interval_s: float = Field(
        default=60.0, ge=0,
        description="Seconds between sweeps that purge items and projects deleted longer than "
        "delete_undo_s ago; 0 turns the sweep off in this process.",
    )
    text_index_interval_s: float = Field(
        default=2.0, ge=0,
        description="Seconds between runs of the indexer that adds new items to the item browser's text "
        "index after imports (searches scan the items it has not reached yet); 0 turns it off in this process.",
    )

    media_http_hosts: str = Field(
        default="",
        description="Comma-separated hosts whose http: (not https:) image URLs items may name, e.g. "
        "an intranet image server; empty: https:, media paths and data:image only.",
    )
    media_fetch_schemes: str = Field(
        default="",
        description="Comma-separated schemes of objects items may reference in place, which the server "
        "fetches and serves same-origin: s3 (s3://bucket/key from media_fetch_s3_endpoint_url) and file "
        "(file:///path under media_fetch_root); empty: none.",
    )
    media_fetch_root: str = Field(
        default="", description="The folder file:// objects in place must lie under (media_fetch_schemes=file).",
    )
    media_fetch_s3_endpoint_url: str = Field(
        default="", description="The S3 endpoint s3:// objects in place are fetched from; empty: "
        "media_s3_endpoint_url, else AWS (https://s3.<region>.amazonaws.com). Credentials as for the media store.",
    )
    media_fetch_allowed_networks: str = Field(
        default="",
        description="Comma-separated IP networks the fetch of s3:// objects may reach although they are not "
        "public (a MinIO on the private network, e.g. 10.0.0.0/8); empty: public addresses only.",
    )
    media_fetch_max_bytes: int = Field(
        default=64 * 1024**2, ge=1,
        description="Largest object in place the server serves (streamed; a larger one is refused before "
                    "a byte is sent).",
    )

    totp_required_roles: str = Field(
        default="",
        description="Comma-separated roles (admin, manager, reviewer, annotator) that must use two-factor "
        "login (TOTP): a user of such a role who has not enrolled can, after the password, only enrol.",
    )
    totp_issuer: str = Field(
        default="goldlabel", min_length=1, max_length=60,
        description="Issuer name authenticator apps show beside a goldlabel account.",
    )
    totp_key: str = Field(
        default="",
        description="Comma-separated keys (each 32 random bytes, base64url) that encrypt the stored TOTP "
        "secrets (AES-256-GCM); the first encrypts, all decrypt (rotation: docs/security.md). Empty: "
        "the keys of totp_key_file.",
    )
    totp_key_file: str = Field(
        default="",
        description="File of the TOTP secrets' keys, one a line, the first encrypting (made once, mode "
        "0600, when missing). Empty: 'totp.key' beside the SQLite database (in the working directory "
        "for PostgreSQL). Never in the database, so a copy of it alone does not reveal the secrets.",
    )
    audit_retention_days: int = Field(
        default=0, ge=0,
        description="Audit entries older than this many days are deleted by the sweep (every "
        "purge_interval_s; the sweep is audited itself); 0 keeps them forever.",
    )

    @field_validator("totp_required_roles")
    @classmethod
    def _check_totp_roles(cls, value: str) -> str:
        roles = ("admin", "manager", "reviewer", "annotator")  # storage.tables.ROLES
        for entry in filter(None, (e.strip() for e in value.split(","))):
            if entry not in roles:
                raise ValueError(f"{entry!r} is not a role (one of {', '.join(roles)})")
        return value

    @property
    def totp_roles(self) -> frozenset[str]:
        """The roles of ``totp_required_roles``, parsed."""
        return frozenset(filter(None, (e.strip() for e in self.totp_required_roles.split(","))))

    @field_validator("media_fetch_schemes")
    @classmethod
    def _check_fetch_schemes(cls, value: str) -> str:
        from goldlabel.domain.media_sources import parse_fetch_schemes

        parse_fetch_schemes(value)
        return value

    @field_validator("external_models")
    @classmethod
    def _check_external_models(cls, value: str) -> str:
        for entry in filter(None, (e.strip() for e in value.split(","))):
            name, sep, spec = entry.partition("=")
            module, colon, attr = spec.strip().partition(":")
            if not sep or not name.strip() or not colon or not module or not attr:
                raise ValueError(f"{entry!r} is not name=module:callable")
        return value

    @field_validator("webhook_allowed_networks", "media_fetch_allowed_networks", "external_model_allowed_networks")
    @classmethod
    def _check_networks(cls, value: str) -> str:
        for entry in filter(None, (e.strip() for e in value.split(","))):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as exc:
                raise ValueError(f"{entry!r} is not an IP network (e.g. 10.0.0.0/8)") from exc
        return value

    @model_validator(mode="after")
    def _check_webhook_claim(self) -> Settings:
        # A claim shorter than a send would let a second worker send while the first still waits.
        if self.webhook_claim_s <= self.webhook_timeout_s:
            raise ValueError("webhook_claim_s must be longer than webhook_timeout_s")
        return self

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``GOLDLABEL_*`` variables, then apply explicit overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            key = ENV_PREFIX + name.upper()
            if key in env:
                values[name] = env[key]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def data_root(self) -> Path:
        """The install's own folder: the SQLite database's, or the working directory."""
        if self.is_sqlite and self.database_url.startswith("sqlite:///") and ":memory:" not in self.database_url:
            return Path(self.database_url[len("sqlite:///"):]).parent
        return Path.cwd()

    def media_root(self) -> Path:
        """The local media store's directory."""
        if self.media_dir:
            return Path(self.media_dir)
        if self.is_sqlite and self.database_url.startswith("sqlite:///") and ":memory:" not in self.database_url:
            return Path(self.database_url[len("sqlite:///"):]).parent / "media"
        return Path.cwd() / "media"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
