"""One Build call to an agent, as the control plane makes it (its client certificate and the
agent's secret): run as `python -m tests.fleet.build_call ADDRESS CERTS APP REPO SHA` in whatever
network namespace the caller should be in (the secret comes in TUGBOAT_TEST_SECRET, never argv).
Prints the outcome's status code name (OK when the build ran to its result) and its details."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import grpc
from tugboat.v1 import tugboat_pb2 as pb
from tugboat.v1 import tugboat_pb2_grpc

from tests.support.agent_client import agent_channel


def main(address: str, certs: str, app: str, repo: str, sha: str) -> int:
    channel = agent_channel(address, certs_dir=Path(certs), secret=os.environ["TUGBOAT_TEST_SECRET"])
    stub = tugboat_pb2_grpc.TugboatServiceStub(channel)
    try:
        events = stub.Build(pb.BuildRequest(app=app, deployment_id=1, repo_url=repo, commit_sha=sha),
                            timeout=120)
        errors = [ev.error.message for ev in events if ev.WhichOneof("event") == "error"]
    except grpc.RpcError as err:
        print(err.code().name, err.details())
        return 0
    finally:
        channel.close()
    print("OK" if not errors else "BUILD_ERROR", *errors)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:6]))
