"""Runs: one command in a fresh container of an app's serving release, on the app's server.

What runs is the serving deployment's release exactly: its image by id, its env with its secret
env (opened here, in the call to the agent only, as the deploy pipeline does; never stored open,
never logged), its limits and volumes. The `runs` row records what was asked and how it ended.

Truthfulness: a detached run's row says RUNNING until its server says otherwise; reading it
(`get`, `list`) asks the server, which answers with what Docker says of its container, or what
it kept when the container went. A row whose server knows nothing of the run any more is FAILED
with that reason, never a guessed exit code.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone

from common import runtime_rules
from common.rules import RuleError
from services.agents import client as agent_calls
from services.agents.port import AgentError, RunReport, RunSpec, UnknownRunOnAgent
from services.apps.service import AppService
from services.core import paging
from services.core.errors import AppNotDeployed, InvalidArgument, NotFound, ServerUnreachable
from services.db.models import App, Deployment, Run
from services.db.session import Database
from services.runs import repository as repo
from services.security.secretbox import SecretBox

log = logging.getLogger(__name__)

RUNNING, SUCCEEDED, FAILED = "RUNNING", "SUCCEEDED", "FAILED"
_NAME = re.compile(r"apps/(?P<app>[^/]+)/runs/(?P<id>[0-9]+)")


class RunNotFound(NotFound):
    reason = "RUN_NOT_FOUND"


@dataclass(frozen=True)
class RunView:
    id: int
    app: str
    command: list[str]
    state: str
    exit_code: int | None
    reason: str
    detach: bool
    deployment_id: int
    created_at: datetime
    ended_at: datetime | None

    @classmethod
    def of(cls, run: Run, app: str) -> "RunView":
        return cls(run.id, app, list(run.command), run.state, run.exit_code, run.reason, run.detach,
                   run.deployment_id, run.created_at, run.ended_at)


@dataclass(frozen=True)
class RunOutputView:
    lines: list[str]
    truncated: bool


def run_name(app: str, run_id: int) -> str:
    return f"apps/{app}/runs/{run_id}"


def parse_run_name(name: str, field: str = "name") -> tuple[str, int]:
    """ "apps/web/runs/7" -> ("web", 7)."""
    match = _NAME.fullmatch(name or "")
    if match is None or int(match["id"]) <= 0:
        raise InvalidArgument(f"{field}: {name!r} is not of the form apps/{{app}}/runs/{{run}}", field=field)
    return match["app"], int(match["id"])


def agent_run_id(run_id: int) -> str:
    """The run's id on its agent (unique per app there: run ids are unique everywhere)."""
    return f"run-{run_id}"


def _outcome(exit_code: int) -> str:
    return SUCCEEDED if exit_code == 0 else FAILED


