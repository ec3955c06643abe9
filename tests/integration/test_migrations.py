"""Migrations as a step of their own (`serversinc-api db upgrade`), on SQLite and PostgreSQL.

An old database keeps its rows through the upgrade (the added NOT NULL columns need server defaults
for that, which an empty test database never shows), and several replicas upgrading one empty
PostgreSQL database at once all succeed: the advisory lock in services.db.schema lets one migrate
and the others find nothing left to do.
"""

from __future__ import annotations

import subprocess
from datetime import datetime

import sqlalchemy as sa

from services.db import schema
from services.db.session import make_engine
from tests.support.api_process import API, api_env, db_command

# 0003_trust: servers, apps, deployments, events and jobs exist; 0004-0006 add tables and columns.
OLD_REVISION = "e60f07b2543b"


def filler(column: sa.Column):
    """A value for a NOT NULL column of a reflected table, by its type."""
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, sa.Integer):
        return 0
    if isinstance(kind, (sa.Float, sa.Numeric)):
        return 0.0
    if isinstance(kind, sa.JSON):
        return {}
    if isinstance(kind, sa.DateTime):
        return datetime(2026, 1, 2, 3, 4, 5)  # the columns hold naive UTC (models.UTCDateTime)
    return "x"


def insert(connection, table: sa.Table, **values) -> int:
    """Inserts one row with `values` and a filler for every other required column; returns its id."""
    row = {c.name: filler(c) for c in table.columns
           if not c.nullable and c.server_default is None and not c.primary_key}
    row.update(values)
    return connection.execute(table.insert().values(**row).returning(table.c.id)).scalar_one()


def old_database_with_rows(url: str) -> dict[str, int]:
    """A database at OLD_REVISION with one row in each of its tables (written as raw rows through
    the reflected old schema, not through today's models)."""
    engine = make_engine(url)
    try:
        assert schema.upgrade(engine, OLD_REVISION) == OLD_REVISION
        meta = sa.MetaData()
        meta.reflect(engine)
        t = meta.tables
        with engine.begin() as c:
            server = insert(c, t["servers"], name="edge", address="10.0.0.1:50052")
            app = insert(c, t["apps"], name="web", repo_url="https://example.com/web.git", branch="main",
                         server_id=server, env={"MODE": "prod"}, port=8080)
            deployment = insert(c, t["deployments"], app_id=app, state="SUCCEEDED", phase="DONE",
                                commit_sha="a" * 40, commit_message="first", rebuild=True)
            insert(c, t["deployment_events"], deployment_id=deployment, seq=1, message="built")
            insert(c, t["jobs"], deployment_id=deployment, app_id=app, status="DONE", attempts=1)
            insert(c, t["api_tokens"], name="ci", token_hash="f" * 64)
        return {"server": server, "app": app, "deployment": deployment}
    finally:
        engine.dispose()


def test_an_old_database_keeps_its_rows_through_db_upgrade(tmp_path, database_url):
    ids = old_database_with_rows(database_url)

    done = db_command(tmp_path, "upgrade", database_url)

    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == schema.head(), done.stdout
    engine = make_engine(database_url)
    try:
        assert schema.current(engine) == schema.head()
        with engine.connect() as c:
            app = c.execute(sa.text("SELECT name, env, notify_urls, secret_env FROM apps WHERE id = :id"),
                            {"id": ids["app"]}).one()
            dep = c.execute(sa.text("SELECT commit_message, before_commit_sha, rebuild FROM deployments"
                                    " WHERE id = :id"), {"id": ids["deployment"]}).one()
            counts = {name: c.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one()
                      for name in ("servers", "apps", "deployments", "deployment_events", "jobs", "api_tokens")}
    finally:
        engine.dispose()
    assert app.name == "web"
    # A JSON column reads back as text on SQLite through raw SQL, as a dict on PostgreSQL.
    assert app.env in ({"MODE": "prod"}, '{"MODE": "prod"}')
    assert app.notify_urls in ([], "[]") and app.secret_env == ""  # the new columns' defaults
    assert (dep.commit_message, dep.before_commit_sha, bool(dep.rebuild)) == ("first", "", True)
    assert counts == dict.fromkeys(counts, 1)

    again = db_command(tmp_path, "current", database_url)
    assert again.returncode == 0 and again.stdout.split()[0] == schema.head(), again.stdout + again.stderr


def test_four_replicas_upgrading_one_empty_postgres_database_at_once_all_succeed(tmp_path, postgres_url):
    procs = [subprocess.Popen([str(API), "db", "upgrade"], env=api_env(tmp_path / f"r{i}", postgres_url),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(4)]
    results = [(p.wait(120), *p.communicate()) for p in procs]

    for returncode, out, err in results:
        assert returncode == 0, err
        assert out.split()[0] == schema.head(), out
    engine = make_engine(postgres_url)
    try:
        assert schema.current(engine) == schema.head()
        with engine.connect() as c:
            versions = c.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    finally:
        engine.dispose()
    assert versions == [schema.head()]


def test_db_upgrade_on_an_unreachable_database_says_so_in_one_line(tmp_path):
    from tests.support.api_process import free_address

    url = f"postgresql+psycopg://serversinc:not-to-be-printed@{free_address()}/serversinc"  # nothing listens

    done = db_command(tmp_path, "upgrade", url)

    assert done.returncode == 1
    assert done.stderr.startswith("serversinc-api db upgrade: cannot use the database:"), done.stderr
    assert "Traceback" not in done.stderr and "not-to-be-printed" not in done.stderr + done.stdout
