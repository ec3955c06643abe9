"""servers.last_seen_at: when the control plane last reached each server's agent, so an offline
server shows how long it has been gone

Revision ID: c2e3f4a50012
Revises: b1d2e3f40011
Create Date: 2026-12-02 02:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.db.models import UTCDateTime


revision = 'c2e3f4a50012'
down_revision = 'b1d2e3f40011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('servers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_seen_at', UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('servers', schema=None) as batch_op:
        batch_op.drop_column('last_seen_at')
