"""`serversinc apps ...` and `serversinc logs`: building AppService requests from arguments and showing replies.

Request building is kept in pure functions (args -> request message) so the flag contract is testable
without a server.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

import grpc
from google.protobuf import field_mask_pb2

from serversinc.v1 import app_pb2, app_service_pb2, deployment_pb2, deployment_service_pb2

from client.errors import error_info
from client.logs import LogCursor
from client.pages import all_pages
from common import rules

from . import render
from .errors import UsageError
from .watch import RECONNECT_BACKOFF


# flag dest -> App field, for the settable fields shared by create and update, in proto order.
APP_FLAG_FIELDS = (
    ("repo", "repo_url"),
    ("branch", "branch"),
    ("port", "port"),
    ("health_path", "health_path"),
    ("dockerfile", "dockerfile"),
    ("context", "context_dir"),
    ("env", "env"),
    ("server", "server"),
    ("health_timeout", "health_timeout_seconds"),
    ("build_timeout", "build_timeout_seconds"),
    ("stop_grace", "stop_grace_seconds"),
    ("health_mode", "health_check_mode"),
    ("health_status_min", "health_status_min"),
    ("health_status_max", "health_status_max"),
    ("health_interval_ms", "health_interval_ms"),
    ("health_probe_timeout_ms", "health_probe_timeout_ms"),
    ("healthy_threshold", "healthy_threshold"),
    ("stop_signal", "stop_signal"),
    ("drain", "drain_seconds"),
    ("domain", "domains"),
    ("secret_env", "secret_env"),
    ("notify_url", "notify_urls"),
    ("https_redirect", "https_redirect"),
    ("hsts", "hsts_max_age_seconds"),
    ("memory", "memory_limit_bytes"),
    ("cpus", "cpu_limit_millis"),
    ("volume", "volumes"),
    ("exclusive_volumes", "exclusive_volumes"),
    ("release_command", "release_command"),
    ("retain", "retain_releases"),
    ("servers", "servers"),
    ("replicas", "replicas"),
)


def parse_env(pairs: list[str] | None) -> dict[str, str]:
    """['K=V', ...] -> {K: V}; the value may contain '=' and be empty, the key must be a shell-style name."""
    env: dict[str, str] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not rules.ENV_KEY.fullmatch(key):
            raise UsageError(
                f"--env {pair!r}: expected KEY=VALUE with KEY made of letters, digits and '_' "
                "(not starting with a digit)"
            )
        env[key] = value
    return env


def _app_from_args(args: argparse.Namespace) -> tuple[app_pb2.App, list[str]]:
    """Fill an App from the flags; returns it and the App fields that were given on the command line."""
    app = app_pb2.App(name=args.name)
    given: list[str] = []
    for dest, field in APP_FLAG_FIELDS:
        value = getattr(args, dest, None)
        if value is None:
            continue
        if field == "env":
            app.env.update(parse_env(value))
        elif field == "secret_env":
            app.secret_env.update(parse_env(value))
        elif field == "domains":
            app.domains.extend(value)
        elif field == "notify_urls":
            app.notify_urls.extend(value)
        elif field == "volumes":
            app.volumes.extend(app_pb2.Volume(name=name, path=path) for name, path in value)
        elif field == "release_command":
            app.release_command.extend(value)
        elif field == "servers":
            app.servers.extend(value)
        elif field == "health_check_mode":
            app.health_check_mode = app_pb2.HealthCheckMode.Value(f"HEALTH_CHECK_MODE_{value.upper()}")
        else:
            setattr(app, field, value)
        given.append(field)
    return app, given


def build_create_request(args: argparse.Namespace) -> app_service_pb2.CreateAppRequest:
    """Only what the user typed (plus branch 'main'); unset numbers stay 0 so the server applies its defaults."""
    app, _ = _app_from_args(args)
    return app_service_pb2.CreateAppRequest(app=app)


def build_update_request(args: argparse.Namespace) -> app_service_pb2.UpdateAppRequest:
    """The mask names exactly the flags given: an empty mask would mean "every field" to the server."""
    app, given = _app_from_args(args)
    if not given:
        raise UsageError("apps update: give at least one field to change (e.g. --branch, --port, --env)")
    return app_service_pb2.UpdateAppRequest(app=app, update_mask=field_mask_pb2.FieldMask(paths=given))


def list_all_apps(conn) -> list[app_pb2.App]:
    return all_pages(conn.apps.ListApps,
                     lambda token: app_service_pb2.ListAppsRequest(page_size=500, page_token=token), "apps")


def cmd_create(conn, args, out, err) -> int:
    app = conn.apps.CreateApp(build_create_request(args))
    if args.json:
        render.print_json(app)
    else:
        out.print(f"created app {app.name} ({app.repo_url} @ {app.branch})", markup=False)
        out.print(f"deploy it with: serversinc deploy {app.name} --watch", markup=False)
    return 0


def cmd_update(conn, args, out, err) -> int:
    req = build_update_request(args)
    app = conn.apps.UpdateApp(req)
    if args.json:
        render.print_json(app)
    else:
        fields = ", ".join(req.update_mask.paths)
        out.print(f"updated app {app.name}: {fields} (takes effect on the next deployment)", markup=False)
        if {"server", "servers"} & set(req.update_mask.paths):
            move = _queued_move(conn, app.name)
            if move is not None:
                out.print(f"moving it to {', '.join(app.servers)}: {move.name} deploys its serving commit there "
                          f"(follow it with: serversinc deployments watch {move.id})", markup=False)
    return 0


def _queued_move(conn, name: str):
    """The app's newest deployment when it is the move UpdateApp just queued (trigger MOVE, not finished)."""
    page = conn.deployments.ListDeployments(
        deployment_service_pb2.ListDeploymentsRequest(parent=f"apps/{name}", page_size=1))
    newest = page.deployments[0] if page.deployments else None
    if newest is not None and newest.trigger == deployment_pb2.DEPLOYMENT_TRIGGER_MOVE and newest.state in (
            deployment_pb2.DEPLOYMENT_STATE_QUEUED, deployment_pb2.DEPLOYMENT_STATE_RUNNING):
        return newest
    return None


