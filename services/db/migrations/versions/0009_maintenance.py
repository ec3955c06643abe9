"""Maintenance mode: an app's maintenance flag and page message, as its server applies them

Revision ID: 9b2c3d4e0009
Revises: 8e1f0c2a0008
Create Date: 2026-12-01 17:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '9b2c3d4e0009'
down_revision = '8e1f0c2a0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('maintenance', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('maintenance_message', sa.Text(), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.drop_column('maintenance_message')
        batch_op.drop_column('maintenance')