class RunService:
    def __init__(self, db: Database, box: SecretBox, apps: AppService, agents) -> None:
        self.db, self.box, self.apps, self.agents = db, box, apps, agents

    # ---- running ----------------------------------------------------------------------------
    async def run(self, app_name: str, command: list[str], *, detach: bool,
                  timeout_seconds: int = 0) -> AsyncIterator[RunView | str]:
        """The run (RUNNING) first, its output lines (str), then the run in its final state.
        Detached: only the run, once its container started (or FAILED when it could not)."""
        try:
            argv = runtime_rules.run_command(command)
            timeout = runtime_rules.run_timeout(timeout_seconds)
        except RuleError as err:
            raise InvalidArgument(str(err), field="command") from None
        app, release, view = await asyncio.to_thread(self._begin, app_name, argv, detach)
        if not detach:
            yield view
        agent = await asyncio.to_thread(self.agents.for_server, app.server.name)
        spec = RunSpec(app=app.name, run_id=agent_run_id(view.id),
                       image=release.get("image_id") or release["image"], command=argv,
                       # The one place a run's secret env is opened: in the call to the agent.
                       env={**(release.get("env") or {}), **self.box.decrypt_map(release.get("secret_env") or "")},
                       memory_limit_bytes=release.get("memory_limit_bytes") or 0,
                       cpu_limit_millis=release.get("cpu_limit_millis") or 0,
                       volumes=[tuple(v) for v in release.get("volumes") or ()],
                       timeout_seconds=timeout, detach=detach)
        final = None
        try:
            async for update in agent_calls.run_command(agent, spec):
                if update.container_id:
                    view = await asyncio.to_thread(self._started, view, update.container_id)
                    if detach:
                        yield view
                        return
                elif update.exited:
                    final = (update.exit_code, update.reason)
                elif update.line is not None:
                    yield update.line
        except AgentError as err:
            final = (None, f"could not run it on server {app.server.name!r}: {err}")
        except asyncio.CancelledError:
            # The caller went away: the agent kills and removes the container (its call is
            # cancelled with ours); the row says so. Written at once: this task is ending.
            self._finish(view, FAILED, None, "cancelled: the caller went away; its container was "
                         "killed and removed")
            raise
        if final is None:
            final = (None, "the server ended the run without an exit status")
        code, reason = final
        state = _outcome(code) if code is not None else FAILED
        yield await asyncio.to_thread(self._finish, view, state, code, reason)

    def _begin(self, app_name: str, argv: list[str], detach: bool) -> tuple[App, dict, RunView]:
        app = self.apps.get(app_name)
        with self.db.session() as s:
            serving = s.get(Deployment, app.current_deployment_id) if app.current_deployment_id else None
            if serving is None or not serving.release:
                raise AppNotDeployed(f"app {app.name!r}: nothing serves yet: deploy first")
            run = repo.add(s, app_id=app.id, deployment_id=serving.id, command=argv, detach=detach,
                           state=RUNNING, reason="", container_id="")
            release = dict(serving.release)
            view = RunView.of(run, app.name)
        log.info("run %d of %s: %d argument(s), detach=%s", view.id, app.name, len(argv), detach)
        return app, release, view

    def _started(self, view: RunView, container_id: str) -> RunView:
        with self.db.session() as s:
            repo.started(s, view.id, container_id)
        return view

    def _finish(self, view: RunView, state: str, exit_code: int | None, reason: str,
                ended_at: datetime | None = None) -> RunView:
        with self.db.session() as s:
            run = repo.finish(s, view.id, state=state, exit_code=exit_code, reason=reason,
                              ended_at=ended_at or datetime.now(timezone.utc))
            return RunView.of(run, view.app) if run is not None else view

    # ---- reading ----------------------------------------------------------------------------
    def list(self, app_name: str, *, page_size: int, page_token: str) -> tuple[list[RunView], str]:
        app = self.apps.get(app_name)
        size = paging.page_size(page_size, default=50, maximum=500)
        before = paging.decode(page_token).get("before")
        with self.db.read() as s:
            runs = repo.page(s, app.id, before=before, limit=size + 1)
        more = len(runs) > size
        views = [self._refreshed(app, RunView.of(r, app.name)) for r in runs[:size]]
        return views, paging.encode({"before": views[-1].id}) if more else ""

    def get(self, name: str) -> RunView:
        app, view = self._row(name)
        return self._refreshed(app, view)

    def output(self, name: str) -> RunOutputView:
        app, view = self._row(name)
        try:
            report = self._report(app, view)
        except UnknownRunOnAgent as err:
            raise RunNotFound(f"the output of run {view.id} is no longer kept on server "
                              f"{app.server.name!r}: {err}") from None
        except AgentError as err:
            raise ServerUnreachable(f"could not read run {view.id} on server {app.server.name!r}: {err}") from None
        return RunOutputView(report.lines, report.truncated)

    def _row(self, name: str) -> tuple[App, RunView]:
        app_name, run_id = parse_run_name(name)
        app = self.apps.get(app_name)
        with self.db.read() as s:
            run = repo.get(s, app.id, run_id)
            if run is None:
                raise RunNotFound(f"run {run_id} of app {app.name!r} not found")
            return app, RunView.of(run, app.name)

    def _report(self, app: App, view: RunView) -> RunReport:
        return agent_calls.get_run(self.agents.for_server(app.server.name), app.name, agent_run_id(view.id))

    def _refreshed(self, app: App, view: RunView) -> RunView:
        """A RUNNING row brought up to date from its server (best effort: unreachable, it stays)."""
        if view.state != RUNNING:
            return view
        try:
            report = self._report(app, view)
        except UnknownRunOnAgent:
            return self._finish(view, FAILED, None, f"server {app.server.name!r} knows nothing of it "
                                "any more (its container is gone and its output was not kept)")
        except AgentError:
            return view
        if report.running:
            return view
        return self._finish(view, _outcome(report.exit_code), report.exit_code,
                            report.reason or f"exited with status {report.exit_code}", report.ended)
