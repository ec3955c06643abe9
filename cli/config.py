"""`serversinc apps set-env` (config as a release) and the `--since` argument of `serversinc logs`.

`set-env NAME K=V… [--secret K=V…] [--unset K…] [--deploy]` changes the app's environment with one
SetAppEnv call; with --deploy the same call queues a CONFIG deployment that runs the serving
release's image again (no build) with the new environment, in one transaction on the server.
A secret given as a bare `K` takes its value from this process's own environment, so it need
not appear on the command line (argv is visible to every user of the machine).
"""

from __future__ import annotations

import argparse
import os
import re
from datetime import datetime, timedelta, timezone

from serversinc.v1 import app_service_pb2

from client.names import deployment_id
from common import rules

from . import apps, render
from .deployments import _queued_line, _watch
from .errors import UsageError

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """'30s', '10m', '2h', '1d' ago, or an RFC 3339 time ('2026-12-01T20:00:00Z'); UTC."""
    value = value.strip()
    match = _DURATION.fullmatch(value)
    if match:
        return (now or datetime.now(timezone.utc)) - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since {value!r}: expected a duration (30s, 10m, 2h, 1d) or an RFC 3339 "
                         "time such as 2026-12-01T20:00:00Z") from None
    if moment.tzinfo is None:
        raise UsageError(f"--since {value!r}: an RFC 3339 time needs its offset (Z or +HH:MM)")
    return moment.astimezone(timezone.utc)


def since_arg(value: str) -> datetime:
    """argparse type for --since: a bad value is a usage error at parse time (exit 2, no RPC)."""
    try:
        return parse_since(value)
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--since ")) from None


def _secrets(pairs: list[str] | None, environ=os.environ) -> dict[str, str]:
    """--secret K=V, or a bare K whose value is this process's environment variable K."""
    given: dict[str, str] = {}
    for pair in pairs or ():
        if "=" in pair:
            given.update(apps.parse_env([pair]))
            continue
        if pair not in environ:
            raise UsageError(f"--secret {pair}: no '=' and no environment variable {pair} to take the value from")
        given.update(apps.parse_env([f"{pair}={environ[pair]}"]))
    return given


def build_request(args: argparse.Namespace, environ=os.environ) -> app_service_pb2.SetAppEnvRequest:
    env = apps.parse_env(args.pairs)
    secret_env = _secrets(args.secret, environ)
    unset = list(dict.fromkeys(args.unset or ()))
    for key in unset:
        if not rules.ENV_KEY.fullmatch(key):
            raise UsageError(f"--unset {key!r}: not a variable name")
    both = (set(env) | set(secret_env)) & set(unset)
    if both:
        raise UsageError(f"{', '.join(sorted(both))}: both set and unset")
    clash = set(env) & set(secret_env)
    if clash:
        raise UsageError(f"{', '.join(sorted(clash))}: given both as plain and as secret")
    if not (env or secret_env or unset or args.deploy):
        raise UsageError("nothing to change: give K=V, --secret K=V or --unset K (or --deploy)")
    return app_service_pb2.SetAppEnvRequest(name=f"apps/{args.name}", env=env, secret_env=secret_env,
                                            unset_names=unset, deploy=bool(args.deploy))


def cmd_set_env(conn, args, out, err) -> int:
    reply = conn.apps.SetAppEnv(build_request(args))
    if args.watch and reply.HasField("deployment"):
        (err if args.json else out).print(f"{_queued_line(reply.deployment)} (config release)", markup=False)
        return _watch(conn, reply.deployment.name, args, out, err)
    if args.json:
        render.print_json(reply)
        return 0
    names = sorted(reply.app.env) + sorted(f"{k} (secret)" for k in reply.app.secret_env)
    out.print(f"env of {args.name}: {', '.join(names) or '(none)'}", markup=False)
    if reply.HasField("deployment"):
        d = reply.deployment
        out.print(f"{_queued_line(d)} (config release: the serving image, no build)", markup=False)
        out.print(f"follow it with: serversinc deployments watch {deployment_id(d.name)}", markup=False)
    else:
        out.print("saved; the running release keeps its env until the next deployment "
                  "(or run set-env with --deploy)", markup=False)
    return 0


def add_parser(apps_sub, leaf, json_flag) -> None:
    p = leaf(apps_sub, "set-env", cmd_set_env,
             "change an app's env; with --deploy, release it at once without a build")
    p.add_argument("name", metavar="NAME")
    p.add_argument("pairs", nargs="*", metavar="K=V", help="plain variables to set")
    p.add_argument("--secret", action="append", metavar="K=V",
                   help="secret variable to set, stored encrypted (a bare K takes the value of "
                        "this shell's variable K, keeping it off the command line; repeatable)")
    p.add_argument("--unset", action="append", metavar="K", help="variable to remove (repeatable)")
    p.add_argument("--deploy", action="store_true",
                   help="release the change now: the serving image again, with the new env (trigger CONFIG)")
    p.add_argument("--watch", action="store_true", help="with --deploy: follow the deployment until it finishes")
    json_flag(p)
