"""A real agent refuses what the API refuses: each value the control plane would never store
(`web\\n`, `FOO\\n`, `SIGNOPE`, `a.com\\n`, a SHA with a newline) is INVALID_ARGUMENT on Deploy
or Build, with the rule's message, and nothing is started."""

from __future__ import annotations

import grpc
import pytest
from tugboat.v1 import tugboat_pb2 as pb

from agent import labels

pytestmark = pytest.mark.docker

SHA = "b" * 40


def _refused(call, request) -> str:
    with pytest.raises(grpc.RpcError) as info:
        list(call(request, timeout=10))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return info.value.details()


@pytest.mark.parametrize("fields,allowed", [
    ({"app": "{app}\n"}, "use 1-63 lowercase letters, digits and '-'"),
    ({"commit_sha": SHA + "\n"}, "40-hex-digit"),
    ({"env": {"FOO\n": "1"}}, "use letters, digits and '_'"),
    ({"stop_signal": "SIGNOPE"}, "not a signal name like SIGTERM"),
    ({"domains": ["a.com\n"]}, "use letters, digits, '-' and '.'"),
    ({"health_path": "/up\n"}, "must start with '/' and contain no spaces"),
    ({"replicas": -1}, "replicas -1 on one server is out of range: 1 to 32"),
])
def test_deploy_with_a_value_the_api_refuses_is_invalid_argument(agent, app_name, docker_client,
                                                                  fields, allowed):
    request = dict(app=app_name, deployment_id=7, image="x", commit_sha=SHA, port=8080)
    request.update({k: v.format(app=app_name) if isinstance(v, str) else v for k, v in fields.items()})
    assert allowed in _refused(agent.stub.Deploy, pb.DeployRequest(**request))
    assert docker_client.containers.list(all=True, filters={"label": f"{labels.APP}={app_name}"}) == []


@pytest.mark.parametrize("fields,allowed", [
    ({"commit_sha": SHA + "\n"}, "40-hex-digit"),
    ({"repo_url": "--upload-pack=touch /tmp/x"}, "not allowed"),
    ({"repo_url": ""}, "repository URL is empty"),
])
def test_build_with_a_value_the_api_refuses_is_invalid_argument(agent, app_name, fields, allowed):
    request = dict(app=app_name, deployment_id=8, repo_url="/nonexistent", commit_sha=SHA)
    request.update(fields)
    assert allowed in _refused(agent.stub.Build, pb.BuildRequest(**request))
