"""A pooled PostgreSQL connection the server dropped (a restart, an idle timeout) is replaced
before use: the next unit of work succeeds instead of failing once."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from services.db import session as db_session
from services.db.session import Database


def _drop_every_other_connection(url: str) -> int:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            return len(c.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")).all())
    finally:
        admin.dispose()


def test_an_idle_connection_the_server_dropped_is_replaced_before_use(postgres_url, monkeypatch):
    monkeypatch.setattr(db_session, "PING_AFTER_IDLE_SECONDS", 0.0)  # every connection counts as idle
    db = Database(postgres_url)
    try:
        with db.session() as s:
            first = s.scalar(text("SELECT pg_backend_pid()"))
        assert _drop_every_other_connection(postgres_url) >= 1
        with db.session() as s:  # the pooled connection is dead: the ping finds it, a new one serves
            assert s.scalar(text("SELECT pg_backend_pid()")) != first
    finally:
        db.dispose()
