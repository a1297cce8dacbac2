"""Quality engine state: annotator stats and skills, per-question project models, reviews.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('annotator_skills',
    sa.Column('project_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('annotator_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('question', sa.String(length=200), nullable=False),
    sa.Column('accuracy', sa.Float(), nullable=False),
    sa.Column('accuracy_low', sa.Float(), nullable=True),
    sa.Column('accuracy_high', sa.Float(), nullable=True),
    sa.Column('confusion', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.Column('n_answers', sa.Integer(), server_default='0', nullable=False),
    sa.Column('method', sa.String(length=50), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['annotator_id'], ['users.id'], name=op.f('fk_annotator_skills_annotator_id_users'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_annotator_skills_project_id_projects'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', 'annotator_id', 'question', name=op.f('pk_annotator_skills'))
    )
    op.create_table('annotator_stats',
    sa.Column('project_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('annotator_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('n_gold', sa.Integer(), server_default='0', nullable=False),
    sa.Column('n_gold_correct', sa.Integer(), server_default='0', nullable=False),
    sa.Column('status', sa.String(length=20), server_default='active', nullable=False),
    sa.Column('evidence', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.CheckConstraint("status IN ('active', 'qualifying', 'suspended')", name=op.f('ck_annotator_stats_status')),
    sa.ForeignKeyConstraint(['annotator_id'], ['users.id'], name=op.f('fk_annotator_stats_annotator_id_users'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_annotator_stats_project_id_projects'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', 'annotator_id', name=op.f('pk_annotator_stats'))
    )
    op.create_table('project_models',
    sa.Column('project_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('question', sa.String(length=200), nullable=False),
    sa.Column('prior', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.Column('method', sa.String(length=50), nullable=False),
    sa.Column('n_answers', sa.Integer(), server_default='0', nullable=False),
    sa.Column('fitted_at', sa.BigInteger(), nullable=True),
    sa.Column('busy_until', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_project_models_project_id_projects'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', 'question', name=op.f('pk_project_models'))
    )
    op.create_table('reviews',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('project_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('item_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('reviewer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('value', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.Column('comment', sa.Text(), server_default='', nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.CheckConstraint("action IN ('accept', 'reject', 'fix')", name=op.f('ck_reviews_action')),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_reviews_item_id_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_reviews_project_id_projects'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reviewer_id'], ['users.id'], name=op.f('fk_reviews_reviewer_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reviews'))
    )
    op.create_index('ix_reviews_item_id', 'reviews', ['item_id', 'id'], unique=False)
    op.create_index('ix_reviews_project_id', 'reviews', ['project_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_reviews_project_id', table_name='reviews')
    op.drop_index('ix_reviews_item_id', table_name='reviews')
    op.drop_table('reviews')
    op.drop_table('project_models')
    op.drop_table('annotator_stats')
    op.drop_table('annotator_skills')
