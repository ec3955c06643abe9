"""Named locks that every control-plane replica sharing one database respects.

On PostgreSQL a transaction-scoped advisory lock: held until the caller's transaction ends, and
released by the server if the replica dies, so a SIGKILL never leaves it held. On SQLite there is
one control-plane process and the write transaction already excludes every other writer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session


class Lock(IntEnum):
    """The key of each lock (one key space of our own: PostgreSQL shares it with nothing else)."""

    SCHEMA = 0x5E5C0001      # migrations: one replica upgrades, the others wait, then find it done
    BOOTSTRAP = 0x5E5C0002   # start-up rows and files (the local server, its join token)


def hold(db: Session | Connection, lock: Lock) -> None:
    """Waits for `lock` and holds it until the caller's transaction (of this session or
    connection) commits or rolls back."""
    dialect = db.dialect if isinstance(db, Connection) else db.bind.dialect
    if dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": int(lock)})


@contextmanager
def held(engine: Engine, lock: Lock) -> Iterator[None]:
    """Holds `lock` around a block that makes several transactions of its own (the start-up
    steps of a replica), on a connection of its own. On SQLite, where one process owns the
    database, it holds nothing (it would block that process's own writers)."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as connection, connection.begin():
        hold(connection, lock)
        yield


# The key space of per-app claim locks: (APP_CLAIMS, app id), two 32-bit keys (PostgreSQL keeps
# two-key and one-key advisory locks apart, so these never meet `Lock`); taken by the function
# serversinc_claim_job (migration 0014).
APP_CLAIMS = 0x5E5C
