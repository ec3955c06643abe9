"""One-off command runs (serversinc run): what ran in a fresh container of the serving release,
and how it ended

Revision ID: b1d2e3f40011
Revises: a0c4d5e60010
Create Date: 2026-12-01 21:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.db.models import UTCDateTime


revision = 'b1d2e3f40011'
down_revision = 'a0c4d5e60010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('app_id', sa.Integer(), nullable=False),
        sa.Column('deployment_id', sa.Integer(), nullable=False),
        sa.Column('command', sa.JSON(), nullable=False),
        sa.Column('detach', sa.Boolean(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('exit_code', sa.Integer(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('container_id', sa.String(length=128), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('ended_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_runs_app_id_apps'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_runs')),
    )
    op.create_index('ix_runs_app_id_id', 'runs', ['app_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_runs_app_id_id', table_name='runs')
    op.drop_table('runs')
