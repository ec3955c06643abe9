"""`serversinc servers ...` and `serversinc git ...`: read-only look-ups."""

from __future__ import annotations

from serversinc.v1 import git_service_pb2, server_service_pb2

from . import render


def cmd_servers_list(conn, args, out, err) -> int:
    servers = []
    token = ""
    while True:
        resp = conn.servers.ListServers(server_service_pb2.ListServersRequest(page_size=500, page_token=token))
        servers.extend(resp.servers)
        token = resp.next_page_token
        if not token:
            break
    if args.json:
        render.print_json(servers)
    elif not servers:
        out.print("no servers registered", markup=False)
    else:
        out.print(render.servers_table(servers))
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
    branches = []
    token = ""
    while True:
        resp = conn.git.ListBranches(
            git_service_pb2.ListBranchesRequest(repo_url=args.url, page_size=1000, page_token=token)
        )
        branches.extend(resp.branches)
        token = resp.next_page_token
        if not token:
            break
    if args.json:
        render.print_json(branches)
    elif not branches:
        out.print("no branches", markup=False)
    else:
        out.print(render.branches_table(branches))
    return 0
