"""Bad input gets the right gRPC code and a clear message, and writes nothing."""

from __future__ import annotations

import grpc
import pytest
from serversinc.v1 import app_pb2, app_service_pb2, deployment_service_pb2


def list_names(control_plane):
    return [a.name for a in control_plane.apps.ListApps(app_service_pb2.ListAppsRequest()).apps]


def rpc_error(call, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as info:
        call(*args, **kwargs)
    return info.value


@pytest.mark.parametrize("name", ["", "Web", "my app", "a" * 200, "../x", "-web", "web-"])
def test_bad_app_names_are_invalid_argument(control_plane, sample_url, name):
    err = rpc_error(control_plane.create_app, name, sample_url)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "app name" in err.details()
    assert list_names(control_plane) == []


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"repo_url": ""}, "repository URL is empty"),
        ({"repo_url": "ext::sh -c touch% /tmp/pwned"}, "not allowed"),
        ({"port": 70000}, "port 70000 is out of range"),
        ({"port": -1}, "port -1 is out of range"),
        ({"branch": "--x"}, "branch"),
        ({"health_path": "nope"}, "health path"),
        ({"dockerfile": "../../etc/passwd"}, "inside the repository"),
        ({"env": {"1BAD": "x"}}, "env key"),
    ],
)
def test_bad_fields_are_invalid_argument(control_plane, sample_url, fields, words):
    app = app_pb2.App(name="web", repo_url=sample_url, branch="main")
    for key, value in fields.items():
        if key == "env":
            app.env.update(value)
        else:
            setattr(app, key, value)
    err = rpc_error(control_plane.apps.CreateApp, app_service_pb2.CreateAppRequest(app=app))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in err.details()
    assert list_names(control_plane) == []


def test_port_zero_means_the_default(control_plane, sample_url):
    assert control_plane.create_app("web", sample_url, port=0).port == 8080


def test_duplicate_app_is_already_exists(control_plane, sample_url):
    control_plane.create_app("web", sample_url)
    err = rpc_error(control_plane.create_app, "web", sample_url)
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS and "already exists" in err.details()
    assert list_names(control_plane) == ["web"]


def test_unknown_app_and_deployment_are_not_found(control_plane):
    err = rpc_error(control_plane.deploy, "nope")
    assert err.code() == grpc.StatusCode.NOT_FOUND and "nope" in err.details()
    err = rpc_error(control_plane.get, "deployments/999")
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = rpc_error(control_plane.get, "deployments/abc")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = rpc_error(control_plane.apps.GetApp, app_service_pb2.GetAppRequest(name="nope"))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    listed = control_plane.deployments.ListDeployments(deployment_service_pb2.ListDeploymentsRequest())
    assert list(listed.deployments) == []


def test_deploying_a_malformed_commit_is_invalid_argument(control_plane, sample_url):
    control_plane.create_app("web", sample_url)
    err = rpc_error(control_plane.deploy, "web", commit_sha="abc")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "40-hex" in err.details()


def test_errors_carry_a_machine_readable_reason(control_plane):
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    err = rpc_error(control_plane.deploy, "nope")
    status = rpc_status.from_call(err)
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.reason == "APP_NOT_FOUND" and info.domain == "serversinc.io"


def test_list_pages_are_consistent(control_plane, sample_url):
    for i in range(5):
        control_plane.create_app(f"app-{i}", sample_url)
    seen, token = [], ""
    while True:
        page = control_plane.apps.ListApps(app_service_pb2.ListAppsRequest(page_size=2, page_token=token))
        seen += [a.name for a in page.apps]
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"app-{i}" for i in range(5)]
    err = rpc_error(control_plane.apps.ListApps, app_service_pb2.ListAppsRequest(page_token="garbage!"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_update_needs_a_mask_and_changes_only_what_it_names(control_plane, sample_url):
    from google.protobuf.field_mask_pb2 import FieldMask

    control_plane.create_app("web", sample_url, port=9000, health_path="/up")
    err = rpc_error(control_plane.apps.UpdateApp, app_service_pb2.UpdateAppRequest(app=app_pb2.App(name="web", port=81)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "update_mask" in err.details()
    updated = control_plane.apps.UpdateApp(app_service_pb2.UpdateAppRequest(
        app=app_pb2.App(name="web", port=81), update_mask=FieldMask(paths=["port"])))
    assert updated.port == 81 and updated.health_path == "/up"
    err = rpc_error(control_plane.apps.UpdateApp, app_service_pb2.UpdateAppRequest(
        app=app_pb2.App(name="web", port=70000), update_mask=FieldMask(paths=["port"])))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert control_plane.apps.GetApp(app_service_pb2.GetAppRequest(name="web")).port == 81


@pytest.mark.parametrize(
    "fields, allowed",
    [
        ({"name": "web\n"}, "use 1-63 lowercase letters, digits and '-'"),
        ({"env": {"FOO\n": "x"}}, "use letters, digits and '_'"),
        ({"secret_env": {"FOO\n": "x"}}, "use letters, digits and '_'"),
        ({"stop_signal": "SIGNOPE"}, "not a signal name like SIGTERM"),
        ({"domains": ["a.com\n"]}, "use letters, digits, '-' and '.'"),
        ({"domains": ["ok.test", " a.com"]}, "use letters, digits, '-' and '.'"),
    ],
)
def test_what_the_agent_would_refuse_is_refused_at_create(control_plane, sample_url, fields, allowed):
    """The API and the agent check with the same rules (common.rules): nothing is trimmed into
    shape here and then refused by the agent at the first deploy."""
    fields = dict(fields)
    name = fields.pop("name", "web")
    err = rpc_error(control_plane.create_app, name, sample_url, **fields)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert allowed in err.details()
    assert list_names(control_plane) == []


def test_a_bad_stop_signal_is_refused_at_update_and_nothing_changes(control_plane, sample_url):
    from google.protobuf.field_mask_pb2 import FieldMask

    control_plane.create_app("web", sample_url, stop_signal="quit", domains=["WWW.Example.test."])
    before = control_plane.apps.GetApp(app_service_pb2.GetAppRequest(name="web"))
    assert before.stop_signal == "SIGQUIT" and list(before.domains) == ["www.example.test"]
    for fields, paths in [({"stop_signal": "SIGNOPE"}, ["stop_signal"]),
                          ({"domains": ["a.com\n"]}, ["domains"])]:
        err = rpc_error(control_plane.apps.UpdateApp, app_service_pb2.UpdateAppRequest(
            app=app_pb2.App(name="web", **fields), update_mask=FieldMask(paths=paths)))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "like SIGTERM" in err.details() or "like www.example.com" in err.details()
    assert control_plane.apps.GetApp(app_service_pb2.GetAppRequest(name="web")) == before
