"""Every refusal carries a specific AIP-193 ErrorInfo reason, read back over real gRPC as a client does."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from serversinc.v1 import app_service_pb2, deployment_service_pb2

DOMAIN = "serversinc.io"


def refusal(call, *args, **kwargs) -> tuple[grpc.StatusCode, error_details_pb2.ErrorInfo, list]:
    """The status code, the ErrorInfo and the other details of a call that must fail."""
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, **kwargs)
    status = rpc_status.from_call(caught.value)
    info, others = None, []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
        else:
            others.append(detail)
    assert info is not None and info.domain == DOMAIN, status
    return caught.value.code(), info, others


def cancel(cp, name):
    return cp.deployments.CancelDeployment(deployment_service_pb2.CancelDeploymentRequest(name=name))


def test_app_reasons(control_plane, sample_url):
    code, info, _ = refusal(control_plane.apps.GetApp, app_service_pb2.GetAppRequest(name="apps/nope"))
    assert (code, info.reason) == (grpc.StatusCode.NOT_FOUND, "APP_NOT_FOUND")
    control_plane.create_app("web", sample_url)
    code, info, _ = refusal(control_plane.create_app, "web", sample_url)
    assert (code, info.reason) == (grpc.StatusCode.ALREADY_EXISTS, "APP_ALREADY_EXISTS")
    code, info, _ = refusal(control_plane.deployments.RollbackApp,
                            deployment_service_pb2.RollbackAppRequest(name="apps/web"))
    assert (code, info.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NO_EARLIER_RELEASE")


def test_invalid_names_name_their_field(control_plane):
    code, info, others = refusal(control_plane.get, "apps/web/42")
    assert (code, info.reason, info.metadata["field"]) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", "name")
    bad_request = error_details_pb2.BadRequest()
    assert len(others) == 1 and others[0].Unpack(bad_request)
    assert bad_request.field_violations[0].field == "name"
    assert "apps/{app}/deployments/{id}" in bad_request.field_violations[0].description
    code, info, _ = refusal(control_plane.deployments.ListDeployments,
                            deployment_service_pb2.ListDeploymentsRequest(parent="servers/local"))
    assert (code, info.metadata["field"]) == (grpc.StatusCode.INVALID_ARGUMENT, "parent")


def test_deployment_reasons(control_plane, sample_url):
    control_plane.create_app("web", sample_url)
    control_plane.create_app("api", sample_url, branch="no-such-branch")
    failed = control_plane.wait(control_plane.deploy("api").name)
    assert failed.name == f"apps/api/deployments/{failed.id}"
    # The same id under another app, and an id nobody has, do not exist.
    for name in (f"apps/web/deployments/{failed.id}", "apps/web/deployments/999"):
        code, info, _ = refusal(control_plane.get, name)
        assert (code, info.reason) == (grpc.StatusCode.NOT_FOUND, "DEPLOYMENT_NOT_FOUND"), name
    # Old forms still read the same deployment.
    assert control_plane.get(str(failed.id)).name == control_plane.get(f"deployments/{failed.id}").name == failed.name
    code, info, _ = refusal(cancel, control_plane, failed.name)
    assert (code, info.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "DEPLOYMENT_NOT_CANCELLABLE")
    code, info, _ = refusal(control_plane.deploy, "web", source_deployment=failed.name)
    assert (code, info.reason) == (grpc.StatusCode.NOT_FOUND, "DEPLOYMENT_NOT_FOUND")
