"""PruneServer: ask a server's agent to remove what retention no longer keeps (or to list it)."""

from __future__ import annotations

from services.agents.port import AgentError
from services.apps import repository as apps_repo
from services.core import validation
from services.core.errors import AppNotFound, InvalidArgument, ServerNotFound, ServerUnreachable
from services.db.session import Database
from services.retention.views import PruneResult


def prune_server(db: Database, agents, server_name: str, app: str = "", *,
                 dry_run: bool = False) -> PruneResult:
    """One app of the server (checked to be there) or all of it; nothing changes with dry_run."""
    if not server_name:
        raise InvalidArgument("name: the server name is required", field="name")
    if app:
        validation.app_name(app)
    with db.read() as s:
        server = apps_repo.get_server(s, server_name)
        if server is None:
            raise ServerNotFound(f"server {server_name!r} not found")
        if app:
            row = apps_repo.get_app(s, app)
            if row is None:
                raise AppNotFound(f"app {app!r} not found")
            if row.server.name != server.name:
                raise InvalidArgument(f"app {app!r} is on server {row.server.name!r}, not {server.name!r}",
                                      field="app")
    try:
        return agents.for_server(server.name).prune(app, dry_run=dry_run)
    except AgentError as err:
        raise ServerUnreachable(f"could not prune server {server.name!r}: {err}") from None
