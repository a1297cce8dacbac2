"""Label schema versions: every schema a project has had, and the version each answer was
given under, so an edited schema never changes what an old answer meant.

Existing projects get version 1 (their schema at upgrade time); existing answers keep
``schema_version`` NULL (given before versions were recorded).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("projects", sa.Column("schema_version", sa.Integer(), server_default="1", nullable=False))
    op.add_column("answers", sa.Column("schema_version", sa.Integer(), nullable=True))
    op.create_table(
        "label_schema_versions",
        sa.Column("project_id", _ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("label_schema", _JSON, nullable=False),
        sa.Column("created_by", _ID, nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"],
                                name=op.f("fk_label_schema_versions_project_id_projects"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"],
                                name=op.f("fk_label_schema_versions_created_by_users"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("project_id", "version", name=op.f("pk_label_schema_versions")),
    )
    op.execute(
        "INSERT INTO label_schema_versions (project_id, version, label_schema, created_by, created_at) "
        "SELECT id, 1, label_schema, created_by, updated_at FROM projects"
    )


def downgrade() -> None:
    op.drop_table("label_schema_versions")
    op.drop_column("answers", "schema_version")
    op.drop_column("projects", "schema_version")
