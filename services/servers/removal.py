"""Removing a server from the control plane: refused while any app runs there.

Invariant: no app names a server that is gone (app_servers and apps.server_id reference it). The
check and the delete share one transaction, and the foreign keys catch an app that was pointed at
the server by a transaction the check could not see yet: both are the same refusal, naming the
apps to move first. Only the control plane's record goes; the agent and what it runs are left as
they are (its apps were moved off, which removed them there).
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from services.apps import repository as repo
from services.core import validation as v
from services.core.errors import FailedPrecondition, ServerNotFound
from services.db.models import Server
from services.db.session import Database

SERVER_IN_USE = "SERVER_IN_USE"


def in_use(name: str, apps: list[str]) -> FailedPrecondition:
    shown = ", ".join(apps) if apps else "an app that was just pointed at it"
    return FailedPrecondition(
        f"server {name!r} still runs {shown}: move {'them' if len(apps) != 1 else 'it'} to other servers first "
        f"(serversinc apps update APP --servers ...) or delete {'them' if len(apps) != 1 else 'it'}",
        reason=SERVER_IN_USE, metadata={"apps": ",".join(apps)})


def delete_server(db: Database, name: str) -> None:
    """Deletes the server's record; FAILED_PRECONDITION (reason SERVER_IN_USE) naming the apps
    that run on it, NOT_FOUND for an unknown one."""
    v.resource_name(name, "server")
    try:
        with db.session() as s:
            server: Server | None = repo.get_server(s, name)
            if server is None:
                raise ServerNotFound(f"server {name!r} not found")
            apps = repo.apps_on_server(s, server.id)
            if apps:
                raise in_use(name, apps)
            s.delete(server)
    except IntegrityError:
        with db.read() as s:
            server = repo.get_server(s, name)
            apps = repo.apps_on_server(s, server.id) if server is not None else []
        raise in_use(name, apps) from None
