"""Schema management: Alembic migrations under services/db/migrations own every table.

`upgrade(engine)` brings any database to the newest revision at start-up; `revision(...)` is what a
developer runs after changing the models (see `python -m services.db.schema --help`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config(connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as connection:
        command.upgrade(_config(connection), revision)


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
