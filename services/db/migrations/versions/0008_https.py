"""HTTPS: apps' redirect and HSTS settings, and the certificate read model relayed from agents

Revision ID: 8e1f0c2a0008
Revises: 70f139db3475
Create Date: 2026-12-01 17:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import services.db.models  # noqa: F401 - custom column types


revision = '8e1f0c2a0008'
down_revision = '70f139db3475'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('https_redirect', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('hsts_max_age_seconds', sa.Integer(), nullable=False, server_default='0'))
    op.create_table('app_certificates',
    sa.Column('app_id', sa.Integer(), nullable=False),
    sa.Column('domain', sa.String(length=253), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('issuer', sa.Text(), nullable=False),
    sa.Column('serial', sa.String(length=64), nullable=False),
    sa.Column('not_before', services.db.models.UTCDateTime(), nullable=True),
    sa.Column('not_after', services.db.models.UTCDateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('next_attempt_at', services.db.models.UTCDateTime(), nullable=True),
    sa.Column('uploaded', sa.Boolean(), nullable=False),
    sa.Column('observed_at', services.db.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_app_certificates_app_id_apps'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('app_id', 'domain', name=op.f('pk_app_certificates'))
    )


def downgrade() -> None:
    op.drop_table('app_certificates')
    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.drop_column('hsts_max_age_seconds')
        batch_op.drop_column('https_redirect')
