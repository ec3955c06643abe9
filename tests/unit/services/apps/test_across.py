"""services.apps.across without agents: the rules a real engine makes hard to provoke (a server
that fails only to read its logs, a release kept on one server, a certificate one server did not
take, maintenance switched back)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from services.agents.client import LogsNotKept
from services.agents.port import AgentError, LogEntry
from services.apps import across
from services.core.errors import NotFound, ServerUnreachable

T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)


class Agent:
    def __init__(self, lines=(), fails: Exception | None = None):
        self.lines, self.fails, self.maintenance = list(lines), fails, []

    async def stream_logs(self, app, **kw):
        for line in self.lines:
            yield line
        if self.fails is not None:
            raise self.fails

    def upload_certificate(self, app, domain, cert, key):
        if self.fails is not None:
            raise self.fails
        self.uploaded = (domain, cert, key)
        return SimpleNamespace(domain=domain)

    def list_certificates(self, app):
        return ["report"]

    def set_maintenance(self, app, enabled, message):
        if self.fails is not None:
            raise self.fails
        self.maintenance.append(enabled)


def parts(agents: dict[str, Agent]):
    app = SimpleNamespace(name="web", maintenance=False, maintenance_message="")
    apps = SimpleNamespace(get=lambda name: app, runs_on=lambda a: list(agents),
                           record_maintenance=lambda *a: pytest.fail("stored though a server failed"))
    return apps, SimpleNamespace(for_server=agents.__getitem__)


def read(apps, directory, **kw):
    async def collect():
        got = []
        try:
            async for entry in across.logs(apps, directory, "web", follow=False, tail=10, **kw):
                got.append((entry.server, entry.text))
        except Exception as err:
            return got, err
        return got, None
    return asyncio.run(collect())


def line(seconds: int, text: str) -> LogEntry:
    return LogEntry(time=T0 + timedelta(seconds=seconds), text=text, container_id="c")


def test_lines_of_every_server_in_time_order_then_the_server_that_failed_is_named():
    apps, directory = parts({"a": Agent([line(1, "a1"), line(3, "a3")]),
                             "b": Agent([line(2, "b2")], fails=AgentError("connection refused"))})
    got, err = read(apps, directory)
    assert got == [("a", "a1"), ("b", "b2"), ("a", "a3")]
    assert isinstance(err, ServerUnreachable) and "server 'b'" in str(err)


def test_a_release_kept_on_one_server_is_read_there_and_not_found_only_when_kept_nowhere():
    apps, directory = parts({"a": Agent(fails=LogsNotKept("no output kept")), "b": Agent([line(1, "b1")])})
    assert read(apps, directory, deployment_id=7) == ([("b", "b1")], None)
    apps, directory = parts({"a": Agent(fails=LogsNotKept("no output kept")), "b": Agent(fails=LogsNotKept("none"))})
    got, err = read(apps, directory, deployment_id=7)
    assert got == [] and isinstance(err, NotFound) and err.reason == "LOGS_NOT_KEPT"
    got, err = read(apps, directory, server="c")
    assert isinstance(err, NotFound) and "does not run on server 'c'" in str(err)


def test_maintenance_that_fails_on_one_server_is_switched_back_on_the_others():
    a, b = Agent(), Agent(fails=AgentError("deadline exceeded"))
    apps, directory = parts({"a": a, "b": b})
    with pytest.raises(ServerUnreachable, match="server 'b'.*switched back on 'a'"):
        across.set_maintenance(apps, directory, "web", True, "back soon")
    assert a.maintenance == [True, False]


def test_a_certificate_not_taken_by_one_server_names_it_and_the_servers_that_serve_it():
    a, b = Agent(), Agent(fails=AgentError("connection refused"))
    apps, directory = parts({"a": a, "b": b})
    stored = []
    with pytest.raises(ServerUnreachable, match="server 'b'.*serves on 'a'"):
        across.upload_certificate(apps, directory, apps.get("web"), "web.example", b"CERT", b"KEY", stored.append)
    assert a.uploaded == ("web.example", b"CERT", b"KEY") and stored == [["report"]]
