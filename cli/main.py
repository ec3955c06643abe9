"""`serversinc`: the command-line client of the control plane.

This module only parses arguments and dispatches; each command lives in apps.py, deployments.py or
misc.py, talks to the API through client.connection and prints through render.py / watch.py.
`main(argv)` returns the exit code instead of exiting so it can be called from tests and scripts:
0 success, 1 an API error or a failed deployment, 2 a usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

import grpc

from client.addresses import AddressError
from client.connection import Connection, TrustError
from client.errors import ApiError
from common import runtime_rules
from common.defaults import API_ENV, DEFAULT_API

from . import apps, deployments, misc
from . import config as config_cli
from . import prune as prune_cli
from . import registries as registries_cli
from . import run as run_cli
from .errors import UsageError
from .render import make_console

PROG = "serversinc"


def _env_pair(value: str) -> str:
    """argparse type for --env: reject a malformed pair at parse time (exit 2, no RPC)."""
    try:
        apps.parse_env([value])
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix(f"--env {value!r}: ").strip() + f" (got {value!r})")
    return value


def _non_negative_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}")
    if n < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {n}")
    return n


def _rule(parse):
    """argparse type from a common.runtime_rules parser: a broken rule is a usage error (exit 2)."""
    def check(value: str):
        try:
            return parse(value)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e))
    check.__name__ = parse.__name__
    return check


def _argv(value: str) -> list[str]:
    try:
        return runtime_rules.release_command(shlex.split(value))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))


def _server_list(value: str) -> list[str]:
    """argparse type for --servers: 'a,b' -> ['a', 'b'] (names are checked by the server)."""
    names = [n.strip() for n in value.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected server names separated by commas, e.g. a,b (got {value!r})")
    return names


def _positive_int(value: str) -> int:
    n = _non_negative_int(value)
    if n == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def _add_app_fields(p: argparse.ArgumentParser, create: bool) -> None:
    """The App flags shared by `apps create` and `apps update`. On update every default is None so
    that only the flags actually given end up in the update mask."""
    p.add_argument("--repo", required=create, metavar="URL", help="git repository URL")
    p.add_argument("--branch", default="main" if create else None, metavar="B",
                   help="branch deployed by default" + (" (default: main)" if create else ""))
    p.add_argument("--port", type=_non_negative_int, metavar="P", help="port the app listens on in its container")
    p.add_argument("--health-path", metavar="PATH", help="HTTP path probed until the container is healthy")
    p.add_argument("--dockerfile", metavar="F", help="Dockerfile path, relative to the context")
    p.add_argument("--context", metavar="DIR", help="build context, relative to the repository root")
    p.add_argument("--env", action="append", type=_env_pair, metavar="K=V",
                   help="environment variable (repeatable)" + ("" if create else "; replaces the whole env"))
    p.add_argument("--server", metavar="S", help="server (Tugboat agent) to run on"
                   + ("" if create else "; moves the app there (a deploy of its serving commit)"))
    p.add_argument("--servers", type=_server_list, metavar="A,B",
                   help="servers to run on, in rollout order (the first builds)"
                   + ("" if create else "; a new set moves the app (a deploy of its serving commit)"))
    p.add_argument("--replicas", type=_positive_int, metavar="N",
                   help="containers per release, spread over the servers (at least one each"
                   + ("; default: one per server)" if create else ")"))
    p.add_argument("--health-timeout", type=_non_negative_int, metavar="SECONDS")
    p.add_argument("--build-timeout", type=_non_negative_int, metavar="SECONDS")
    p.add_argument("--stop-grace", type=_non_negative_int, metavar="SECONDS",
                   help="seconds between the stop signal and SIGKILL for the old container")
    p.add_argument("--stop-signal", metavar="SIGNAL", help="signal that stops the old container (default SIGTERM)")
    p.add_argument("--drain", type=_non_negative_int, metavar="SECONDS",
                   help="seconds in-flight requests get on the old container after the switch (default 5)")
    p.add_argument("--health-mode", choices=["http", "docker"],
                   help="http: probe --health-path; docker: wait for the image's HEALTHCHECK")
    p.add_argument("--health-status-min", type=_non_negative_int, metavar="CODE", help="lowest healthy status (default 200)")
    p.add_argument("--health-status-max", type=_non_negative_int, metavar="CODE", help="highest healthy status (default 399)")
    p.add_argument("--health-interval-ms", type=_non_negative_int, metavar="MS", help="between probes (default 100)")
    p.add_argument("--health-probe-timeout-ms", type=_non_negative_int, metavar="MS", help="per probe (default 1000)")
    p.add_argument("--healthy-threshold", type=_non_negative_int, metavar="N",
                   help="consecutive healthy probes needed (default 1)")
    p.add_argument("--secret-env", action="append", type=_env_pair, metavar="K=V",
                   help="secret environment variable, stored encrypted and shown masked (repeatable)"
                   + ("" if create else "; replaces the whole secret env (a value of ******** keeps the stored one)"))
    p.add_argument("--notify-url", action="append", metavar="URL",
                   help="URL that gets a signed JSON POST when a deployment succeeds or fails (repeatable)"
                   + ("" if create else "; replaces the list"))
    p.add_argument("--domain", action="append", metavar="HOST",
                   help="host name routed to the app at the front door (repeatable)" + ("" if create else "; replaces the list"))
    p.add_argument("--https-redirect", action=argparse.BooleanOptionalAction, default=None,
                   help="redirect HTTP to HTTPS for a domain once its certificate serves")
    p.add_argument("--hsts", type=_non_negative_int, metavar="SECONDS",
                   help="Strict-Transport-Security max-age sent over HTTPS (0: none, the default)")
    p.add_argument("--memory", type=_rule(runtime_rules.parse_memory), metavar="SIZE",
                   help="memory limit of the app's containers and builds, e.g. 256m or 1g (0: none)")
    p.add_argument("--cpus", type=_rule(runtime_rules.parse_cpus), metavar="N",
                   help="CPU limit of the app's containers and builds, e.g. 0.5 (0: none)")
    p.add_argument("--volume", action="append", type=_rule(runtime_rules.parse_volume), metavar="NAME:/PATH",
                   help="named volume owned by the app, kept across deploys (repeatable)"
                   + ("" if create else "; replaces the list"))
    p.add_argument("--exclusive-volumes", action=argparse.BooleanOptionalAction, default=None,
                   help="stop the old container before the new one starts (it serves nothing meanwhile)")
    p.add_argument("--release-command", type=_argv, metavar="COMMAND",
                   help="command run once in the new release before it starts, e.g. \"/app migrate\" "
                   "(split like a shell would, run without one; \"\" for none)")
    p.add_argument("--retain", type=_non_negative_int, metavar="N",
                   help="successful releases whose image is kept for rollback (default 5)")


def build_parser() -> argparse.ArgumentParser:
    # --api is accepted both before the command and after it (leaf parsers get a SUPPRESSed copy so
    # they don't overwrite the global value with None).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--api", default=argparse.SUPPRESS, metavar="HOST:PORT", help=argparse.SUPPRESS)

    parser = argparse.ArgumentParser(prog=PROG, description="Deploy apps from git with serversinc.")
    parser.add_argument("--api", default=None, metavar="HOST:PORT[,HOST:PORT...]",
                        help=f"control plane address, or several replicas' comma-separated, tried in order "
                             f"(default: ${API_ENV} or {DEFAULT_API})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def leaf(group, name, handler, help_text):
        p = group.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    def json_flag(p):
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    # apps
    apps_p = sub.add_parser("apps", help="create, list, show, update and delete apps")
    apps_sub = apps_p.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = leaf(apps_sub, "create", apps.cmd_create, "register an app")
    p.add_argument("name", metavar="NAME")
    _add_app_fields(p, create=True)
    json_flag(p)
    p = leaf(apps_sub, "list", apps.cmd_list, "list apps")
    json_flag(p)
    p = leaf(apps_sub, "show", apps.cmd_show, "show one app")
    p.add_argument("name", metavar="NAME")
    json_flag(p)
    p = leaf(apps_sub, "update", apps.cmd_update, "change an app's settings (on its next deployment)")
    p.add_argument("name", metavar="NAME")
    _add_app_fields(p, create=False)
    json_flag(p)
    config_cli.add_parser(apps_sub, leaf, json_flag)
    p = leaf(apps_sub, "delete", apps.cmd_delete, "remove an app, its containers and queued deployments")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.add_argument("--delete-volumes", action="store_true",
                   help="also remove the app's volumes and their data (kept and named otherwise)")
    p = leaf(apps_sub, "webhook", apps.cmd_webhook, "the GitHub webhook URL and secret to configure for an app")
    p.add_argument("name", metavar="NAME")
    json_flag(p)
    p = leaf(apps_sub, "maintenance", apps.cmd_maintenance,
             "answer 503 with a maintenance page (on) or serve the app again (off), at once, "
             "without touching its containers")
    p.add_argument("name", metavar="NAME")
    p.add_argument("state", choices=("on", "off"), metavar="on|off")
    p.add_argument("--message", metavar="TEXT", help="the page's text (shown HTML-escaped)")
    json_flag(p)
    p = leaf(apps_sub, "containers", apps.cmd_containers,
             "the app's containers on every server it runs on (each with its server)")
    p.add_argument("name", metavar="NAME")
    json_flag(p)
    certs_p = apps_sub.add_parser("certs", help="an app's HTTPS certificates: list them, upload your own")
    certs_sub = certs_p.add_subparsers(dest="certs_verb", metavar="VERB", required=True)
    p = leaf(certs_sub, "list", apps.cmd_certs_list, "each domain's certificate, as the app's server reports it")
    p.add_argument("name", metavar="NAME")
    json_flag(p)
    p = leaf(certs_sub, "upload", apps.cmd_certs_upload,
             "serve your own certificate for one of the app's domains instead of an ACME one "
             "(the key goes to the app's server only)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--domain", required=True, metavar="HOST", help="one of the app's domains")
    p.add_argument("--cert", required=True, metavar="FILE", help="certificate chain, PEM, leaf first")
    p.add_argument("--key", required=True, metavar="FILE", help="unencrypted private key, PEM")
    json_flag(p)

    # deploy
    p = leaf(sub, "deploy", deployments.cmd_deploy, "queue a deployment of an app")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--rebuild", action="store_true", help="build even when an image for the commit exists")
    p.add_argument("--watch", action="store_true", help="follow the deployment until it finishes")
    p.add_argument("--commit", metavar="SHA", help="deploy this commit instead of the branch head")
    json_flag(p)

    # rollback
    p = leaf(sub, "rollback", deployments.cmd_rollback,
             "redeploy an earlier successful release without a build (default: the one before the serving one)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--to", metavar="DEPLOYMENT", type=deployments.deployment_name,
                   help="the successful deployment whose release to run (a number or deployments/N)")
    p.add_argument("--watch", action="store_true", help="follow the rollback until it finishes")
    json_flag(p)

    # deployments
    dep_p = sub.add_parser("deployments", help="list, show, cancel and watch deployments")
    dep_sub = dep_p.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = leaf(dep_sub, "list", deployments.cmd_list, "list an app's deployments, newest first")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--limit", type=_positive_int, default=20, metavar="N", help="at most N (default 20)")
    json_flag(p)
    p = leaf(dep_sub, "show", deployments.cmd_show, "show one deployment")
    p.add_argument("id", metavar="ID", help="a number or deployments/N")
    json_flag(p)
    p = leaf(dep_sub, "cancel", deployments.cmd_cancel, "cancel a queued or running deployment")
    p.add_argument("id", metavar="ID")
    json_flag(p)
    p = leaf(dep_sub, "watch", deployments.cmd_watch, "follow a deployment until it finishes")
    p.add_argument("id", metavar="ID")
    json_flag(p)

    # logs
    p = leaf(sub, "logs", apps.cmd_logs, "print the serving release's output (every server of the app), or a past release's")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")
    p.add_argument("--tail", type=_non_negative_int, metavar="N",
                   help="start with the last N lines (default 100; with --since, every line since)")
    p.add_argument("--deployment", metavar="ID", type=deployments.deployment_name,
                   help="the output of this deployment's release (a number or deployments/N), also after it was replaced")
    p.add_argument("--since", type=config_cli.since_arg, metavar="WHEN",
                   help="only lines from WHEN on: a duration ago (30s, 10m, 2h, 1d) or an RFC 3339 time")
    p.add_argument("--server", metavar="NAME",
                   help="only the output on this server of the app (default: every server it runs on, "
                        "each line prefixed with its server and container)")

    # servers
    srv_p = sub.add_parser("servers", help="list and add servers")
    srv_sub = srv_p.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = leaf(srv_sub, "list", misc.cmd_servers_list, "list servers and whether their agent answers")
    json_flag(p)
    p = leaf(srv_sub, "add", misc.cmd_servers_add, "add a server; prints its agent's one-time join command")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--address", required=True, metavar="HOST:PORT", help="where its agent listens")
    p.add_argument("--ttl", type=_non_negative_int, metavar="SECONDS", help="join token lifetime (default 3600)")
    json_flag(p)
    p = leaf(srv_sub, "rotate-cert", misc.cmd_servers_rotate_cert,
             "renew a server's agent certificate (no restart, no downtime)")
    p.add_argument("name", metavar="NAME")
    json_flag(p)
    p = leaf(srv_sub, "delete", misc.cmd_servers_delete,
             "remove a server no app runs on (move or delete its apps first)")
    p.add_argument("name", metavar="NAME")

    # prune
    prune_cli.add_parser(sub, leaf, json_flag)

    # run, runs
    run_cli.add_parsers(sub, leaf, json_flag)

    # registries
    registries_cli.add_parsers(sub, leaf, json_flag)

    # tokens
    tok_p = sub.add_parser("tokens", help="create, list and revoke API tokens")
    tok_sub = tok_p.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = leaf(tok_sub, "create", misc.cmd_tokens_create, "create an API token (its secret is shown once)")
    p.add_argument("name", metavar="NAME")
    json_flag(p)
    p = leaf(tok_sub, "list", misc.cmd_tokens_list, "list API tokens")
    json_flag(p)
    p = leaf(tok_sub, "revoke", misc.cmd_tokens_revoke, "revoke an API token at once")
    p.add_argument("name", metavar="NAME")

    # git
    git_p = sub.add_parser("git", help="look at remote repositories")
    git_sub = git_p.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = leaf(git_sub, "resolve", misc.cmd_git_resolve, "resolve a branch to its head commit")
    p.add_argument("url", metavar="URL")
    p.add_argument("--branch", default="main", metavar="B", help="branch or full commit SHA (default: main)")
    json_flag(p)
    p = leaf(git_sub, "branches", misc.cmd_git_branches, "list a repository's branches")
    p.add_argument("url", metavar="URL")
    json_flag(p)

    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse or raise SystemExit (argparse's own behaviour, with its exit code 2 on bad usage)."""
    return build_parser().parse_args(argv)


def report_rpc_error(err: grpc.RpcError, address: str) -> None:
    """The server's message, and what to do about the errors a user can fix locally."""
    error = ApiError.from_rpc(err, address)
    print(f"error: {error.details}", file=sys.stderr)
    if error.hint:
        print(f"hint: {error.hint}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2): argparse already printed why
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)

    try:
        conn = Connection.from_env(args.api)
    except TrustError as e:  # the CA that verifies the control plane: not the address's fault
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except AddressError as e:
        source = "--api" if args.api else f"${API_ENV}"
        print(f"{PROG}: error: {source}: {e}", file=sys.stderr)
        return 2
    out, err = make_console(), make_console(stderr=True)
    try:
        return args.handler(conn, args, out, err)
    except UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except grpc.RpcError as e:
        report_rpc_error(e, conn.address)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: not an error worth a traceback.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return 0
    finally:
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
