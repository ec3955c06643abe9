"""The engine and session factory. SQLite runs in WAL mode with immediate write transactions."""

from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event, exc, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from services.db.fair_lock import FairRLock


# Connections one process may hold on PostgreSQL: services.api.server.WORKERS (32) unary API threads
# + Settings.workers (4 by default) deploy workers = 36 steady, up to 50 at a peak. Two replicas
# stay within PostgreSQL's default max_connections (100) only when not both at a peak; raise the
# server's max_connections with the number of replicas (docker-compose.yml sets 200).
PG_POOL_SIZE = 36
PG_MAX_OVERFLOW = 14


def make_engine(url: str, *, writer: bool = True) -> Engine:
    """A writer engine opens SQLite transactions as IMMEDIATE; a reader engine never takes the write lock."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # Let SQLAlchemy, not the driver, open transactions; then open them as IMMEDIATE so
            # two writers never deadlock upgrading a read lock.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

        return engine
    # PostgreSQL: one pooled connection per thread that may hold a session at once (the API's unary
    # threads and the deploy workers), a few more for the background loops and bursts, and a ping on
    # checkout so a server restart or a dropped connection costs a retry, not a failed call.
    engine = create_engine(
        url, pool_size=PG_POOL_SIZE, max_overflow=PG_MAX_OVERFLOW, pool_timeout=30,
        # UTC sessions: the UTCDateTime columns hold naive UTC, which PostgreSQL compares with
        # now() / statement_timestamp() in the session's time zone.
        connect_args={"connect_timeout": 10, "options": "-c timezone=UTC"},
    )
    _ping_idle_connections(engine)
    return engine


# A pooled connection idle for longer than this is pinged before use.
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_idle_connections(engine: Engine) -> None:
    """pool_pre_ping, for connections that sat idle: a server restart or a dropped connection
    costs a fresh connection, not a failed call. A connection checked in less than a second ago is
    handed out as it is: the queue's workers take one for every claim and every finish, and a ping
    each time was a fifth of the database's work per job."""

    @event.listens_for(engine.pool, "checkin")
    def _idle_since(_dbapi_conn, record):
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _ping_if_idle(dbapi_conn, record, _proxy):
        idle_since = record.info.get("idle_since")
        if idle_since is not None and time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            with dbapi_conn.cursor() as cursor:
                cursor.execute("SELECT 1")
            dbapi_conn.rollback()
        except Exception as err:  # the connection is gone: the pool opens another and tries again
            raise exc.DisconnectionError(str(err)) from err


class Database:
    """Owns the engines; `session()` is one unit of work: commit at the end, roll back on error.

    `read()` is for queries only: on SQLite it never blocks behind (or blocks) the writers, which
    matters because watchers poll while the worker appends events.
    """

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite allows one writer at a time; when writers collide its busy handler sleeps with a
        # growing back-off (1 ms ... 100 ms), which made p99 latency under concurrent requests
        # hundreds of ms. Queueing this process's writers on a lock first costs nothing and keeps
        # them in order (a fair one: see services.db.fair_lock). (Other processes still meet the
        # busy handler: SQLite is single-process.)
        self._write_lock = FairRLock() if url.startswith("sqlite") else nullcontext()
        if url.startswith("sqlite"):
            self.read_engine = make_engine(url, writer=False)
            self._read_factory = sessionmaker(self.read_engine, expire_on_commit=False)
        else:
            self.read_engine = self.engine
            self._read_factory = self._factory

    def create_schema(self) -> None:
        """Brings the database to the newest migration (an empty one gets every table)."""
        from services.db.schema import upgrade

        upgrade(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._write_lock, self._factory() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def read(self) -> Iterator[Session]:
        # Closing (not rolling back) ends the read transaction and leaves the loaded objects
        # usable, detached, by the caller.
        with self._read_factory() as session:
            yield session

    @property
    def autocommits(self) -> bool:
        """True when `autocommit()` is available: PostgreSQL. (SQLite's writers need the write
        transaction that `session()` opens.)"""
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A connection whose every statement is its own transaction, for work that is one
        statement: it saves the BEGIN and COMMIT round trips a session costs (the queue's claim)."""
        if not self.autocommits:
            raise RuntimeError("autocommit connections are for PostgreSQL")
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            yield connection

    def now(self, session: Session) -> datetime:
        """The database's own clock, read in the caller's transaction (timezone-aware UTC).

        Every process that shares the database measures leases on this one clock, so two of them
        never disagree on whether a lease ran out (process wall clocks may drift apart or jump).
        """
        if session.bind.dialect.name == "sqlite":
            raw = session.scalar(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"))
            return datetime.fromisoformat(raw).replace(tzinfo=timezone.utc)
        return session.scalar(text("SELECT statement_timestamp()")).astimezone(timezone.utc)

    def dispose(self) -> None:
        self.engine.dispose()
        self.read_engine.dispose()
