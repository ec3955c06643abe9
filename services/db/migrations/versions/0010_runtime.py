"""How an app's containers run: memory and CPU limits, named volumes, the release command, and
how many successful releases keep their image for rollback

Revision ID: a0c4d5e60010
Revises: 9b2c3d4e0009
Create Date: 2026-12-01 20:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = 'a0c4d5e60010'
down_revision = '9b2c3d4e0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('memory_limit_bytes', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('cpu_limit_millis', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('volumes', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('exclusive_volumes', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('release_command', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('retain_releases', sa.Integer(), nullable=False, server_default='5'))


def downgrade() -> None:
    with op.batch_alter_table('apps', schema=None) as batch_op:
        for column in ('retain_releases', 'release_command', 'exclusive_volumes', 'volumes',
                       'cpu_limit_millis', 'memory_limit_bytes'):
            batch_op.drop_column(column)
