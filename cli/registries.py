"""`serversinc registries set|list|delete`: the registry releases are pushed to and pulled from.

A release is built once, on one server, pushed there, and pulled by digest on the others. One
registry is used at a time: `set` on another address is refused until the first is deleted. The
password is read from stdin (--password-stdin), never from an argument (it would show in `ps` and
the shell's history), and never printed: `list` shows whether one is stored.
"""

from __future__ import annotations

import sys

from serversinc.v1 import registry_service_pb2 as pb
from serversinc.v1 import registry_service_pb2_grpc as pb_grpc

from client.pages import all_pages

from . import render
from .errors import UsageError


def add_parsers(sub, leaf, json_flag) -> None:
    reg_p = sub.add_parser("registries", help="the container registry releases are pushed to and pulled from")
    reg_sub = reg_p.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = leaf(reg_sub, "set", cmd_set,
             "set the registry (HOST[:PORT]): releases are built once and pulled by digest on other servers")
    p.add_argument("address", metavar="ADDRESS", help="HOST[:PORT] of the registry, e.g. registry.example.com:5000")
    p.add_argument("--username", default="", metavar="U", help="the user the servers log in as")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password (or token) from stdin; stored encrypted, never shown")
    json_flag(p)
    p = leaf(reg_sub, "list", cmd_list, "list the registry (never its password)")
    json_flag(p)
    p = leaf(reg_sub, "delete", cmd_delete, "remove the registry and its credentials")
    p.add_argument("address", metavar="ADDRESS")


def _stub(conn) -> pb_grpc.RegistryServiceStub:
    return pb_grpc.RegistryServiceStub(conn.channel)


def _line(r: pb.Registry) -> str:
    login = "no login"
    if r.username:
        login = f"user {r.username}, " + ("password set" if r.has_password else "no password")
    return f"{r.address:40} {login}  updated {render.fmt_time(r.update_time)}"


def cmd_set(conn, args, out, err) -> int:
    password = ""
    if args.password_stdin:
        if not args.username:
            raise UsageError("--password-stdin needs --username")
        password = sys.stdin.read().rstrip("\r\n")
        if not password:
            raise UsageError("--password-stdin: nothing was read from stdin")
    registry = _stub(conn).SetRegistry(pb.SetRegistryRequest(registry=pb.Registry(
        address=args.address, username=args.username, password=password)))
    if args.json:
        render.print_json(registry)
    else:
        out.print(f"registry {_line(registry)}", markup=False)
    return 0


def cmd_list(conn, args, out, err) -> int:
    registries = all_pages(_stub(conn).ListRegistries,
                           lambda token: pb.ListRegistriesRequest(page_size=500, page_token=token), "registries")
    if args.json:
        render.print_json(registries)
    elif not registries:
        out.print("no registry set: each server builds its own releases "
                  "(set one with 'serversinc registries set ADDRESS')", markup=False)
    else:
        for r in registries:
            out.print(_line(r), markup=False)
    return 0


def cmd_delete(conn, args, out, err) -> int:
    _stub(conn).DeleteRegistry(pb.DeleteRegistryRequest(name=f"registries/{args.address}"))
    out.print(f"deleted registry {args.address}", markup=False)
    return 0
