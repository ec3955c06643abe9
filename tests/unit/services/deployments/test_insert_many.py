"""The create path's multi-row insert (a group commit's deployments in one statement, their other
columns made from the values rather than read back) stores each deployment as a one-row insert
would, on SQLite and on PostgreSQL, and hands back the ids in the order of the values."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from services.db.models import App, Deployment, Server
from services.db.session import Database
from services.deployments import repository as repo

AT = datetime(2026, 12, 3, 8, 30, 1, 234567, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    url = (f"sqlite:///{tmp_path / 'serversinc.db'}" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    database = Database(url)
    database.create_schema()
    yield database
    database.dispose()


def deployments(app_ids: list[int]) -> list[dict]:
    """Values as the create path gives them, with what an array literal or JSON could garble."""
    awkward = 'it\'s "quoted", {braced}, back\\slash, NULL, ünïcode\n2nd line'
    return [
        dict(app_id=app_ids[0], state="QUEUED", phase="QUEUED", trigger="WEBHOOK", rebuild=True,
             requested_commit_sha="a" * 40, created_at=AT, request_id=None, commit_message=awkward),
        dict(app_id=app_ids[1], state="SUPERSEDED", phase="QUEUED", trigger="API", rebuild=False,
             created_at=AT + timedelta(seconds=1), request_id="req-1", superseded_by_id=7,
             failure_reason=awkward, finished_at=AT, source_deployment_id=3),
        dict(app_id=app_ids[2], state="QUEUED", phase="QUEUED", trigger="ROLLBACK", created_at=AT,
             release={"image": "x", "env": {"A": "1,2"}, "ports": [1, None]},
             phase_timings=[{"phase": "BUILD", "start": AT.isoformat(), "end": None}], pusher="ann"),
    ]


def stored(database: Database, ids: list[int]) -> list[dict]:
    with database.read() as s:
        rows = {d.id: d for d in s.scalars(select(Deployment).where(Deployment.id.in_(ids)))}
        return [{c.key: getattr(rows[i], c.key) for c in Deployment.__table__.c if not c.primary_key}
                for i in ids]


def test_a_group_is_stored_as_one_row_inserts_would_store_it(db):
    with db.session() as s:
        server = Server(name="local", address="127.0.0.1:1")
        apps = [App(name=f"app{i}", repo_url="https://git.example/a.git", branch="main", port=8080,
                    health_path="/", dockerfile="Dockerfile", context_dir=".", server=server) for i in range(3)]
        s.add_all(apps)
        s.flush()
        app_ids = [a.id for a in apps]

    alone = []
    for values in deployments(app_ids):
        with db.session() as s:
            alone.append(repo.insert_many_returning(s, [values])[0].id)
    group_values = [dict(v, request_id=v.get("request_id") and v["request_id"] + "-group")
                    for v in deployments(app_ids)]
    with db.session() as s:
        returned = repo.insert_many_returning(s, group_values)
    group = [d.id for d in returned]

    assert group == sorted(group) and min(group) > max(alone)
    assert [d.app_id for d in returned] == app_ids  # each id is its own values' row
    as_group = stored(db, group)
    for row in as_group:
        if row["request_id"]:
            row["request_id"] = row["request_id"].removesuffix("-group")
    assert as_group == stored(db, alone)
    assert as_group[0]["commit_message"].startswith("it's \"quoted\"") and as_group[2]["release"]["ports"] == [1, None]
    # What the caller got back is what was stored.
    returned_columns = [{c.key: getattr(d, c.key) for c in Deployment.__table__.c if not c.primary_key}
                        for d in returned]
    assert [dict(r, created_at=r["created_at"].astimezone(timezone.utc)) for r in stored(db, group)] == [
        dict(r, created_at=r["created_at"].astimezone(timezone.utc)) for r in returned_columns]
