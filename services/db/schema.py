"""Schema management: Alembic migrations under services/db/migrations own every table.

`upgrade(engine)` brings any database to the newest revision; the API runs it at every start and
`serversinc-api db upgrade` runs it as a step of its own. On PostgreSQL the whole upgrade is one
transaction that first takes a transaction-scoped advisory lock: replicas starting at once queue on
it, the first one migrates, and each later one then reads the committed version and has nothing to do
(without it, two would both see an empty database and both try to create the tables). On SQLite the
writer engine's BEGIN IMMEDIATE already serialises upgrades. `revision(...)` is what a developer runs
after changing the models (see `python -m services.db.schema --help`).
"""

from __future__ import annotations

import argparse
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine

from services.db import locks

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config(connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Migrates to `revision` (default the newest) and returns the revision the database is at."""
    with engine.connect() as connection, _sqlite_foreign_keys_off(connection), connection.begin():
        locks.hold(connection, locks.Lock.SCHEMA)
        command.upgrade(_config(connection), revision)
        _check_foreign_keys(connection)
        return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def _sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """SQLite alters a table in batch mode by copying it and dropping the original; with foreign keys
    on, that DROP cascades: recreating `apps` deleted every deployment, event and job of an existing
    database. So migrations run with them off (the pragma only takes effect outside a transaction,
    hence on the raw connection before BEGIN), checked before commit, and on again after."""
    if connection.dialect.name != "sqlite":
        yield
        return
    raw = connection.connection.dbapi_connection
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        raw.execute("PRAGMA foreign_keys=ON")


def _check_foreign_keys(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"migration left rows pointing at missing rows: {sorted({r[0] for r in broken})}")


def current(engine: Engine) -> str | None:
    """The revision the database is at (None: no schema yet)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head() -> str:
    """The newest revision the code knows."""
    return ScriptDirectory.from_config(_config(None)).get_current_head()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Make a new migration from the models (autogenerate).")
    parser.add_argument("message")
    args = parser.parse_args(argv)
    # Autogenerate against a scratch SQLite database at the newest revision.
    engine = create_engine("sqlite://")
    upgrade(engine)
    with engine.begin() as connection:
        command.revision(_config(connection), message=args.message, autogenerate=True)


if __name__ == "__main__":
    main()
