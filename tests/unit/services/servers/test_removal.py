"""Removing a server: refused, naming the apps, while any app runs there (first or later in its
servers); an unused one goes."""

from __future__ import annotations

import pytest

from services.apps import repository as apps_repo
from services.core.errors import FailedPrecondition, ServerNotFound
from services.db.models import App, AppServer, Server
from services.servers.removal import delete_server


@pytest.fixture
def edge(db):
    with db.session() as s:
        s.add(Server(name="edge", address="127.0.0.1:2"))


def servers(db, app_id, *names):
    with db.session() as s:
        apps_repo.set_app_servers(s, s.get(App, app_id), [s.query(Server).filter_by(name=n).one() for n in names])


def test_a_server_an_app_runs_on_second_is_not_deleted(db, edge, make_app):
    servers(db, make_app("web"), "local", "edge")
    servers(db, make_app("api"), "local", "edge")
    with pytest.raises(FailedPrecondition) as refused:
        delete_server(db, "edge")
    assert refused.value.reason == "SERVER_IN_USE"
    assert "api, web" in refused.value.message and refused.value.metadata["apps"] == "api,web"
    with db.read() as s:
        assert s.query(Server).filter_by(name="edge").count() == 1


def test_an_unused_server_is_deleted_and_an_unknown_one_is_not_found(db, edge, make_app):
    app_id = make_app("web")
    servers(db, app_id, "local", "edge")
    servers(db, app_id, "local")
    delete_server(db, "edge")
    with db.read() as s:
        assert s.query(Server).filter_by(name="edge").count() == 0
        assert [r.server_id for r in s.query(AppServer)] == [s.query(Server).filter_by(name="local").one().id]
    with pytest.raises(ServerNotFound):
        delete_server(db, "edge")


def test_an_apps_own_server_without_app_servers_rows_is_in_use(db, make_app):
    make_app("web")  # apps.server_id only, as rows written before app_servers
    with pytest.raises(FailedPrecondition, match="still runs web"):
        delete_server(db, "local")
