"""Many servers: an app's servers in rollout order and its replica count, each server's outcome
of a deployment and the digest it ran, registries (password encrypted), and each agent's
certificate serial and expiry (enrollment and rotation)

Revision ID: d3f4a5b60013
Revises: c2e3f4a50012
Create Date: 2026-12-02 04:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.db.models import UTCDateTime


revision = 'd3f4a5b60013'
down_revision = 'c2e3f4a50012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('replicas', sa.Integer(), nullable=False, server_default='1'))
    with op.batch_alter_table('servers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cert_serial', sa.String(length=64), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('cert_not_after', UTCDateTime(), nullable=True))
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('image_digest', sa.String(length=255), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('server_outcomes', sa.JSON(), nullable=False, server_default='[]'))
    op.create_table(
        'app_servers',
        sa.Column('app_id', sa.Integer(), nullable=False),
        sa.Column('server_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_app_servers_app_id_apps'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['server_id'], ['servers.id'], name=op.f('fk_app_servers_server_id_servers')),
        sa.PrimaryKeyConstraint('app_id', 'server_id', name=op.f('pk_app_servers')),
    )
    # Every existing app runs on its one server.
    op.execute("INSERT INTO app_servers (app_id, server_id, position) SELECT id, server_id, 0 FROM apps")
    op.create_table(
        'registries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('address', sa.String(length=255), nullable=False),
        sa.Column('username', sa.String(length=255), nullable=False),
        sa.Column('password', sa.Text(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_registries')),
        sa.UniqueConstraint('address', name=op.f('uq_registries_address')),
    )


def downgrade() -> None:
    op.drop_table('registries')
    op.drop_table('app_servers')
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.drop_column('server_outcomes')
        batch_op.drop_column('image_digest')
    with op.batch_alter_table('servers', schema=None) as batch_op:
        batch_op.drop_column('cert_not_after')
        batch_op.drop_column('cert_serial')
    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.drop_column('replicas')
