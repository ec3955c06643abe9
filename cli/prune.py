"""`serversinc prune [NAME] [--dry-run] [--json]`: what retention removes, per server and app.

With NAME, only that app on its server; without, every server (each app on it and the server's
caches). --dry-run lists what would go and removes nothing. The agents decide what goes
(agent.retention): the platform's images past each app's last N releases, stopped containers,
dangling build cache past the disk threshold; they never touch what they did not label.
"""

from __future__ import annotations

import grpc
from serversinc.v1 import app_service_pb2, server_service_pb2

from client.pages import all_pages

from . import render

_KIND = {server_service_pb2.PRUNE_ITEM_KIND_IMAGE: "image",
         server_service_pb2.PRUNE_ITEM_KIND_CONTAINER: "container",
         server_service_pb2.PRUNE_ITEM_KIND_BUILD_CACHE: "build cache",
         server_service_pb2.PRUNE_ITEM_KIND_REPOSITORY_CACHE: "repository cache"}


def add_parser(sub, leaf, json_flag) -> None:
    p = leaf(sub, "prune", cmd_prune,
             "remove old releases' images, stopped containers and stale caches (what retention no longer keeps)")
    p.add_argument("name", metavar="NAME", nargs="?", help="only this app (default: every server and app)")
    p.add_argument("--dry-run", action="store_true", help="list what would go; remove nothing")
    json_flag(p)


def _targets(conn, name: str | None) -> list[tuple[str, str]]:
    """(server, app) pairs to prune: the app's server, or every server (app "")."""
    if name:
        app = conn.apps.GetApp(app_service_pb2.GetAppRequest(name=name))
        return [(app.server, app.name.removeprefix("apps/"))]
    servers = all_pages(conn.servers.ListServers,
                        lambda token: server_service_pb2.ListServersRequest(page_size=500, page_token=token),
                        "servers")
    return [(s.name, "") for s in servers]


def cmd_prune(conn, args, out, err) -> int:
    """Every server is tried: one that cannot be reached is reported (exit 1), the others pruned."""
    results, failed = [], 0
    for server, app in _targets(conn, args.name):
        try:
            results.append(conn.servers.PruneServer(server_service_pb2.PruneServerRequest(
                name=server, app=app, dry_run=args.dry_run)))
        except grpc.RpcError as e:
            if args.name:
                raise
            failed += 1
            err.print(f"server {server}: error: {e.details()}", markup=False)
    if args.json:
        render.print_json(results)
        return 1 if failed else 0
    verb = "would free" if args.dry_run else "freed"
    for result in results:
        out.print(f"server {result.server}: {len(result.items)} item(s), {verb} "
                  f"{render.fmt_bytes(result.bytes_freed)}", markup=False)
        for app in sorted({i.app for i in result.items}):
            out.print(f"  {app or '(engine)'}:", markup=False)
            for item in (i for i in result.items if i.app == app):
                what = f"{_KIND.get(item.kind, 'item')} {item.name}"
                released = f" ({item.deployment.rsplit('/', 1)[-1]})" if item.deployment else ""
                out.print(f"    {'would remove' if args.dry_run else 'removed'} {what}{released}: "
                          f"{item.reason} [{render.fmt_bytes(item.size_bytes)}]", markup=False)
        for skip in result.skipped:
            out.print(f"  {skip.app}: left alone: {skip.reason}", markup=False)
    return 1 if failed else 0
