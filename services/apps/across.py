"""The per-app operations that reach every server an app runs on: its containers, its maintenance
mode, the user's certificate, its logs.

An app runs on several servers (App.servers, and where a move left its serving release:
AppService.runs_on), so each of these asks all of them, at the same time, and says which server
failed. A single-server app sees what it saw when apps had one server.

Maintenance is all or nothing: the stored mode is one every front door serves, so a server that
fails to switch makes the others that did switch back before the error is raised. A certificate
cannot be taken back from an agent (the control plane never holds the key), so a partial upload
is named instead: the servers that took it serve it.
"""

from __future__ import annotations

import asyncio
import dataclasses

from services.agents.client import AppNotOnAgent, CertificateRefused, LogsNotKept
from services.agents.fanout import each
from services.agents.port import AgentError
from services.core.errors import AppNotDeployed, InvalidArgument, NotFound, ServerUnreachable



def containers(apps, agents, name: str) -> tuple[list, dict[str, str]]:
    """The app's containers on every server it runs on, each tagged with its server, and
    {server: why} of those that did not answer; ServerUnreachable when none answered."""
    app = apps.get(name)
    answers = each(apps.runs_on(app), lambda s: agents.for_server(s).list_containers(app.name))
    down = {server: str(err) for server, _, err in answers if err is not None}
    if len(down) == len(answers):
        raise ServerUnreachable("; ".join(f"server {s!r}: {why}" for s, why in down.items()))
    found = [dataclasses.replace(c, server=server) for server, listed, err in answers if err is None
             for c in listed]
    return found, down


def set_maintenance(apps, agents, name: str, enabled: bool, message: str):
    """Applies the mode on every server at once, then stores it; on a failure the servers that
    switched get the stored mode back and the error names the server that failed."""
    app = apps.get(name)
    servers = apps.runs_on(app)
    answers = each(servers, lambda s: agents.for_server(s).set_maintenance(app.name, enabled, message))
    failed = [(server, err) for server, _, err in answers if err is not None]
    if failed:
        switched = [server for server, _, err in answers if err is None]
        each(switched, lambda s: agents.for_server(s).set_maintenance(
            app.name, app.maintenance, app.maintenance_message or ""))
        server, err = failed[0]
        others = f" (switched back on {', '.join(map(repr, switched))})" if switched else ""
        if isinstance(err, AppNotOnAgent):
            raise AppNotDeployed(f"app {app.name} has nothing running on server {server!r} yet: deploy it "
                                 f"first{others}") from None
        raise ServerUnreachable(f"could not set maintenance mode on server {server!r}: {err}{others}") from None
    return apps.record_maintenance(app.name, enabled, message)


def upload_certificate(apps, agents, app, domain: str, certificate_pem: bytes, private_key_pem: bytes,
                       store_report):
    """Hands the certificate and key to each server's agent (the key goes nowhere else) and
    stores the first server's report of the app's certificates (the read model holds one report
    per app, not one per server). The view returned is the first server's."""
    servers = apps.runs_on(app)
    answers = each(servers, lambda s: agents.for_server(s).upload_certificate(
        app.name, domain, certificate_pem, private_key_pem))
    taken = [(server, view) for server, view, err in answers if err is None]
    if taken:
        try:
            store_report(agents.for_server(taken[0][0]).list_certificates(app.name))
        except AgentError:
            pass  # the health monitor's next round relays it
    for server, _, err in answers:
        if isinstance(err, CertificateRefused):
            where = f" by server {server!r}" if len(servers) > 1 else ""
            raise InvalidArgument(f"{err}{where}", field="certificate_pem") from None
    failed = [(server, err) for server, _, err in answers if err is not None]
    if failed:
        server, err = failed[0]
        served = f" (it serves on {', '.join(repr(s) for s, _ in taken)})" if taken else ""
        raise ServerUnreachable(f"could not hand the certificate to server {server!r}: {err}{served}") from None
    return taken[0][1]


_END = object()


async def logs(apps, agents, name: str, *, follow: bool, tail: int, deployment_id: int = 0, since=None,
               server: str = ""):
    """The output of the app's serving release (or one release's) on every server it runs on,
    each line tagged with its server, relayed on the caller's event loop (a follower holds no
    thread). Without follow the lines of all servers come in time order, and a server that did
    not answer raises ServerUnreachable after the others' lines; with follow it ends the stream
    at once (it would never end otherwise). NOT_FOUND (LOGS_NOT_KEPT) when no server kept the
    release's output."""
    app = await asyncio.to_thread(apps.get, name)
    servers = await asyncio.to_thread(apps.runs_on, app)
    if server:
        if server not in servers:
            raise NotFound(f"app {app.name!r} does not run on server {server!r} (it runs on "
                           f"{', '.join(servers)})", reason="SERVER_NOT_FOUND")
        servers = [server]
    queue: asyncio.Queue = asyncio.Queue(maxsize=1000)

    async def pump(s: str) -> None:
        failure = None
        try:
            async for entry in agents.for_server(s).stream_logs(app.name, follow=follow, tail=tail,
                                                               deployment_id=deployment_id, since=since):
                await queue.put((s, dataclasses.replace(entry, server=s)))
        except AgentError as err:
            failure = err
        await queue.put((s, (_END, failure)))

    tasks = [asyncio.create_task(pump(s)) for s in servers]
    try:
        pending, not_kept, down, held = len(servers), {}, {}, []
        while pending:
            s, item = await queue.get()
            if isinstance(item, tuple) and item and item[0] is _END:
                pending -= 1
                err = item[1]
                if isinstance(err, LogsNotKept):
                    not_kept[s] = err
                elif err is not None:
                    down[s] = err
                    if follow:
                        break
                continue
            if follow or len(servers) == 1:
                yield item
            else:
                held.append(item)
        held.sort(key=lambda e: (e.time is None, e.time or 0))
        for entry in held:
            yield entry
        if down:
            s, err = next(iter(down.items()))
            raise ServerUnreachable(f"could not read the logs on server {s!r}: {err}")
        if not_kept and len(not_kept) == len(servers):
            raise NotFound(str(next(iter(not_kept.values()))), reason="LOGS_NOT_KEPT")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
