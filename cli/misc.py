"""`serversinc servers ...`, `serversinc tokens ...` and `serversinc git ...`."""

from __future__ import annotations

from google.protobuf.duration_pb2 import Duration
from serversinc.v1 import api_token_service_pb2, git_service_pb2, server_service_pb2

from client.pages import all_pages

from . import render


def cmd_servers_list(conn, args, out, err) -> int:
    servers = all_pages(
        conn.servers.ListServers,
        lambda token: server_service_pb2.ListServersRequest(page_size=500, page_token=token), "servers")
    if args.json:
        render.print_json(servers)
    elif not servers:
        out.print("no servers registered", markup=False)
    else:
        out.print(render.servers_table(servers))
    return 0


def cmd_servers_add(conn, args, out, err) -> int:
    server = conn.servers.CreateServer(server_service_pb2.CreateServerRequest(
        name=args.name, address=args.address, join_token_ttl=Duration(seconds=args.ttl or 0)))
    if args.json:
        render.print_json(server)
        return 0
    out.print(f"server {server.name} added ({server.address}); its join token works once, until "
              f"{render.fmt_time(server.join_token_expire_time)}.", markup=False)
    out.print("Start its agent with:", markup=False)
    out.print(f"  {server.join_command}", markup=False)
    return 0


def cmd_servers_rotate_cert(conn, args, out, err) -> int:
    server = conn.servers.RotateServerCertificate(
        server_service_pb2.RotateServerCertificateRequest(name=args.name))
    if args.json:
        render.print_json(server)
    else:
        out.print(f"server {server.name}: new agent certificate in service, serial {server.cert_serial}, "
                  f"expires {render.fmt_time(server.cert_expire_time)}", markup=False)
    return 0


def cmd_servers_delete(conn, args, out, err) -> int:
    """Refused by the control plane while any app runs on the server (the message names them)."""
    conn.servers.DeleteServer(server_service_pb2.DeleteServerRequest(name=args.name))
    out.print(f"server {args.name} removed from the control plane (its agent was left as it is)", markup=False)
    return 0


def cmd_tokens_create(conn, args, out, err) -> int:
    token = conn.tokens.CreateApiToken(api_token_service_pb2.CreateApiTokenRequest(name=args.name))
    if args.json:
        render.print_json(token)
    else:
        out.print(f"API token {token.name} (shown once; keep it safe):", markup=False)
        out.print(token.secret, markup=False)
    return 0


def cmd_tokens_list(conn, args, out, err) -> int:
    tokens = all_pages(
        conn.tokens.ListApiTokens,
        lambda token: api_token_service_pb2.ListApiTokensRequest(page_size=500, page_token=token), "api_tokens")
    if args.json:
        render.print_json(tokens)
    else:
        for t in tokens:
            last = render.fmt_time(t.last_used_time) or "never"
            out.print(f"{t.name:30} created {render.fmt_time(t.create_time)}  last used {last}", markup=False)
    return 0


def cmd_tokens_revoke(conn, args, out, err) -> int:
    conn.tokens.DeleteApiToken(api_token_service_pb2.DeleteApiTokenRequest(name=args.name))
    out.print(f"revoked API token {args.name}", markup=False)
    return 0


def build_resolve_request(args) -> git_service_pb2.ResolveCommitRequest:
    return git_service_pb2.ResolveCommitRequest(repo_url=args.url, ref=args.branch)


def cmd_git_resolve(conn, args, out, err) -> int:
    commit = conn.git.ResolveCommit(build_resolve_request(args))
    if args.json:
        render.print_json(commit)
    else:
        out.print(render.commit_table(commit))
    return 0


def cmd_git_branches(conn, args, out, err) -> int:
    branches = all_pages(
        conn.git.ListBranches,
        lambda token: git_service_pb2.ListBranchesRequest(repo_url=args.url, page_size=1000, page_token=token),
        "branches")
    if args.json:
        render.print_json(branches)
    elif not branches:
        out.print("no branches", markup=False)
    else:
        out.print(render.branches_table(branches))
    return 0
