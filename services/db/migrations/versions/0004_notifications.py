"""notifications: per-app notify URLs and secret; the outbox of outgoing deploy notifications

Revision ID: cf532e46e56f
Revises: e60f07b2543b
Create Date: 2026-11-26 06:48:46.184249
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import services.db.models  # noqa: F401 - custom column types


revision = 'cf532e46e56f'
down_revision = 'e60f07b2543b'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('deployment_id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', services.db.models.UTCDateTime(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('created_at', services.db.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['deployment_id'], ['deployments.id'], name=op.f('fk_notifications_deployment_id_deployments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_status_next', ['status', 'next_attempt_at'], unique=False)

    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notify_urls', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('notification_secret', sa.Text(), nullable=False, server_default=''))



def downgrade() -> None:
    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.drop_column('notification_secret')
        batch_op.drop_column('notify_urls')

    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_status_next')

    op.drop_table('notifications')
