"""Fixtures for control-plane unit tests: a fresh SQLite database per test, apps in it, a clock the test moves."""

from __future__ import annotations

import pytest

from services.db.models import App, Server
from services.db.session import Database
from tests.unit.services.fakes import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'serversinc.db'}")
    database.create_schema()
    with database.session() as s:
        s.add(Server(name="local", address="127.0.0.1:1"))
    yield database
    database.dispose()


@pytest.fixture
def make_app(db):
    """Adds an app row on the local server and returns its id."""

    def make(name: str = "web", **fields) -> int:
        with db.session() as s:
            server = s.query(Server).filter_by(name="local").one()
            app = App(name=name, repo_url=f"https://git.example/{name}.git", branch="main", port=8080,
                      health_path="/", dockerfile="Dockerfile", context_dir=".", server=server, **fields)
            s.add(app)
            s.flush()
            return app.id

    return make
