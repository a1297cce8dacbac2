"""Auth hardening (issue 13 item 1, issue 17 items 5, 6, 15): a per-user auth version that every
revocation bumps (read by the annotate loop's own statements, so revocation reaches every server
process at once), room for encrypted TOTP secrets, the login throttle's shared state, and the
audit retention sweep's gate (the only way rows leave the append-only audit log).

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# The audit log stays append-only, except for the retention sweep (services/audit.py): it sets
# the gate's cutoff, deletes the rows older than it and sets it back to 0, in one transaction.
# An UPDATE, or a DELETE of a row not older than the cutoff, still fails whoever issues it.
_PG_GUARD = """
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' AND OLD.at < (SELECT coalesce(max(cutoff), 0) FROM audit_log_sweep_gate) THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit_log is append-only';
END;
$$ LANGUAGE plpgsql;
"""
_PG_GUARD_BEFORE = """
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only';
END;
$$ LANGUAGE plpgsql;
"""
_SQLITE_DELETE_GUARD = (
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "WHEN OLD.at >= (SELECT coalesce(max(cutoff), 0) FROM audit_log_sweep_gate) "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
)
_SQLITE_DELETE_GUARD_BEFORE = (
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("auth_version", sa.Integer(), nullable=False, server_default="0"))
        batch.alter_column("totp_secret", type_=sa.String(255), existing_type=sa.String(64),
                           existing_nullable=True)
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False, server_default="0"),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttle")),
    )
    op.create_index("ix_login_throttle_at", "login_throttle", ["at"])
    op.create_table(
        "audit_log_sweep_gate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cutoff", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log_sweep_gate")),
    )
    op.execute("INSERT INTO audit_log_sweep_gate (id, cutoff) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_GUARD)
    else:
        op.execute("DROP TRIGGER audit_log_no_delete")
        op.execute(_SQLITE_DELETE_GUARD)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_GUARD_BEFORE)
    else:
        op.execute("DROP TRIGGER audit_log_no_delete")
        op.execute(_SQLITE_DELETE_GUARD_BEFORE)
    op.drop_table("audit_log_sweep_gate")
    op.drop_index("ix_login_throttle_at", table_name="login_throttle")
    op.drop_table("login_throttle")
    with op.batch_alter_table("users") as batch:
        batch.alter_column("totp_secret", type_=sa.String(64), existing_type=sa.String(255),
                           existing_nullable=True)
        batch.drop_column("auth_version")
