"""Benchmark: disk that never fills. 50 releases of one app with retention 5, in one run.

Each release is a new commit carrying a few MB of unique content (random bytes, so no layer is
shared and nothing compresses), so every release is a new image of that size. After each
release the app is pruned through the control plane (PruneServer, timed from the client: the
agent's disk-use read, the plan and the removals), then the engine's disk use (`docker system
df`: LayersSize) and the app's images (count, and the bytes only they hold) are read. The
agent's own after-deploy prune and schedule are turned off for the run, so each prune measured
is the one that removes that release's oldest image. At the end every retained release is
rolled back to (each must succeed and serve its version), and a rollback past retention must be
refused before it starts.

Last line: JSON with releases, images_kept, disk_mb_after_first (the app's images after
release 1), disk_mb_after_retained (after release 5: retention full), disk_mb_after_last,
disk_mb_max_after_retained (flat from release 5 on), prune_s_p95, rollback_ok.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import _stack
import docker
import grpc
from serversinc.v1 import (
    app_pb2,
    app_service_pb2,
    app_service_pb2_grpc,
    deployment_pb2,
    deployment_service_pb2,
    deployment_service_pb2_grpc,
    server_service_pb2,
    server_service_pb2_grpc,
)

from tests.support.sample_app import commit_files, index_html, make_sample_repo, repo_url

DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
COPY blob.bin /blob.bin
COPY index.html /www/index.html
EXPOSE 8080
CMD ["/bin/busybox","httpd","-f","-p","8080","-h","/www"]
"""
MB = 1024 * 1024


def watch_until_done(deployments, name: str) -> deployment_pb2.Deployment:
    for _ in deployments.WatchDeployment(deployment_service_pb2.WatchDeploymentRequest(name=name), timeout=300):
        pass
    return deployments.GetDeployment(deployment_service_pb2.GetDeploymentRequest(name=name))


def app_disk(client: docker.DockerClient, app: str) -> tuple[int, float, float]:
    """(the app's platform images, MB only they hold, the engine's LayersSize in MB)."""
    for _ in range(150):  # the engine runs one df at a time: the agent's prune may hold it
        try:
            df = client.api.df()
            break
        except docker.errors.APIError as err:
            if "already running" not in str(err):
                raise
            time.sleep(0.2)
    ours = [i for i in df.get("Images") or []
            if (i.get("Labels") or {}).get("io.serversinc.app") == app
            and (i.get("Labels") or {}).get("io.serversinc.managed") == "true"]
    unique = sum(max(0, int(i.get("Size") or 0) - max(0, int(i.get("SharedSize") or 0))) for i in ours)
    return len(ours), unique / MB, int(df.get("LayersSize") or 0) / MB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--releases", type=int, default=50)
    parser.add_argument("--retain", type=int, default=5)
    parser.add_argument("--blob-mb", type=int, default=3, help="unique content per release")
    args = parser.parse_args()

    # The agent prunes only when asked in this run: every prune measured is a real one.
    os.environ["TUGBOAT_PRUNE_AFTER_DEPLOY"] = "0"
    os.environ["TUGBOAT_PRUNE_INTERVAL_SECONDS"] = "0"
    client = docker.from_env()
    app = f"bench-ret-{uuid.uuid4().hex[:6]}"
    work = Path(tempfile.mkdtemp(prefix="bench-retention-"))
    repo = make_sample_repo(work / "repo", "v0")
    commit_files(repo, {"Dockerfile": DOCKERFILE, "blob.bin": os.urandom(args.blob_mb * MB)}, "with a blob")
    rows, prunes, releases = [], [], []
    rollback_ok = False
    refused_past = False
    with _stack.platform_stack() as stack:
        channel = stack.channel()
        apps = app_service_pb2_grpc.AppServiceStub(channel)
        deployments = deployment_service_pb2_grpc.DeploymentServiceStub(channel)
        servers = server_service_pb2_grpc.ServerServiceStub(channel)
        try:
            created = apps.CreateApp(app_service_pb2.CreateAppRequest(app=app_pb2.App(
                name=app, repo_url=repo_url(repo), branch="main", retain_releases=args.retain)))
            for n in range(1, args.releases + 1):
                commit_files(repo, {"blob.bin": os.urandom(args.blob_mb * MB), "index.html": index_html(f"v{n}")},
                             f"release v{n}")
                done = watch_until_done(deployments, deployments.CreateDeployment(
                    deployment_service_pb2.CreateDeploymentRequest(parent=f"apps/{app}")).name)
                assert done.state == deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED, done.failure_reason
                releases.append(done)
                started = time.perf_counter()
                pruned = servers.PruneServer(server_service_pb2.PruneServerRequest(
                    name=created.server, app=app), timeout=300)
                prunes.append(time.perf_counter() - started)
                count, mb, engine_mb = app_disk(client, app)
                rows.append({"release": n, "images": count, "app_mb": round(mb, 1), "engine_mb": round(engine_mb, 1),
                             "prune_s": round(prunes[-1], 3), "removed": len(pruned.items)})
                print(json.dumps(rows[-1]), flush=True)

            # Rollback to each retained release, oldest last: each must succeed and serve its version.
            retained = releases[-args.retain:-1]
            rollback_ok = True
            for target in reversed(retained):
                back = watch_until_done(deployments, deployments.RollbackApp(deployment_service_pb2.RollbackAppRequest(
                    name=f"apps/{app}", deployment=target.name)).name)
                served = back.state == deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED and \
                    f"sample app v{releases.index(target) + 1}<" in _stack.get(back.url).text
                print(f"rollback to {target.name}: {'ok' if served else 'FAILED ' + back.failure_reason}", flush=True)
                rollback_ok = rollback_ok and served
            try:
                deployments.RollbackApp(deployment_service_pb2.RollbackAppRequest(
                    name=f"apps/{app}", deployment=releases[-args.retain - 1].name))
            except grpc.RpcError as err:
                refused_past = err.code() == grpc.StatusCode.FAILED_PRECONDITION
                print(f"rollback past retention: {err.code().name}: {err.details()}", flush=True)
            images_kept = app_disk(client, app)[0]
        finally:
            try:
                apps.DeleteApp(app_service_pb2.DeleteAppRequest(name=app), timeout=120)
            except grpc.RpcError as err:
                print(f"cleanup: {err.details()}")
            channel.close()

    full = rows[args.retain - 1:]
    print(json.dumps({
        "releases": len(rows), "retain": args.retain, "blob_mb": args.blob_mb, "images_kept": images_kept,
        "disk_mb_after_first": rows[0]["app_mb"], "disk_mb_after_retained": full[0]["app_mb"],
        "disk_mb_after_last": rows[-1]["app_mb"], "disk_mb_max_after_retained": max(r["app_mb"] for r in full),
        "engine_mb_after_first": rows[0]["engine_mb"], "engine_mb_after_last": rows[-1]["engine_mb"],
        "images_max": max(r["images"] for r in rows),
        "prune_s_p50": round(_stack.percentile(prunes, 50), 3), "prune_s_p95": round(_stack.percentile(prunes, 95), 3),
        "rollback_ok": rollback_ok, "rollback_past_retention_refused": refused_past,
    }))


if __name__ == "__main__":
    main()
