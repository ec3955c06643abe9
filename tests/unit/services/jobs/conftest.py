"""The queue's tests run on SQLite and on PostgreSQL: each database has a claim of its own
(services.jobs.repository), so each is held to the same rules."""

from __future__ import annotations

import pytest

from services.db.models import Server
from services.db.session import Database


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'serversinc.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    database = Database(url)
    database.create_schema()
    with database.session() as s:
        s.add(Server(name="local", address="127.0.0.1:1"))
    yield database
    database.dispose()
