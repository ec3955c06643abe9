"""Alembic environment: runs migrations on the connection the control plane hands over.

The control plane calls `services.db.schema.upgrade(engine)` at start-up; there is no alembic.ini.
"""

from __future__ import annotations

from alembic import context

from services.db.models import Base

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