def cmd_list(conn, args, out, err) -> int:
    apps = list_all_apps(conn)
    if args.json:
        render.print_json(apps)
    elif not apps:
        out.print("no apps yet — create one with: serversinc apps create NAME --repo URL", markup=False)
    else:
        out.print(render.apps_table(apps))
    return 0


def cmd_show(conn, args, out, err) -> int:
    app = conn.apps.GetApp(app_service_pb2.GetAppRequest(name=args.name))
    if args.json:
        render.print_json(app)
    else:
        out.print(render.app_detail_table(app))
    return 0


def cmd_maintenance(conn, args, out, err) -> int:
    """Maintenance mode on or off at once (no deployment); the containers keep running."""
    enabled = args.state == "on"
    if args.message and not enabled:
        raise UsageError("--message goes with 'on' only")
    app = conn.apps.SetAppMaintenance(app_service_pb2.SetAppMaintenanceRequest(
        name=args.name, enabled=enabled, message=args.message or ""))
    if args.json:
        render.print_json(app)
    elif enabled:
        out.print(f"{app.name} is in maintenance: its front door answers 503 with the maintenance page "
                  "(the containers keep running)", markup=False)
    else:
        out.print(f"{app.name} serves again", markup=False)
    return 0


def read_pem(path: str, what: str) -> bytes:
    """A PEM file's bytes; the contents never go into an error message (a key stays secret)."""
    try:
        data = open(path, "rb").read()
    except OSError as exc:
        raise UsageError(f"cannot read the {what} file {path}: {exc.strerror}") from None
    if b"-----BEGIN " not in data:
        raise UsageError(f"{path} is not a PEM file (expected the {what} in PEM form)")
    return data


def build_upload_request(args: argparse.Namespace) -> app_service_pb2.UploadAppCertificateRequest:
    return app_service_pb2.UploadAppCertificateRequest(
        name=args.name, domain=args.domain, certificate_pem=read_pem(args.cert, "certificate"),
        private_key_pem=read_pem(args.key, "private key"))


def cmd_certs_upload(conn, args, out, err) -> int:
    cert = conn.apps.UploadAppCertificate(build_upload_request(args))
    if args.json:
        render.print_json(cert)
    else:
        out.print(f"certificate for {cert.domain} in service on app {args.name}: "
                  f"{render.certificate_words(cert)}", markup=False)
    return 0


def cmd_certs_list(conn, args, out, err) -> int:
    app = conn.apps.GetApp(app_service_pb2.GetAppRequest(name=args.name))
    if args.json:
        render.print_json(list(app.certificates))
    elif not app.certificates:
        out.print(f"no certificates reported for {app.name} (add a --domain and deploy; the app's "
                  "server must have an HTTPS front door)", markup=False)
    else:
        out.print(render.certificates_table(app.certificates))
    return 0


