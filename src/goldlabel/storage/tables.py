"""Table definitions (SQLAlchemy Core). The migrations in ``migrations/versions`` create these.

Timestamps are integer milliseconds since the Unix epoch: they compare the same way on
SQLite and PostgreSQL, cost one integer, and lease expiry is a plain ``<``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from goldlabel.domain.vocabulary import (  # the CHECK constraints' words
    ANNOTATOR_STATUSES,
    ITEM_STORED_STATUSES,
    LEASE_STATUSES,
    ROLES,
    WEBHOOK_DELIVERY_STATUSES,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING)

# JSONB on PostgreSQL (indexable, compact), TEXT-backed JSON on SQLite.
Json = sa.JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments INTEGER PRIMARY KEY, so BigInteger is INTEGER there.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")



def _pk() -> sa.Column[Any]:
    return sa.Column("id", Id, primary_key=True, autoincrement=True)


users = sa.Table(
    "users",
    metadata,
    _pk(),
    sa.Column("username", sa.String(150), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False, server_default=""),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=True),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    # Two-factor login (services/totp.py): the base32 secret is set at enrolment and shown once;
    # totp_enabled_at is set when a first code confirms it. totp_last_step refuses a code's
    # replay; totp_recovery holds sha256 hashes of the unused recovery codes.
    # The secret is stored encrypted (services/totp.py, AES-GCM under a key kept outside the
    # database: docs/security.md).
    sa.Column("totp_secret", sa.String(255), nullable=True),
    sa.Column("totp_enabled_at", sa.BigInteger, nullable=True),
    sa.Column("totp_last_step", sa.BigInteger, nullable=True),
    sa.Column("totp_recovery", Json, nullable=True),
    # Bumped by every change that can revoke what a credential of the user may do (a token
    # revoked, a session ended, suspension, a role or password change, two-factor login on or
    # off): a process that cached the user's actor sees the change in the annotate loop's own
    # statements, which compare it (services/users.py; docs/security.md).
    sa.Column("auth_version", sa.Integer, nullable=False, server_default="0"),
    sa.CheckConstraint(f"role IN {ROLES!r}", name="role"),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    _pk(),
    sa.Column("user_id", Id, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    # sha256 of the token: tokens are 256-bit random, so a fast hash is enough and lookups stay O(1).
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("last_used_at", sa.BigInteger, nullable=True),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
)

# Browser sessions: the signed cookie names the session, this row says it is still live, so a
# logout, a password change or an admin can end it. Keyed by sha256 of the cookie's random nonce
# (never the nonce itself, as with API tokens): the per-request check is one primary-key lookup.
sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("nonce_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", Id, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
)

projects = sa.Table(
    "projects",
    metadata,
    _pk(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("instructions", sa.Text, nullable=False, server_default=""),
    sa.Column("label_schema", Json, nullable=False),
    sa.Column("overlap_min", sa.Integer, nullable=False),
    sa.Column("overlap_max", sa.Integer, nullable=False),
    sa.Column("lease_ttl_s", sa.Integer, nullable=False),
    sa.Column("settings", Json, nullable=False),
    sa.Column("created_by", Id, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    # The current label_schema's number in label_schema_versions.
    sa.Column("schema_version", sa.Integer, nullable=False, server_default="1"),
    # Set while the project is deleted and restorable (settings.delete_undo_s); purged after.
    sa.Column("deleted_at", sa.BigInteger, nullable=True),
    sa.CheckConstraint("overlap_min >= 1 AND overlap_max >= overlap_min", name="overlap"),
)

# Every label schema a project has had: an answer keeps the meaning of the version it was
# given under (answers.schema_version), whatever the schema says later.
label_schema_versions = sa.Table(
    "label_schema_versions",
    metadata,
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("label_schema", Json, nullable=False),
    sa.Column("created_by", Id, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

project_members = sa.Table(
    "project_members",
    metadata,
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", Id, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index("ix_project_members_user_id", "user_id"),
    sa.CheckConstraint(f"role IN {ROLES!r}", name="role"),
)

items = sa.Table(
    "items",
    metadata,
    _pk(),
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("external_id", sa.String(255), nullable=False),
    sa.Column("data", Json, nullable=False),
    sa.Column("meta", Json, nullable=True),
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
    sa.Column("status", sa.String(20), nullable=False, server_default="open"),
    # The queue's bookkeeping lives on the row it guards, so the database checks it (Q1, Q3).
    sa.Column("is_gold", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("answer_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("reserved", sa.Integer, nullable=False, server_default="0"),
    sa.Column("target_overlap", sa.Integer, nullable=False),
    sa.Column("overlap_max", sa.Integer, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    # Soft delete: status "deleted", the status it had kept for an undo, and when (the purge
    # sweep removes the row once settings.delete_undo_s has passed).
    sa.Column("deleted_at", sa.BigInteger, nullable=True),
    sa.Column("status_before_delete", sa.String(20), nullable=True),
    # Why an annotator reported the item (ITEM_FLAGS, e.g. media_broken), by whom and when.
    sa.Column("flag", sa.String(50), nullable=True),
    sa.Column("flagged_by", Id, nullable=True),
    sa.Column("flagged_at", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("project_id", "external_id"),
    sa.CheckConstraint(f"status IN {ITEM_STORED_STATUSES!r}", name="status"),
    sa.CheckConstraint("answer_count >= 0 AND reserved >= 0", name="counts"),
    sa.CheckConstraint("answer_count <= overlap_max", name="q1_max_overlap"),
    sa.CheckConstraint("answer_count + reserved <= overlap_max", name="q3_reserved"),
    # The queue scans this index in policy order: priority, closest to completion, FIFO.
    # PostgreSQL: only open items (migration 0005). A query that does not ask for open items
    # cannot pick it: with statistics that knew nothing of a new project (analyzed while the
    # table held others), the import's external-id lookup probed this index on project_id and
    # filtered external_id, instead of the unique index, and a 1M-item import went quadratic.
    # The queue's queries must spell status = 'open' as a literal (a parameter does not prove
    # the index's predicate to a generic plan).
    sa.Index(
        "ix_items_queue",
        "project_id",
        "status",
        "is_gold",
        sa.text("priority DESC"),
        sa.text("answer_count DESC"),
        "id",
        postgresql_where=sa.text("status = 'open'"),
    ),
    # The purge sweep's and the undo's seek: deleted items only (a few), never a scan.
    sa.Index(
        "ix_items_deleted_at", "deleted_at",
        postgresql_where=sa.text("deleted_at IS NOT NULL"), sqlite_where=sa.text("deleted_at IS NOT NULL"),
    ),
)

leases = sa.Table(
    "leases",
    metadata,
    _pk(),
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("item_id", Id, sa.ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
    sa.Column("annotator_id", Id, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Column("answer_id", Id, nullable=True),
    # Q3: at most one lease row per (item, annotator); a re-lease after expiry reuses the row.
    sa.UniqueConstraint("item_id", "annotator_id"),
    sa.CheckConstraint(f"status IN {LEASE_STATUSES!r}", name="status"),
    sa.Index("ix_leases_expiry", "project_id", "status", "expires_at"),
    sa.Index("ix_leases_annotator", "annotator_id", "status"),
)

answers = sa.Table(
    "answers",
    metadata,
    _pk(),
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("item_id", Id, sa.ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
    sa.Column("annotator_id", Id, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("lease_id", Id, nullable=True),
    sa.Column("value", Json, nullable=False),
    sa.Column("status", sa.String(20), nullable=False, server_default="submitted"),
    sa.Column("duration_ms", sa.Integer, nullable=True),
    sa.Column("idempotency_key", sa.String(200), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    # The project's schema version the answer was validated against (NULL: given before
    # versions were recorded).
    sa.Column("schema_version", sa.Integer, nullable=True),
    # Q2: one answer per (item, annotator), ever: a unique index, never check-then-insert.
    sa.UniqueConstraint("item_id", "annotator_id"),
    sa.UniqueConstraint("annotator_id", "idempotency_key"),
    sa.Index("ix_answers_project_id", "project_id", "id"),
)

predictions = sa.Table(
    "predictions",
    metadata,
    _pk(),
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("item_id", Id, sa.ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
    sa.Column("model_version", sa.String(200), nullable=False, server_default=""),
    sa.Column("value", Json, nullable=False),
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("item_id", "model_version"),
)

# Q8: gold answers live apart from items and answers; no annotator-facing query joins this table.
gold_answers = sa.Table(
    "gold_answers",
    metadata,
    sa.Column("item_id", Id, sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("value", Json, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index("ix_gold_answers_project_id", "project_id"),
)

# Gold answers waiting to be scored (services/gold.py): written with the answer, in its
# transaction; deleted by the transaction that scores it.
gold_pending = sa.Table(
    "gold_pending",
    metadata,
    sa.Column("answer_id", Id, sa.ForeignKey("answers.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)


consensus = sa.Table(
    "consensus",
    metadata,
    sa.Column("item_id", Id, sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("question", sa.String(200), primary_key=True),
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("value", Json, nullable=True),
    sa.Column("confidence", sa.Float, nullable=True),
    sa.Column("method", sa.String(50), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("contributions", Json, nullable=True),
    # Share of the item's answers that match the consensus value (choice questions): 1.0 is
    # unanimous; the item browser's disagreement filter reads it.
    sa.Column("agreement", sa.Float, nullable=True),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    # Where the label came from (CONSENSUS_SOURCES): only "consensus" rows are rewritten by a
    # later answer or a re-fit; a reviewed label stays as the reviewer left it.
    sa.Column("source", sa.String(20), nullable=False, server_default="consensus"),
    sa.Column("reviewer_id", Id, nullable=True),
    sa.Column("reviewed_at", sa.BigInteger, nullable=True),
    sa.Index("ix_consensus_project_id", "project_id", "item_id"),
)

# Transactional outbox (Q9): written in the same transaction as the change it announces.
events = sa.Table(
    "events",
    metadata,
    _pk(),
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=True),
    sa.Column("kind", sa.String(100), nullable=False),
    sa.Column("payload", Json, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("delivered_at", sa.BigInteger, nullable=True),
    sa.Index("ix_events_undelivered", "delivered_at", "id"),
    sa.Index("ix_events_project_id", "project_id", "id"),
)


# Per (project, annotator): gold record and standing. Written by the quality service.
annotator_stats = sa.Table(
    "annotator_stats",
    metadata,
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("annotator_id", Id, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("n_gold", sa.Integer, nullable=False, server_default="0"),
    sa.Column("n_gold_correct", sa.Integer, nullable=False, server_default="0"),
    sa.Column("status", sa.String(20), nullable=False, server_default="active"),
    # Why the status is what it is (counts, interval, recent gold misses): shown to managers.
    sa.Column("evidence", Json, nullable=True),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.CheckConstraint(f"status IN {ANNOTATOR_STATUSES!r}", name="status"),
)

# Per (project, annotator, choice question): what the engine believes about the annotator.
annotator_skills = sa.Table(
    "annotator_skills",
    metadata,
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("annotator_id", Id, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("question", sa.String(200), primary_key=True),
    sa.Column("accuracy", sa.Float, nullable=False),
    sa.Column("accuracy_low", sa.Float, nullable=True),
    sa.Column("accuracy_high", sa.Float, nullable=True),
    # Row-stochastic confusion matrix (true label x answered label, schema label order).
    sa.Column("confusion", Json, nullable=True),
    sa.Column("n_answers", sa.Integer, nullable=False, server_default="0"),
    sa.Column("method", sa.String(50), nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

# Per (project, question): class prior and bookkeeping of the last full re-fit.
project_models = sa.Table(
    "project_models",
    metadata,
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("question", sa.String(200), primary_key=True),
    sa.Column("prior", Json, nullable=True),
    sa.Column("method", sa.String(50), nullable=False),
    sa.Column("n_answers", sa.Integer, nullable=False, server_default="0"),
    sa.Column("fitted_at", sa.BigInteger, nullable=True),
    # A re-fit claims the row until this time, so only one process re-fits a project at once.
    sa.Column("busy_until", sa.BigInteger, nullable=True),
)

reviews = sa.Table(
    "reviews",
    metadata,
    _pk(),
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("item_id", Id, sa.ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
    sa.Column("reviewer_id", Id, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("value", Json, nullable=True),
    sa.Column("comment", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.CheckConstraint("action IN ('accept', 'reject', 'fix')", name="action"),
    sa.Index("ix_reviews_item_id", "item_id", "id"),
    sa.Index("ix_reviews_project_id", "project_id", "id"),
)

# A frozen export: its bytes live in the media store under ``object_key``; the row never changes.
snapshots = sa.Table(
    "snapshots",
    metadata,
    _pk(),
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("format", sa.String(20), nullable=False),
    sa.Column("options", Json, nullable=False),
    sa.Column("item_count", sa.Integer, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("object_key", sa.String(300), nullable=False),
    sa.Column("created_by", Id, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("project_id", "name"),
)

# Secrets made once per install (a random pseudonym salt, ...): stored with the data they
# protect, so every process of the install, and a restored backup, use the same.
install_secrets = sa.Table(
    "install_secrets",
    metadata,
    sa.Column("name", sa.String(50), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)


# A project's webhook subscription. The secret signs every delivery, so it is kept (it must be
# recoverable to sign); the API shows it once, at creation.
webhook_subscriptions = sa.Table(
    "webhook_subscriptions",
    metadata,
    _pk(),
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("event_types", Json, nullable=False),
    sa.Column("secret", sa.String(100), nullable=False),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("description", sa.String(500), nullable=False, server_default=""),
    sa.Column("created_by", Id, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index("ix_webhook_subscriptions_project_id", "project_id"),
)

# One event for one subscription: the delivery log and the retry state. Written when the worker
# fans an outbox event out (in the transaction that marks the event delivered_at), claimed by
# one worker at a time (claimed_until), retried with back-off until retry_until.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    _pk(),
    sa.Column("subscription_id", Id, sa.ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("event_id", Id, sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
    sa.Column("retry_until", sa.BigInteger, nullable=False),
    sa.Column("claimed_until", sa.BigInteger, nullable=True),
    sa.Column("last_attempt_at", sa.BigInteger, nullable=True),
    sa.Column("response_status", sa.Integer, nullable=True),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("delivered_at", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("subscription_id", "event_id"),
    sa.CheckConstraint(f"status IN {WEBHOOK_DELIVERY_STATUSES!r}", name="status"),
    sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    sa.Index("ix_webhook_deliveries_subscription_id", "subscription_id", "id"),
    sa.Index("ix_webhook_deliveries_event_id", "event_id"),
)

# The audit log (services/audit.py): who did what to which object, written in the transaction of
# the action. Append-only: triggers refuse UPDATE and DELETE (migration 0012). No foreign keys:
# an entry outlives the user, project or item it names.
audit_log = sa.Table(
    "audit_log",
    metadata,
    _pk(),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("actor_id", Id, nullable=True),
    sa.Column("actor_name", sa.String(150), nullable=False, server_default=""),
    sa.Column("action", sa.String(60), nullable=False),
    sa.Column("project_id", Id, nullable=True),
    sa.Column("target_type", sa.String(30), nullable=False, server_default=""),
    sa.Column("target_id", sa.String(100), nullable=False, server_default=""),
    sa.Column("address", sa.String(64), nullable=False, server_default=""),
    sa.Column("detail", Json, nullable=False),
    sa.Index("ix_audit_log_actor_id", "actor_id", "id"),
    sa.Index("ix_audit_log_action", "action", "id"),
    sa.Index("ix_audit_log_project_id", "project_id", "id"),
    sa.Index("ix_audit_log_at", "at"),
)

# One row: the retention sweep's cutoff (0 but during the sweep's own transaction). The audit
# log's DELETE trigger lets through only rows older than it (migration 0014).
audit_log_sweep_gate = sa.Table(
    "audit_log_sweep_gate",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("cutoff", sa.BigInteger, nullable=False, server_default="0"),
)

# The login throttle's state (services/login_guard.py), shared by every server process: one row
# per client address ("a:...", a token bucket) and per account ("u:...", failures in a row and
# the lockout). Rows untouched for a day are swept.
login_throttle = sa.Table(
    "login_throttle",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("tokens", sa.Float, nullable=False, server_default="0"),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Index("ix_login_throttle_at", "at"),
)

# ---------------------------------------------------------------- models in the loop (docs/models.md)

# One embedding per item: int8 with a per-row scale (the row is int8 * scale), 384 + 8 bytes of
# payload for MiniLM, so 1M items take well under 1 GB. ``content_hash`` + ``model_id`` is the
# cache key: an item whose text another item already had gets that vector, never a second run.
embeddings = sa.Table(
    "embeddings",
    metadata,
    sa.Column("item_id", Id, sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("model_id", sa.String(100), nullable=False),
    sa.Column("content_hash", sa.String(32), nullable=False),
    sa.Column("vector", sa.LargeBinary, nullable=False),
    sa.Column("scale", sa.Float, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index("ix_embeddings_project_id", "project_id", "item_id"),
    sa.Index("ix_embeddings_model_id", "model_id", "content_hash"),
)

MODEL_VERSION_STATUSES = ("ready", "failed")

# Every training run of a project model: metrics on out-of-fold (held-out) human labels, the
# auto-label threshold with its bound, and the fitted weights (numpy .npz bytes, no pickle).
model_versions = sa.Table(
    "model_versions",
    metadata,
    _pk(),
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("question", sa.String(200), nullable=False),
    sa.Column("version", sa.String(100), nullable=False),
    sa.Column("embedder", sa.String(100), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("labels", sa.Integer, nullable=False, server_default="0"),
    sa.Column("metrics", Json, nullable=True),
    sa.Column("threshold", Json, nullable=True),
    sa.Column("params", sa.LargeBinary, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.CheckConstraint(f"status IN {MODEL_VERSION_STATUSES!r}", name="status"),
    sa.Index("ix_model_versions_project_id", "project_id", "id"),
)

# Per project: the model settings (auto-labeling and its target, audit share, retrain cadence),
# the worker's bookkeeping and its last error (shown in the console).
model_state = sa.Table(
    "model_state",
    metadata,
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("settings", Json, nullable=False),
    sa.Column("train_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("labels_at_train", sa.Integer, nullable=False, server_default="0"),
    sa.Column("auto_label_since", sa.BigInteger, nullable=True),
    sa.Column("auto_label_off_reason", sa.Text, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("last_error_at", sa.BigInteger, nullable=True),
    sa.Column("busy_until", sa.BigInteger, nullable=True),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    # The model as an annotator (goldlabel.models.model_skill): the question it answers and its
    # learned confusion per confidence band; written by the re-fit, NULL while none is learned
    # or when the project's ``model_annotator`` setting is off.
    sa.Column("annotator", Json, nullable=True),
    # The last answer id the model worker recorded pre-label outcomes for (prelabel_outcomes).
    sa.Column("prelabel_cursor", Id, nullable=False, server_default="0"),
)

# Per answer to the model's question: whether the model's pre-label was shown to the annotator
# (the project showed predictions and the item's prediction existed, unreplaced, before the
# answer), whether the annotator kept it unchanged, and on gold items whether the answer and the
# pre-label were right: the keep rate and the anchoring measure per annotator. Written by the
# model worker shortly after the answer (services/models/), never on the annotate path.
prelabel_outcomes = sa.Table(
    "prelabel_outcomes",
    metadata,
    sa.Column("answer_id", Id, sa.ForeignKey("answers.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("annotator_id", Id, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("shown", sa.Boolean, nullable=False),
    sa.Column("kept", sa.Boolean, nullable=True),
    sa.Column("is_gold", sa.Boolean, nullable=False),
    sa.Column("correct", sa.Boolean, nullable=True),
    sa.Column("prelabel_correct", sa.Boolean, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index("ix_prelabel_outcomes_project_id", "project_id", "annotator_id"),
)

# Items the model labeled: final with consensus source "auto", or (audit) left to the humans and
# compared with their label when it is final.
auto_labels = sa.Table(
    "auto_labels",
    metadata,
    sa.Column("item_id", Id, sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("version_id", Id, sa.ForeignKey("model_versions.id", ondelete="CASCADE"), nullable=False),
    sa.Column("question", sa.String(200), nullable=False),
    sa.Column("label", Json, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("audit", sa.Boolean, nullable=False),
    sa.Column("audit_correct", sa.Boolean, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index("ix_auto_labels_project_id", "project_id", "audit", "item_id"),
)

# The label-error audit of a model version: final labels the model's out-of-fold probabilities
# call likely wrong (confident learning), most suspicious first.
label_issues = sa.Table(
    "label_issues",
    metadata,
    _pk(),
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("version_id", Id, sa.ForeignKey("model_versions.id", ondelete="CASCADE"), nullable=False),
    sa.Column("item_id", Id, sa.ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
    sa.Column("question", sa.String(200), nullable=False),
    sa.Column("rank", sa.Integer, nullable=False),
    sa.Column("given", Json, nullable=True),
    sa.Column("suggested", Json, nullable=True),
    sa.Column("self_confidence", sa.Float, nullable=False),
    sa.Index("ix_label_issues_version_id", "version_id", "rank"),
)
