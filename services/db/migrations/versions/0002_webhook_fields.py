"""webhook fields: per-app webhook secret; delivery, pusher and idempotency key on deployments

Revision ID: 6740f2fb7204
Revises: 7184d67f6c03
Create Date: 2026-11-26 06:16:37.858610
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import services.db.models  # noqa: F401 - custom column types


revision = '6740f2fb7204'
down_revision = '7184d67f6c03'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('webhook_secret', sa.String(length=255), nullable=False, server_default=''))

    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('delivery_id', sa.String(length=255), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('pusher', sa.String(length=255), nullable=False, server_default=''))
        batch_op.create_unique_constraint(batch_op.f('uq_deployments_request_id'), ['request_id'])



def downgrade() -> None:
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_deployments_request_id'), type_='unique')
        batch_op.drop_column('pusher')
        batch_op.drop_column('delivery_id')
        batch_op.drop_column('request_id')

    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.drop_column('webhook_secret')

