"""initial schema

Revision ID: 7184d67f6c03
Revises: 
Create Date: 2026-11-26 06:12:54.066726
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import services.db.models  # noqa: F401 - custom column types


revision = '7184d67f6c03'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('servers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('address', sa.String(length=255), nullable=False),
    sa.Column('created_at', services.db.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_servers')),
    sa.UniqueConstraint('name', name=op.f('uq_servers_name'))
    )
    op.create_table('apps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('repo_url', sa.String(length=2048), nullable=False),
    sa.Column('branch', sa.String(length=255), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('health_path', sa.String(length=1024), nullable=False),
    sa.Column('dockerfile', sa.String(length=1024), nullable=False),
    sa.Column('context_dir', sa.String(length=1024), nullable=False),
    sa.Column('env', sa.JSON(), nullable=False),
    sa.Column('server_id', sa.Integer(), nullable=False),
    sa.Column('health_timeout_seconds', sa.Integer(), nullable=False),
    sa.Column('build_timeout_seconds', sa.Integer(), nullable=False),
    sa.Column('stop_grace_seconds', sa.Integer(), nullable=False),
    sa.Column('health_check_mode', sa.String(length=16), nullable=False),
    sa.Column('health_status_min', sa.Integer(), nullable=False),
    sa.Column('health_status_max', sa.Integer(), nullable=False),
    sa.Column('health_interval_ms', sa.Integer(), nullable=False),
    sa.Column('health_probe_timeout_ms', sa.Integer(), nullable=False),
    sa.Column('healthy_threshold', sa.Integer(), nullable=False),
    sa.Column('stop_signal', sa.String(length=16), nullable=False),
    sa.Column('drain_seconds', sa.Integer(), nullable=False),
    sa.Column('domains', sa.JSON(), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('current_deployment_id', sa.Integer(), nullable=True),
    sa.Column('created_at', services.db.models.UTCDateTime(), nullable=False),
    sa.Column('updated_at', services.db.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['server_id'], ['servers.id'], name=op.f('fk_apps_server_id_servers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_apps')),
    sa.UniqueConstraint('name', name=op.f('uq_apps_name'))
    )
    op.create_table('deployments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('app_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('phase', sa.String(length=16), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('rebuild', sa.Boolean(), nullable=False),
    sa.Column('requested_commit_sha', sa.String(length=40), nullable=False),
    sa.Column('source_deployment_id', sa.Integer(), nullable=True),
    sa.Column('commit_sha', sa.String(length=40), nullable=False),
    sa.Column('commit_message', sa.Text(), nullable=False),
    sa.Column('image', sa.String(length=255), nullable=False),
    sa.Column('image_id', sa.String(length=255), nullable=False),
    sa.Column('build_skipped', sa.Boolean(), nullable=False),
    sa.Column('build_seconds', sa.Double(), nullable=False),
    sa.Column('deploy_seconds', sa.Double(), nullable=False),
    sa.Column('phase_timings', sa.JSON(), nullable=False),
    sa.Column('failure_phase', sa.String(length=16), nullable=False),
    sa.Column('failure_reason', sa.Text(), nullable=False),
    sa.Column('container_id', sa.String(length=128), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('release', sa.JSON(), nullable=True),
    sa.Column('superseded_by_id', sa.Integer(), nullable=True),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('created_at', services.db.models.UTCDateTime(), nullable=False),
    sa.Column('started_at', services.db.models.UTCDateTime(), nullable=True),
    sa.Column('finished_at', services.db.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_deployments_app_id_apps'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deployments'))
    )
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.create_index('ix_deployments_app_id_id', ['app_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_deployments_state'), ['state'], unique=False)

    op.create_table('deployment_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('deployment_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('created_at', services.db.models.UTCDateTime(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('phase', sa.String(length=16), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('step_current', sa.Integer(), nullable=False),
    sa.Column('step_total', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['deployment_id'], ['deployments.id'], name=op.f('fk_deployment_events_deployment_id_deployments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deployment_events')),
    sa.UniqueConstraint('deployment_id', 'seq', name=op.f('uq_deployment_events_deployment_id'))
    )
    op.create_table('jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('deployment_id', sa.Integer(), nullable=False),
    sa.Column('app_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('claimed_by', sa.String(length=64), nullable=False),
    sa.Column('lease_until', services.db.models.UTCDateTime(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', services.db.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_jobs_app_id_apps'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['deployment_id'], ['deployments.id'], name=op.f('fk_jobs_deployment_id_deployments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs')),
    sa.UniqueConstraint('deployment_id', name=op.f('uq_jobs_deployment_id'))
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_jobs_app_id'), ['app_id'], unique=False)
        batch_op.create_index('ix_jobs_status_id', ['status', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_status_id')
        batch_op.drop_index(batch_op.f('ix_jobs_app_id'))

    op.drop_table('jobs')
    op.drop_table('deployment_events')
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deployments_state'))
        batch_op.drop_index('ix_deployments_app_id_id')

    op.drop_table('deployments')
    op.drop_table('apps')
    op.drop_table('servers')
