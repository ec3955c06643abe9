"""`serversinc deploy` and `serversinc deployments ...`: queueing, listing, cancelling and watching deployments."""

from __future__ import annotations

import argparse

from serversinc.v1 import deployment_pb2, deployment_service_pb2

from client.names import deployment_id, enum_short
from common import names
from common.rules import RuleError
from client.pages import all_pages

from . import render
from .errors import UsageError
from .watch import WatchRenderer, follow_deployment

def deployment_name(value: str) -> str:
    """'12', 'deployments/12' or 'apps/web/deployments/12' -> the canonical name; anything else
    is a usage error."""
    try:
        parsed = names.parse_deployment(value.strip())
    except RuleError:
        raise UsageError(f"{value!r} is not a deployment id (expected a number, or "
                         "apps/APP/deployments/N)") from None
    return names.deployment_name(parsed.app, parsed.id)


def build_create_request(args: argparse.Namespace) -> deployment_service_pb2.CreateDeploymentRequest:
    return deployment_service_pb2.CreateDeploymentRequest(
        parent=f"apps/{args.name}",
        rebuild=bool(args.rebuild),
        commit_sha=args.commit or "",
        trigger=deployment_pb2.DEPLOYMENT_TRIGGER_CLI,
    )


def build_list_request(args: argparse.Namespace, page_token: str = "") -> deployment_service_pb2.ListDeploymentsRequest:
    return deployment_service_pb2.ListDeploymentsRequest(
        parent=f"apps/{args.name or '-'}", page_size=min(args.limit, 500), page_token=page_token
    )


def _watch(conn, name: str, args, out, err) -> int:
    """Render live (to stderr when stdout carries --json) and finish with the summary or the JSON."""
    console = err if args.json else out
    with WatchRenderer(console) as renderer:
        final, code = follow_deployment(conn.deployments, name, renderer)
    if args.json and final is not None:
        render.print_json(final)
    return code


def cmd_deploy(conn, args, out, err) -> int:
    d = conn.deployments.CreateDeployment(build_create_request(args))
    if args.watch:
        (err if args.json else out).print(_queued_line(d), markup=False)
        return _watch(conn, d.name, args, out, err)
    if args.json:
        render.print_json(d)
    else:
        out.print(_queued_line(d), markup=False)
        out.print(f"follow it with: serversinc deployments watch {deployment_id(d.name)}", markup=False)
    return 0


def cmd_rollback(conn, args, out, err) -> int:
    d = conn.deployments.RollbackApp(deployment_service_pb2.RollbackAppRequest(
        name=f"apps/{args.name}", deployment=args.to or "", trigger=deployment_pb2.DEPLOYMENT_TRIGGER_CLI))
    if args.watch:
        (err if args.json else out).print(f"{_queued_line(d)} (rollback to {d.source_deployment})", markup=False)
        return _watch(conn, d.name, args, out, err)
    if args.json:
        render.print_json(d)
    else:
        out.print(f"{_queued_line(d)} (rollback to {d.source_deployment})", markup=False)
    return 0


def _queued_line(d) -> str:
    where = (f"queue position {d.queue_position}" if d.queue_position
             else enum_short(d, "state") or "queued")
    return f"{d.name} of {d.app}: {where}"


def cmd_list(conn, args, out, err) -> int:
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    items = all_pages(conn.deployments.ListDeployments, lambda token: build_list_request(args, token),
                      "deployments", limit=args.limit)
    if args.json:
        render.print_json(items)
    elif not items:
        out.print(f"no deployments of {args.name} yet", markup=False)
    else:
        out.print(render.deployments_table(items))
    return 0


def cmd_show(conn, args, out, err) -> int:
    d = conn.deployments.GetDeployment(
        deployment_service_pb2.GetDeploymentRequest(name=deployment_name(args.id))
    )
    if args.json:
        render.print_json(d)
    else:
        out.print(render.deployment_detail_table(d))
    return 0


def cmd_cancel(conn, args, out, err) -> int:
    d = conn.deployments.CancelDeployment(
        deployment_service_pb2.CancelDeploymentRequest(name=deployment_name(args.id))
    )
    if args.json:
        render.print_json(d)
    else:
        out.print(f"{d.name}: {enum_short(d, 'state')}", markup=False)
    return 0


def cmd_watch(conn, args, out, err) -> int:
    return _watch(conn, deployment_name(args.id), args, out, err)
