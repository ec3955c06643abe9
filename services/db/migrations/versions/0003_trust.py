"""trust: API tokens, server enrollment (join tokens, encrypted agent secrets), encrypted secret env

Revision ID: e60f07b2543b
Revises: 6740f2fb7204
Create Date: 2026-11-26 06:19:12.845946
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import services.db.models  # noqa: F401 - custom column types


revision = 'e60f07b2543b'
down_revision = '6740f2fb7204'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', services.db.models.UTCDateTime(), nullable=False),
    sa.Column('last_used_at', services.db.models.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('name', name=op.f('uq_api_tokens_name')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('secret_env', sa.Text(), nullable=False, server_default=''))
        batch_op.alter_column('webhook_secret',
               existing_type=sa.VARCHAR(length=255),
               type_=sa.Text(),
               existing_nullable=False,
               existing_server_default=sa.text("('')"))

    with op.batch_alter_table('servers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agent_secret', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('join_token_hash', sa.String(length=64), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('join_token_expires_at', services.db.models.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('join_token_used_at', services.db.models.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('registered_at', services.db.models.UTCDateTime(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('servers', schema=None) as batch_op:
        batch_op.drop_column('registered_at')
        batch_op.drop_column('join_token_used_at')
        batch_op.drop_column('join_token_expires_at')
        batch_op.drop_column('join_token_hash')
        batch_op.drop_column('agent_secret')

    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.alter_column('webhook_secret',
               existing_type=sa.Text(),
               type_=sa.VARCHAR(length=255),
               existing_nullable=False,
               existing_server_default=sa.text("('')"))
        batch_op.drop_column('secret_env')

    op.drop_table('api_tokens')
