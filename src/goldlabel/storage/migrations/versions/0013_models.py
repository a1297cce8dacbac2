"""Models in the loop: item embeddings, project model versions, the model settings and worker
state per project, auto-labels (with their audits) and the label-error audit.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _fk(table: str, column: str, target: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], ondelete=ondelete,
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    op.create_table(
        "embeddings",
        sa.Column("item_id", _ID, nullable=False),
        sa.Column("project_id", _ID, nullable=False),
        sa.Column("model_id", sa.String(100), nullable=False),
        sa.Column("content_hash", sa.String(32), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("scale", sa.Float(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        _fk("embeddings", "item_id", "items"),
        _fk("embeddings", "project_id", "projects"),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_embeddings")),
    )
    op.create_index("ix_embeddings_project_id", "embeddings", ["project_id", "item_id"])
    op.create_index("ix_embeddings_model_id", "embeddings", ["model_id", "content_hash"])
    op.create_table(
        "model_versions",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("project_id", _ID, nullable=False),
        sa.Column("question", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("embedder", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("labels", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("metrics", _JSON, nullable=True),
        sa.Column("threshold", _JSON, nullable=True),
        sa.Column("params", sa.LargeBinary(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        _fk("model_versions", "project_id", "projects"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.CheckConstraint("status IN ('ready', 'failed')", name=op.f("ck_model_versions_status")),
    )
    op.create_index("ix_model_versions_project_id", "model_versions", ["project_id", "id"])
    op.create_table(
        "model_state",
        sa.Column("project_id", _ID, nullable=False),
        sa.Column("settings", _JSON, nullable=False),
        sa.Column("train_requested", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("labels_at_train", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("auto_label_since", sa.BigInteger(), nullable=True),
        sa.Column("auto_label_off_reason", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.BigInteger(), nullable=True),
        sa.Column("busy_until", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        _fk("model_state", "project_id", "projects"),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_model_state")),
    )
    op.create_table(
        "auto_labels",
        sa.Column("item_id", _ID, nullable=False),
        sa.Column("project_id", _ID, nullable=False),
        sa.Column("version_id", _ID, nullable=False),
        sa.Column("question", sa.String(200), nullable=False),
        sa.Column("label", _JSON, nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("audit", sa.Boolean(), nullable=False),
        sa.Column("audit_correct", sa.Boolean(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        _fk("auto_labels", "item_id", "items"),
        _fk("auto_labels", "project_id", "projects"),
        _fk("auto_labels", "version_id", "model_versions"),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_auto_labels")),
    )
    op.create_index("ix_auto_labels_project_id", "auto_labels", ["project_id", "audit", "item_id"])
    op.create_table(
        "label_issues",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("project_id", _ID, nullable=False),
        sa.Column("version_id", _ID, nullable=False),
        sa.Column("item_id", _ID, nullable=False),
        sa.Column("question", sa.String(200), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("given", _JSON, nullable=True),
        sa.Column("suggested", _JSON, nullable=True),
        sa.Column("self_confidence", sa.Float(), nullable=False),
        _fk("label_issues", "project_id", "projects"),
        _fk("label_issues", "version_id", "model_versions"),
        _fk("label_issues", "item_id", "items"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label_issues")),
    )
    op.create_index("ix_label_issues_version_id", "label_issues", ["version_id", "rank"])


def downgrade() -> None:
    op.drop_table("label_issues")
    op.drop_table("auto_labels")
    op.drop_table("model_state")
    op.drop_table("model_versions")
    op.drop_table("embeddings")
