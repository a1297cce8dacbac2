"""Snapshots: named, immutable exports whose bytes live in the media store.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "snapshots",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE",
                                                  name="fk_snapshots_project_id_projects"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("format", sa.String(20), nullable=False),
        sa.Column("options", Json, nullable=False),
        sa.Column("item_count", sa.Integer, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("object_key", sa.String(300), nullable=False),
        sa.Column("created_by", Id, sa.ForeignKey("users.id", ondelete="SET NULL",
                                                  name="fk_snapshots_created_by_users"), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_snapshots"),
        sa.UniqueConstraint("project_id", "name", name="uq_snapshots_project_id_name"),
    )


def downgrade() -> None:
    op.drop_table("snapshots")