def confirm(prompt: str) -> bool:
    """Ask on a terminal; anything but y/yes declines."""
    try:
        answer = input(f"{prompt} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def cmd_webhook(conn, args, out, err) -> int:
    hook = conn.apps.GetAppWebhook(app_service_pb2.GetAppWebhookRequest(name=args.name))
    if args.json:
        render.print_json(hook)
        return 0
    out.print(f"In GitHub: Settings → Webhooks → Add webhook for {hook.app}:", markup=False)
    out.print(f"  Payload URL   {hook.url}", markup=False)
    out.print("  Content type  application/json", markup=False)
    out.print(f"  Secret        {hook.secret}", markup=False)
    out.print("  Events        Just the push event", markup=False)
    return 0


def kept_volumes_message(app: str, kept) -> str:
    """What a delete without --delete-volumes says about the volumes it kept, and how to delete
    them later (the app's name is free again, so it takes a new app of that name, or Docker)."""
    return (f"kept volumes: {', '.join(kept)} (on the app's server); delete them with "
            f"`serversinc apps delete {app} --delete-volumes` after creating an app {app} again "
            f"(it mounts them again meanwhile), or `docker volume rm {' '.join(kept)}` on that server")


def cmd_delete(conn, args, out, err) -> int:
    # Confirmation only makes sense with someone at the keyboard; scripts are not made to hang.
    if not args.yes and sys.stdin.isatty():
        what = (", its containers, its queued deployments and its volumes with their data"
                if args.delete_volumes else ", its containers and its queued deployments")
        if not confirm(f"Delete app {args.name}{what}?"):
            out.print("aborted", markup=False)
            return 1
    resp = conn.apps.DeleteApp(app_service_pb2.DeleteAppRequest(
        name=args.name, delete_volumes=args.delete_volumes))
    out.print(f"deleted app {args.name}", markup=False)
    if resp.removed_volumes:
        out.print(f"removed volumes: {', '.join(resp.removed_volumes)}", markup=False)
    if resp.kept_volumes:
        out.print(kept_volumes_message(args.name, resp.kept_volumes), markup=False)
    return 0


def cmd_logs(conn, args, out, err, *, backoff: tuple[float, ...] = RECONNECT_BACKOFF,
             sleep: Callable[[float], None] = time.sleep) -> int:
    """Print the lines; a stream the control plane dropped (UNAVAILABLE: the replica went away) is
    opened again, on whichever replica answers, without printing a line twice (client.logs)."""
    cursor = LogCursor()
    attempt = 0
    server = getattr(args, "server", None) or ""
    # An app on several servers: each line says where it came from ("server/container| line").
    tagged = not server and len(conn.apps.GetApp(app_service_pb2.GetAppRequest(name=args.name)).servers) > 1
    while True:
        try:
            request = cursor.request(args.name, args.follow, args.tail or 0,
                                     deployment=getattr(args, "deployment", None) or "",
                                     since=getattr(args, "since", None), server=server)
            for line in conn.apps.StreamAppLogs(request):
                if not cursor.is_new(line):
                    continue
                attempt = 0
                # Plain write: container output is printed verbatim, never styled or wrapped.
                sys.stdout.write((f"{line.server}/{line.container_id[:12]}| " if tagged else "") + line.text + "\n")
                if args.follow:
                    sys.stdout.flush()
            sys.stdout.flush()
            return 0
        except grpc.RpcError as error:
            # An UNAVAILABLE with a reason is the control plane's own answer, not a lost connection.
            if error.code() != grpc.StatusCode.UNAVAILABLE or error_info(error) is not None:
                raise
            if attempt >= len(backoff):
                raise
            sys.stdout.flush()
            print(f"log stream lost, reconnecting in {backoff[attempt]:g}s…", file=sys.stderr, flush=True)
            sleep(backoff[attempt])
            attempt += 1


def cmd_containers(conn, args, out, err) -> int:
    """The app's containers on every server it runs on; a server that did not answer is named on
    stderr (its containers are missing from the list), and the exit status is then 1."""
    containers, unreachable, token = [], {}, ""
    while True:
        page = conn.apps.ListAppContainers(app_service_pb2.ListAppContainersRequest(
            parent=args.name, page_size=500, page_token=token))
        containers += page.containers
        unreachable.update(dict.fromkeys(page.unreachable))
        token = page.next_page_token
        if not token:
            break
    if args.json:
        render.print_json(containers)
    elif not containers:
        out.print(f"no containers of {args.name}", markup=False)
    else:
        from rich.table import Table

        table = Table(box=None, pad_edge=False)
        for column in ("SERVER", "NAME", "STATE", "DEPLOYMENT", "COMMIT", "CREATED", "ID"):
            table.add_column(column, overflow="fold")
        for c in sorted(containers, key=lambda c: (c.server, c.name)):
            state = c.state + (f" (draining, {c.open_connections} open)" if c.draining else "")
            table.add_row(c.server, c.name, state, c.deployment.rpartition("/")[2], c.commit_sha[:7],
                          render.fmt_time(c.create_time, c.HasField("create_time")), c.id[:12])
        out.print(table)
    for why in unreachable:
        print(f"server {why} (its containers are not listed)", file=sys.stderr)
    return 1 if unreachable else 0
